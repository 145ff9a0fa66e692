"""A run stopped on purpose rather than failed: Ctrl-C (SIGINT), SIGTERM (`kill`, a scheduler stopping a job) or a
flow run cancelled from Prefect (its worker sends SIGTERM; Prefect's engine raises TerminationSignal). The CLI ends
it in one line (exit 130 or 143), and the MLflow runs it held are marked KILLED, not FAILED or left RUNNING; the same
command resumes from the stages already written."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator


class Terminated(BaseException):
    """SIGTERM received outside a Prefect flow (inside one, Prefect raises its own TerminationSignal)."""


def stop_kind(exc: BaseException) -> str | None:
    """"interrupted" (Ctrl-C), "terminated" (SIGTERM, a cancelled flow run), or None for a failure. A signal that
    lands inside a library's write may come out as that library's error, raised while handling it (torch.save's
    writer: `RuntimeError: ... unexpected pos`, the signal its __context__): that is a stop too."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if kind := _own_stop_kind(exc):
            return kind
        exc = exc.__cause__ or exc.__context__
    return None


def _own_stop_kind(exc: BaseException) -> str | None:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, Terminated):
        return "terminated"
    prefect_exceptions = sys.modules.get("prefect.exceptions")  # not imported: cannot be Prefect's signal
    if prefect_exceptions is not None and isinstance(exc, prefect_exceptions.TerminationSignal):
        return "terminated"
    return None


def run_status(exc: BaseException) -> str:
    """The MLflow status of a run that `exc` ended."""
    return "KILLED" if stop_kind(exc) else "FAILED"


EXIT_CODES = {"interrupted": 130, "terminated": 143}  # 128 + the signal's number, as a shell reports it


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated while the block runs (Python's default would end the process on the spot, leaving
    the MLflow runs RUNNING); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
