"""PREFECT_HOMEs whose database already exists. Every CLI run of the tests starts Prefect's temporary server on
a PREFECT_HOME of its own; creating its SQLite database (Prefect's migrations) took 16 s of a 37 s
digits-smoke run here. The database is created once per test process (`prefect server database upgrade`) and
copied. Tests about a home's first start use an empty one: tests/test_environment.py and the kill trials
drawn while Prefect's server starts (tests/test_faults.py)."""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

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
