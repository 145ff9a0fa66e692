"""Process settings for Prefect, set before it is imported (quiet telemetry, results beside the runs),
and the local server started early."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Iterator

from prac_lth.deployments.processes import free_port

# Longer than Prefect's 20 s: a new store's migrations on a loaded machine can take that long.
START_TIMEOUT_S = 120


def prepare_prefect_environment(output_dir: str) -> None:
    # A harmless "database is locked" telemetry traceback otherwise (local mode, offline).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The stages persist their results in the run's own output folder (prac_lth.tasks.caching.stage_options), whatever
    # this says; other persisted results (the comparison's process pool) go beside them by default.
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(Path(output_dir).resolve() / ".prefect-results"))
    # Prefect's 20 s for its temporary server to start: creating a new home's database takes 16 s of it on a
    # 2-core machine, and more when the machine is busy. The flow's own start (if the early one failed) and
    # the comparison's processes get as long as the CLI's.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(START_TIMEOUT_S))
    # The temporary server is stopped as soon as the flow ends, and its services then print tracebacks of the
    # writes they were cancelled in (task_run_recorder, "Error flushing 1 events"), under a run that went well
    # (seen in the kill test's re-runs). Its real errors reach the flow as failed API calls, reported there.
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


class _HeldBack(logging.Filter):
    """Keeps a logger's records instead of emitting them (to emit later, or never)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


@contextlib.contextmanager
def local_server_starting() -> Iterator[None]:
    """Start Prefect's temporary server (local mode: no PREFECT_API_URL) in the background while the
    caller does its own work (the preflight), and wait for it on leaving: its start, a subprocess of a
    few seconds, then overlaps the preflight instead of following it. The flow's client finds the same
    server (Prefect keeps one temporary server per process); if starting fails here, the flow starts it
    again and reports. Prefect's log lines meanwhile are held back: handed on after a good preflight (to
    Prefect's handlers, where configured), dropped (with the server stopped) after a failed one, whose error
    stays one line."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    def start() -> None:
        server = SubprocessASGIServer()
        if server.port is None:
            # Prefect draws the port from 1000 at random and its server binds it seconds later: two runs
            # starting together could draw the same one, and one's client would then use the other's server.
            # The kernel draws from the ~14,000 free ports of its ephemeral range.
            server.port = free_port()
        try:
            server.start(timeout=START_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the flow retries the start and reports its own error
            # A start that timed out leaves its server process starting: stop it, or the flow's start would
            # launch a second one on the same port, the first then orphaned (holding this process's stdout
            # open after it exits: seen in CI as a run that hung at its end).
            server.stop()
            SubprocessASGIServer().port = free_port()

    prefect_logger, held = logging.getLogger("prefect"), _HeldBack()
    prefect_logger.addFilter(held)
    starter = threading.Thread(target=start, name="prefect-server-start", daemon=True)
    starter.start()
    try:
        yield
    except BaseException:
        starter.join()
        SubprocessASGIServer().stop()
        raise
    finally:
        starter.join()
        prefect_logger.removeFilter(held)
    for record in held.records:
        prefect_logger.handle(record)
