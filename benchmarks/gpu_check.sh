#!/usr/bin/env bash
# The package on a CUDA machine in under five minutes: training throughput (fp32, bf16), a prior training step,
# guided and unguided sampling, eager and with a compiled decoder. Prints one table (see gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
HF_HUB_OFFLINE=1 timeout 300 "$PYTHON" benchmarks/gpu_check.py "$@"
