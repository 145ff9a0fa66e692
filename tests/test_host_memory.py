"""prac.hardware.host_memory: after keep_freed_memory, a freed block of activation size stays in the process's heap
(glibc's mallinfo2 counts it as free heap) for the next step, where glibc's defaults map it apart and hand
it back to the OS. Each case runs in a fresh process: the setting is process-wide and glibc's thresholds
move with what a process has freed before."""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, ctypes.util, json, sys
from prac.hardware.host_memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
kept = keep_freed_memory() if sys.argv[1] == "1" else None
block_size = 16 * 2**20  # a 16 MiB activation
before = libc.mallinfo2()
block = libc.malloc(block_size)
ctypes.memset(block, 1, block_size)  # touched: its pages are resident
mapped = libc.mallinfo2().hblks - before.hblks
libc.free(block)
print(json.dumps({"set": kept, "mapped": mapped, "free_heap_gain": libc.mallinfo2().fordblks - before.fordblks}))
"""


def probe(keep: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, "1" if keep else "0"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_a_freed_block_stays_in_the_heap_for_the_next_step():
    if not hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2"):
        pytest.skip("not glibc 2.33 or later: no mallinfo2 to look with")
    default, kept = probe(keep=False), probe(keep=True)
    assert default["mapped"] == 1 and default["free_heap_gain"] < 2**20  # glibc's defaults: mapped, unmapped on free
    assert kept["set"] is True
    assert kept["mapped"] == 0 and kept["free_heap_gain"] >= 16 * 2**20  # from the heap, and kept there
