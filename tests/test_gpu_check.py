"""benchmarks/gpu_check.py, the script run whenever a CUDA machine is lent: its every step, at tiny sizes on the CPU,
so that it cannot rot between the rare runs that matter."""

import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_gpu_check_runs_every_step_and_prints_its_table():
    result = subprocess.run(
        [sys.executable, "gpu_check.py", "--device", "cpu", "--smoke"],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 7
    assert any("bf16" in row for row in rows) and any("compiled step and decoder" in row for row in rows)


def test_without_cuda_the_check_says_so_and_exits_cleanly():
    result = subprocess.run(
        [sys.executable, "gpu_check.py"], cwd=BENCHMARKS, capture_output=True, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "No CUDA device" in result.stdout
