"""Every module of the project imports on its own (the quick tier's floor: `pytest -m 'not slow'` runs this,
then exercises each module further in its own tests). A module that no test imports is caught here."""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("prac", "prac_lth", "tasks", "flows", "deployments")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("script", sorted(p.stem for p in (ROOT / "bench").glob("*.py")))
def test_benchmark_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # the scripts import bench/common.py as `common`
    importlib.import_module(script)


def test_every_package_is_walked():
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert found == set(PACKAGES), found  # a new package joins PACKAGES (and pyproject's packages.find)
