"""Every module of the project imports on its own (the quick tier's floor: `pytest -m 'not slow'` runs this,
then exercises each module further in its own tests). A module that no test imports is caught here. No two
modules import each other, directly or around a loop: shared types live in a leaf module (prac/training/round_types.py).
And the code is layered as ARCHITECTURE.md draws it: LAYERS below is that drawing, read back from the page, every
module is on it once, and every import goes from a layer to a lower one."""
from __future__ import annotations

import ast
import importlib
import re
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


# The layers of ARCHITECTURE.md ("## Layers"), top to bottom, as paths of the drawing: a folder (`prac/imp/`) is
# that package and every module under it, a file (`prac/experiment.py`) that module alone. A module imports only
# modules of its own entry (inside a package, freely: test_no_import_cycles watches those) or of a lower layer,
# never one of a higher layer nor another entry of its own layer (the entries of a line are independent peers).
LAYERS = [
    ["prac_lth/cli.py"],
    ["prac_lth/environment.py"],
    ["prac_lth/deployments/"],
    ["prac_lth/flows/"],
    ["prac_lth/tasks/", "prac_lth/stops.py", "prac_lth/__init__.py"],
    ["prac_lth/outages.py"],
    ["prac/experiment.py"],
    ["prac/reporting/"],
    ["prac/export/"],
    ["prac/imp/"],
    ["prac/build_config.py"],
    ["prac/layout/"],
    ["prac/strategies/"],
    ["prac/training/"],
    ["prac/data/", "prac/models/"],
    ["prac/artifacts/"],
    ["prac/hardware/"],
    ["prac/code_version.py"],
    ["prac/settings/", "prac/plugins.py", "prac/registry.py"],
    ["prac/errors.py", "prac/seeds.py", "prac/run_layout.py", "prac/__init__.py"],
]

_ENTRY = re.compile(r"[A-Za-z_][\w/]*(/|\.py)")


def _drawn_layers(text: str) -> list[list[str]]:
    """The layers of the fenced block under "## Layers": a line at the left margin names a package (`prac/ ...`),
    a line indented two spaces is one layer of it (its entries, comma-separated, then two spaces or more and what
    they are), a line indented further carries on the description above it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Layers"))
    opening = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    layers, package = [], None
    for line in lines[opening + 1:]:
        if line.startswith("```"):
            return layers
        if not line.strip() or line.startswith("   "):
            continue
        if line.startswith("  "):
            names = re.split(r"\s{2,}", line.strip())[0]
            entries = [name.strip() for name in names.split(",")]
            assert package and all(_ENTRY.fullmatch(entry) for entry in entries), line
            layers.append([package + entry for entry in entries])
        else:
            package = line.split()[0]
            assert re.fullmatch(r"\w+/", package), line
    raise AssertionError("the drawing under '## Layers' has no closing fence")


def _entry_module(entry: str) -> tuple[str, bool]:
    """A drawn path -> (module name, whether it is a package that takes its modules along)."""
    if entry.endswith("/"):
        return entry.rstrip("/").replace("/", "."), True
    name = entry.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return name, False


def _place(modules, layers: list[list[str]]) -> tuple[dict[str, str], list[str]]:
    """module -> the entry it is on, and what is wrong with the map: a module on no entry or on several, an entry
    drawn twice or naming no module."""
    entries = [entry for layer in layers for entry in layer]
    problems = [f"{entry} is drawn twice" for entry in sorted(set(entries)) if entries.count(entry) > 1]
    found: dict[str, list[str]] = {module: [] for module in modules}
    for entry in entries:
        name, package = _entry_module(entry)
        covered = [m for m in found if m == name or (package and m.startswith(name + "."))]
        problems += [f"{entry} names no module"] if not covered else []
        for module in covered:
            found[module].append(entry)
    problems += [f"{module} is on no layer" for module, on in sorted(found.items()) if not on]
    problems += [f"{module} is on {' and '.join(on)}" for module, on in sorted(found.items()) if len(on) > 1]
    return {module: on[0] for module, on in found.items() if len(on) == 1}, problems


def _upward_imports(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Every import that does not go down: to a layer above its module's, or to another entry of the same layer."""
    entry_of, problems = _place(graph, layers)
    assert not problems, problems
    depth = {entry: i for i, layer in enumerate(layers) for entry in layer}
    return sorted(f"{module} ({entry_of[module]}) imports {other} ({entry_of[other]})"
                  for module, imports in graph.items() for other in imports
                  if entry_of[other] != entry_of[module] and depth[entry_of[other]] <= depth[entry_of[module]])


def _import_graph() -> dict[str, set[str]]:
    known = _project_modules()
    return {name: _imported(name, path, known) for name, path in known.items()}


def test_architecture_md_draws_the_layers_this_test_checks():
    assert _drawn_layers((ROOT / "ARCHITECTURE.md").read_text()) == LAYERS


def test_every_module_is_on_exactly_one_layer():
    assert _place(_project_modules(), LAYERS)[1] == []


def test_every_import_goes_down_a_layer():
    graph = _import_graph()
    assert sum(map(len, graph.values())) > 100  # the graph was read
    assert _upward_imports(graph, LAYERS) == []


def test_the_layer_check_catches_an_upward_import():
    graph = _import_graph()
    graph["prac.errors"] = {"prac.experiment"}  # a leaf reaching to the top of the science
    graph["prac.settings.config"] = {"prac.plugins"}  # a peer on its own layer
    graph["prac_lth.tasks.caching"] = {"prac_lth.flows.fleet"}  # tasks reaching up into the flows
    assert _upward_imports(graph, LAYERS) == [
        "prac.errors (prac/errors.py) imports prac.experiment (prac/experiment.py)",
        "prac.settings.config (prac/settings/) imports prac.plugins (prac/plugins.py)",
        "prac_lth.tasks.caching (prac_lth/tasks/) imports prac_lth.flows.fleet (prac_lth/flows/)"]
    assert _upward_imports({"a.top": {"a.low"}, "a.low": {"a.top"}}, [["a/top.py"], ["a/low.py"]]) == [
        "a.low (a/low.py) imports a.top (a/top.py)"]


def test_the_layer_check_catches_a_module_off_the_map():
    modules = [*_project_modules(), "prac.new_module"]
    assert _place(modules, LAYERS)[1] == ["prac.new_module is on no layer"]
    assert _place(modules, [*LAYERS, ["prac/new_module.py", "prac/imp/stages.py", "prac/gone/"]])[1] == [
        "prac/gone/ names no module", "prac.imp.stages is on prac/imp/ and prac/imp/stages.py"]


def test_the_drawing_is_read_line_by_line():
    text = "## Layers\n\n```\na/   the package\n  top.py, sub/   the top\n                 more of it\n  low.py\n```\n"
    assert _drawn_layers(text) == [["a/top.py", "a/sub/"], ["a/low.py"]]


def test_the_science_never_imports_prefect_or_mlflow():
    found = set()
    for name, path in _project_modules().items():
        if name.startswith("prac."):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {(name, alias.name.split(".")[0]) for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add((name, node.module.split(".")[0]))
    assert {root for _, root in found} >= {"torch", "numpy", "pyarrow"}  # the imports were read
    assert sorted((name, root) for name, root in found if root in ("prefect", "mlflow")) == []
