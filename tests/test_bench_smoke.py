"""Smoke runs of the benchmarks (bench/*.py --quick: a few batches each): they run, exit 0, and end
with their ratio line. The figures of a smoke run mean nothing; the benchmarks proper are run by hand."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench"
RATIO = re.compile(r"\d+(\.\d+)?(x|%)")  # e.g. "5.12x" or "12.3%"


@pytest.mark.parametrize("name", ["throughput", "subset_costs", "machine_fraction"])
def test_benchmark_quick_run(name):
    # One torch thread: on 2 shared cores, two threads are slowed down many times by any busy neighbour.
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--quick", "--threads", "1"],
                          capture_output=True, text=True, timeout=900, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert RATIO.search(last), f"last line holds no ratio: {last!r}"
