"""A throwaway MLflow tracking store for one test module: SQLite in a fresh folder, set as
MLFLOW_TRACKING_URI, and that folder as the working directory (MLflow's default artifact root is ./mlruns)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow import MlflowClient


@contextmanager
def temporary_store(tmp_path_factory, name: str = "mlflow") -> Iterator[tuple[Path, str, MlflowClient]]:
    root = tmp_path_factory.mktemp(name)
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_UI_URL", raising=False)  # links point at the default address
        mp.chdir(root)
        yield root, uri, MlflowClient(tracking_uri=uri)
