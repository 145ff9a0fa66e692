"""Every module of the project imports on its own (the quick tier's floor: `pytest -m 'not slow'` runs this,
then exercises each module further in its own tests). A module that no test imports is caught here. And no two
modules import each other, directly or around a loop: shared types live in a leaf module (prac/training/round_types.py)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("prac", "prac_lth")


def _project_modules() -> dict[str, Path]:
    """module name -> its file, for every module of the project's packages."""
    files = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


@pytest.mark.parametrize("name", sorted(_project_modules()))
def test_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("script", sorted(p.stem for p in (ROOT / "bench").glob("*.py")))
def test_benchmark_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # the scripts import bench/common.py as `common`
    importlib.import_module(script)


def test_every_package_is_walked():
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert found == set(PACKAGES), found  # a new package joins PACKAGES (and pyproject's packages.find)


def _imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules that `name` imports anywhere in its file (inside functions too: a late import
    that breaks a cycle at run time still ties the two files together)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from prac_lth.tasks import tracking` is prac_lth.tasks.tracking
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # not its own package
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycles():
    known = _project_modules()
    graph = {name: _imported(name, path, known) for name, path in known.items()}
    assert sum(map(len, graph.values())) > 100  # the graph was read (the project has ~290 imports)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_beside_a_flow_is_named_like_a_package():
    # Prefect loads a deployment's entrypoint by its path, with the file's folder first on sys.path: a module
    # there named like one of our packages (prac_lth/flows/prac_lth.py once) hides the package from the flow.
    import yaml

    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    folders = {(ROOT / d["entrypoint"].split(":")[0]).parent for d in deployments}
    assert folders and all(folder.is_dir() for folder in folders), folders
    for folder in folders:
        assert not {p.stem for p in folder.glob("*.py")} & set(PACKAGES), folder


def _package_of(module: str) -> str:
    """prac.training.train -> prac.training; a module directly under prac (prac.experiment) stands alone."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_two_of_the_science_packages_import_each_other():
    # ARCHITECTURE.md draws prac/ as layers of packages: one that imported another from both sides would have
    # no place in that drawing (a module's file could then reach back up through its own package).
    known = {name: path for name, path in _project_modules().items() if name.startswith("prac.")}
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        graph.setdefault(_package_of(name), set()).update(
            _package_of(other) for other in _imported(name, path, known) if _package_of(other) != _package_of(name))
    assert {"prac.training", "prac.imp", "prac.strategies"} <= set(graph)  # the packages were found
    assert _cycles(graph) == []
