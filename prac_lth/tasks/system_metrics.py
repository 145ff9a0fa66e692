"""MLflow's own system metrics (CPU, memory, disk, network; GPU where NVIDIA's pynvml is installed) on an
experiment's parent run while it trains, under system/<worker>/ (the worker's name as MLflow's node id), so the
UI shows what each worker of the pool was doing. With a tracking server only: MLflow's monitor writes from a
thread of its own, which a local SQLite store would have to share with the run's own writes. The sampling
follows MLflow's variables (MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, 10 s by default)."""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from prac_lth.tasks import tracking, tracking_runs

STOP_WAIT_S = 1.0  # a run that fails does not wait longer for the monitor (its server may be the failure)
# The monitor says when it starts and stops, and warns when the server goes: the terminal keeps to the run's lines
logging.getLogger("mlflow.system_metrics").setLevel(logging.ERROR)


@contextlib.contextmanager
def system_metrics(run_id: str) -> Iterator[None]:
    uri = tracking.tracking_uri()
    if not tracking.is_server(uri):
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, resume_logging=True, tracking_uri=uri,
                                   node_id=tracking_runs.where_it_runs()["prac.worker"])
    monitor.start()
    try:
        yield
    except BaseException:
        stopping = threading.Thread(target=monitor.finish, daemon=True, name="stop-system-metrics")
        stopping.start()
        stopping.join(STOP_WAIT_S)
        raise
    monitor.finish()
