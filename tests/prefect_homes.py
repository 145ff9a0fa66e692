"""PREFECT_HOMEs whose database already exists. Every CLI run of the tests starts Prefect's temporary server on
a PREFECT_HOME of its own; creating its SQLite database (Prefect's migrations) took 16 s of a 37 s
digits-smoke run here. The database is created once per test process (`prefect server database upgrade`) and
copied. Tests about a home's first start use an empty one: tests/test_environment.py and the kill trials
drawn while Prefect's server starts (tests/test_faults.py). Prefect's test harness, for flows called in-process, serves
a copy of it too (prefect_harness)."""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Iterator
from unittest import mock

PREFECT = str(Path(sys.executable).parent / "prefect")


def migrated_prefect_home(path: Path) -> Path:
    """`path`, holding a copy of a created Prefect database unless it is there already."""
    if not path.exists():
        shutil.copytree(_template(), path)
    return path


@cache
def _template() -> Path:
    root = Path(tempfile.mkdtemp(prefix="prac-prefect-home-"))
    atexit.register(shutil.rmtree, root, True)
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    subprocess.run([PREFECT, "server", "database", "upgrade", "-y"], env=env, check=True, capture_output=True,
                   timeout=600)
    assert (home / "prefect.db").is_file(), f"no database in {home}"
    return home


@contextlib.contextmanager
def prefect_harness() -> Iterator[None]:
    """Prefect's own test harness (a temporary server on a new database, for flows called in-process), its database
    a copy of the created one: the server starts without running Prefect's migrations (14 s against 6 s here). The
    harness makes its database in a folder from `tempfile.mkdtemp`, which it imports by name; that one call is
    given a folder holding the copy."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL
    from prefect.testing import utilities

    copies: list[Path] = []

    def folder_with_database() -> str:
        folder = Path(tempfile.mkdtemp(prefix="prac-prefect-harness-"))
        copies.append(folder / "prefect-test.db")  # the harness's file name
        shutil.copy(_template() / "prefect.db", copies[-1])
        return str(folder)

    with mock.patch.object(utilities, "mkdtemp", folder_with_database):
        with utilities.prefect_test_harness(server_startup_timeout=120):
            # the harness serves the copy (a new Prefect that named its file otherwise would migrate a new one)
            assert PREFECT_SERVER_DATABASE_CONNECTION_URL.value().endswith(str(copies[-1])), copies
            yield
