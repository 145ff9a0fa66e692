"""What some tests need from outside the Python install, each named once: how to tell it is there, what to
install, and the PRAC_REQUIRE_* variable with which CI (.ci/run, bench/gpu_check.sh) turns its absence from
a skip into a failure. A test asks with `@pytest.mark.needs("chromium")` (conftest.py checks it before the
test's fixtures are built)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from prac_lth.deployments import postgres
from prac.data.fashion_mnist import DEFAULT_DIR as FASHION_DIR

CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class External:
    what: str
    present: Callable[[], bool]
    install: str
    require_env: str


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


EXTERNALS = {e.what: e for e in (
    External("fashion-mnist", lambda: (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
             "apt-get install dataset-fashion-mnist", "PRAC_REQUIRE_FASHION_MNIST"),
    External("chromium", lambda: _executable(CHROMIUM), "apt-get install chromium", "PRAC_REQUIRE_BROWSER"),
    External("postgresql", lambda: postgres.bin_dir() is not None, "apt-get install postgresql",
             "PRAC_REQUIRE_POSTGRES"),
    External("cuda", torch.cuda.is_available, "a machine with an NVIDIA GPU and a CUDA build of torch",
             "PRAC_REQUIRE_CUDA"),
)}


def check_needs(item: pytest.Item) -> None:
    """What conftest.py's setup hook runs for every test: its `needs` markers."""
    for mark in item.iter_markers("needs"):
        require(*mark.args)


def require(what: str) -> None:
    """Return if `what` is there; else skip with one line naming what to install, or fail where it is required."""
    external = EXTERNALS[what]
    if external.present():
        return
    if os.environ.get(external.require_env) == "1":
        pytest.fail(f"{external.require_env}=1 but there is no {what} ({external.install})", pytrace=False)
    pytest.skip(f"no {what} ({external.install}; {external.require_env}=1 makes this a failure)")
