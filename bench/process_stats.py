"""Run a command as a child process and report its wall time and peak resident memory."""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessStats:
    wall_s: float
    peak_rss_mib: float
    returncode: int


def run_measured(command: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> ProcessStats:
    """wait4 gives the child's own rusage: ru_maxrss is its peak RSS (KiB on Linux)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env={**os.environ, **(env or {})}, cwd=cwd,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"command failed ({child.returncode}): {' '.join(command)}\n{child.stderr.read().decode()[-2000:]}")
    return ProcessStats(wall, usage.ru_maxrss / 1024, child.returncode)
