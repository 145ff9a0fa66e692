"""Process settings for Prefect, set before it is imported: quiet telemetry, results beside the runs."""
from __future__ import annotations

import os
from pathlib import Path


def prepare_prefect_environment(output_dir: str) -> None:
    # A harmless "database is locked" telemetry traceback otherwise (local mode, offline).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Persisted task results live with the artifacts they point to, so resuming needs only the
    # output folder (any worker that sees it can resume a failed round).
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(Path(output_dir).resolve() / ".prefect-results"))
