"""The config is built and checked once, at the edge: the compare flow builds each experiment's config once (or
none, when its caller passes them built), its subflows read theirs back, and the stage tasks get the object."""
from __future__ import annotations

import pytest

from prac.build_config import build_config
from prac.settings.config import ExperimentConfig

pytestmark = pytest.mark.slow

PRESET = "digits-smoke"
METHODS, SEEDS = ["prac", "lt"], [0]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    from tests.prefect_homes import prefect_harness

    root = tmp_path_factory.mktemp("config-once")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        with prefect_harness():
            yield root


@pytest.fixture
def builds(monkeypatch):
    """Every build_config call (the flows' own import of it and the module's), and every config a stage's cache
    key was computed from."""
    import prac_lth.flows.config_params as config_params
    import prac_lth.tasks.caching as caching

    seen: dict[str, list] = {"built": [], "keyed": []}

    def counted_build(*args, **kwargs):
        seen["built"].append(args[:3])
        return build_config(*args, **kwargs)

    original_key = caching.stage_cache_key

    def keyed(context, parameters):
        seen["keyed"].append(parameters["config"])
        return original_key(context, parameters)

    monkeypatch.setattr(config_params, "build_config", counted_build)
    monkeypatch.setattr(caching, "stage_cache_key", keyed)
    return seen


def _overrides(root, name: str) -> list[str]:
    return [f"runtime.output_dir={root / name}", "prune.rounds=1", "runtime.evaluate_tickets=none"]


def test_the_compare_flow_builds_each_config_once_and_its_subflows_none(harness, builds):
    from prac_lth.flows.compare import compare

    rows = compare(preset=PRESET, methods=METHODS, seeds=SEEDS, overrides=_overrides(harness, "built-here"))
    assert {row["method"] for row in rows} == set(METHODS)
    assert builds["built"] == [(PRESET, method, seed) for seed in SEEDS for method in METHODS]
    assert builds["keyed"] and all(isinstance(c, ExperimentConfig) for c in builds["keyed"])


def test_configs_passed_built_are_not_built_again(harness, builds):
    from prac_lth.flows.compare import compare

    overrides = _overrides(harness, "built-by-caller")
    configs = [build_config(PRESET, method, seed, overrides) for seed in SEEDS for method in METHODS]
    rows = compare(preset=PRESET, methods=METHODS, seeds=SEEDS, overrides=overrides,
                   configs=[c.model_dump(mode="json") for c in configs])
    assert {row["method"] for row in rows} == set(METHODS)
    assert builds["built"] == []
    assert set(c.method for c in builds["keyed"]) == set(METHODS)
