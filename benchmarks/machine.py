"""What the benchmarks print beside their ratios: the CPU they ran on and torch's thread count."""

import platform

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (e.g. "AMD EPYC"), or what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def set_threads(threads: int | None) -> str:
    """Apply `--threads` (None keeps torch's choice) and describe the machine in one line."""
    if threads is not None:
        torch.set_num_threads(threads)
    return f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads"
