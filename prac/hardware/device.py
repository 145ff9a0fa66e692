"""Choosing the training device and the number of CPU threads."""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from prac.errors import UserError


def select_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA device is available")
    return training_device(choice)


def training_device(choice: str) -> torch.device:
    """The device `runtime.device` means on this machine (select_device, without the availability check)."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def usable_cores(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may really use: its CPU affinity, capped by a container's CPU quota
    (cgroup v2 cpu.max), which torch's own default ignores (a 2-CPU container on a 64-core host would
    otherwise run 64 threads and crawl)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota readable: the affinity stands
    return max(1, cores)


def choose_threads(requested: int | None) -> int | None:
    """Threads for torch's CPU ops: `runtime.threads` when set; else None (leave torch's setting) when the
    environment chose with OMP_NUM_THREADS; else the usable cores."""
    if requested is not None:
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return usable_cores()


def configure_threads(requested: int | None) -> None:
    threads = choose_threads(requested)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
