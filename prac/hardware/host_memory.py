"""Keeping freed host memory for reuse, so a CPU training step does not page-fault its activations in again.

glibc's malloc hands blocks above its mmap threshold (dynamic, at most 32 MiB) to the OS when they are freed,
and trims the top of the heap back to the OS above its trim threshold. A training step on the CPU frees
megabytes of activations at the end of every backward pass and allocates them again in the next step, so
each step touches fresh pages: the elementwise layers then run at page-fault speed. Raising both
thresholds keeps that memory in the process for the next step (peak resident memory measured within
30 MiB of the defaults'). Measured by bench/host_memory.py (BENCHMARKS.md, section 9).
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 2**30  # keep up to 1 GiB of free heap (mallopt takes a C int)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where malloc is not glibc's."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (musl, macOS): its allocator is left as it is
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
