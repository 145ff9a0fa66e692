"""Caches that cannot lie: stage keys hold the science code's version and the checksums of their inputs;
the files a stage reuses by itself (the shared round 0, round checkpoints, a finished experiment's
rounds.json) are reused only by the code that wrote them; `--recompute STAGE[@ROUND]` is validated."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from prac import code_version

from prac.imp import imp_steps
from prac.imp.context import build_context
from prac.errors import UserError
from prac.experiment import finished_rounds, run_experiment
from prac.settings.presets import preset_config
from prac.imp.recompute import Recompute, is_forced, parse_recompute
from prac.layout.run_paths import run_paths
from prac_lth.tasks.caching import stage_cache_key

OTHER_CODE = "0123456789abcdef"


def _config(tmp_path, **runtime):
    return preset_config("digits-smoke", runtime={"device": "cpu", "output_dir": str(tmp_path), **runtime},
                         prune={"rounds": 2}, train={"epochs": 3})


def _key(config, stage: str, round_index: int | None = None, **inputs) -> str:
    """The key of a stage task's call (prac_lth/tasks/stage_tasks.py: the config object, round_index, inputs by
    name)."""
    context = SimpleNamespace(task=SimpleNamespace(name=stage))
    return stage_cache_key(context, {"config": config, "round_index": round_index,
                                     "inputs": inputs})


REF_A = {"path": "/x/mask.parquet", "sha256": "a" * 64}
REF_B = {"path": "/x/mask.parquet", "sha256": "b" * 64}


def test_a_stage_key_holds_the_code_version_and_its_inputs_checksums(tmp_path):
    config = _config(tmp_path)
    key = _key(config, "prune", round_index=2, train=REF_A, mask=None)
    assert code_version.science_code_version() in key and "-r02-" in key
    assert _key(config, "prune", round_index=2, train=REF_A, mask=None) == key  # stable
    assert _key(config, "prune", round_index=2, train=REF_B, mask=None) != key  # another input: recomputed
    assert _key(config, "prune", round_index=2, train={**REF_A, "path": "/moved/mask.parquet"}, mask=None) == key
    pinned = _config(tmp_path, code_version=OTHER_CODE)
    assert _key(pinned, "prune", round_index=2, train=REF_A, mask=None) == key.replace(
        code_version.science_code_version(), OTHER_CODE)


def test_round0_key_is_shared_by_the_arms_but_not_by_other_code(tmp_path):
    prac, lt = _config(tmp_path), _config(tmp_path).model_copy(update={"method": "lt"})
    assert _key(prac, "train-round", round_index=0) == _key(lt, "train-round", round_index=0)
    assert _key(prac, "train-round", round_index=1) != _key(lt, "train-round", round_index=1)
    assert _key(_config(tmp_path, code_version=OTHER_CODE), "train-round", round_index=0) != \
        _key(prac, "train-round", round_index=0)


def test_the_code_version_follows_the_science_sources(tmp_path, monkeypatch):
    copy = tmp_path / "prac"
    shutil.copytree(code_version.SCIENCE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code_version, "SCIENCE_ROOT", copy)
    monkeypatch.delenv("PRAC_LTH_PLUGINS", raising=False)
    code_version._version.cache_clear()
    try:
        before = code_version.science_code_version()
        assert before == code_version._version.__wrapped__(())  # deterministic
        (copy / "training" / "selection.py").write_text((copy / "training" / "selection.py").read_text() + "\n# a fix in CEP\n")
        code_version._version.cache_clear()
        assert code_version.science_code_version() != before
    finally:
        code_version._version.cache_clear()


def test_the_code_version_follows_the_plugin_modules(tmp_path, monkeypatch):
    plugin = tmp_path / "my_selector_plugin.py"
    plugin.write_text("# a researcher's selector\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PRAC_LTH_PLUGINS", raising=False)
    alone = code_version.science_code_version()
    monkeypatch.setenv("PRAC_LTH_PLUGINS", "my_selector_plugin")
    with_plugin = code_version.science_code_version()
    plugin.write_text("# a researcher's selector, fixed\n")
    code_version._version.cache_clear()
    assert len({alone, with_plugin, code_version.science_code_version()}) == 3
    monkeypatch.setenv("PRAC_LTH_PLUGINS", "no_such_plugin_module")
    with pytest.raises(UserError, match="PRAC_LTH_PLUGINS: module 'no_such_plugin_module' is not found"):
        code_version.science_code_version()


@pytest.mark.parametrize("items, expected", [
    (["prune@3"], [Recompute("prune", 3)]),
    (["select-cep"], [Recompute("select-cep", None)]),
    (["train-round@0,retrain@1"], [Recompute("train-round", 0), Recompute("retrain", 1)]),
    ("prune@2", [Recompute("prune", 2)]),  # a deployment parameter given as one text
    ([], []),
    (None, []),
])
def test_recompute_parsed(items, expected):
    assert parse_recompute(items, rounds=4) == expected


@pytest.mark.parametrize("item, fragment", [
    ("pruning@1", "unknown stage 'pruning'"),
    ("prune@4", "from 0 to 3"),
    ("prune@-1", "from 0 to 3"),
    ("prune@x", "from 0 to 3"),
    ("@2", "unknown stage ''"),
])
def test_bad_recompute_is_one_line(item, fragment):
    with pytest.raises(UserError, match=fragment) as error:
        parse_recompute([item], rounds=4)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("items", [3, ["prune", 1], {"prune": 1}])
def test_recompute_of_another_type_is_one_line(items):
    with pytest.raises(UserError, match="recompute must be a list of STAGE"):
        parse_recompute(items, rounds=4)


def test_recompute_covers_its_round_or_every_round():
    forced = parse_recompute(["prune@1", "select-cet", "dense-predictions"], rounds=3)
    assert is_forced(forced, "prune", 1) and not is_forced(forced, "prune", 2)
    assert is_forced(forced, "select-cet", 0) and is_forced(forced, "select-cet", 2)
    assert is_forced(forced, "dense-predictions", None) and not is_forced(forced, "retrain", 1)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, one_thread):
    """A finished 2-round experiment in the engine (no Prefect needed for the files it reuses)."""
    config = _config(tmp_path_factory.mktemp("finished"), evaluate_tickets="none")
    run_experiment(config, log=lambda line: None)
    return config


def test_finished_rounds_are_this_codes_only(finished):
    assert finished_rounds(finished) is not None
    recorded = json.loads((run_paths(finished).root / "config.json").read_text())["code_version"]
    assert recorded == code_version.science_code_version()
    pinned = finished.model_copy(update={"runtime": finished.runtime.model_copy(update={"code_version": OTHER_CODE})})
    assert finished_rounds(pinned) is None  # other code: not finished, run it


def test_shared_round0_is_reused_only_by_its_code_and_intact(finished, tmp_path):
    ctx = build_context(finished)
    assert imp_steps.round0_is_current(ctx)
    pinned = finished.model_copy(update={"runtime": finished.runtime.model_copy(update={"code_version": OTHER_CODE})})
    assert not imp_steps.round0_is_current(build_context(pinned))
    path = imp_steps.round0_file(ctx)
    saved = path.read_bytes()
    try:
        path.write_bytes(saved[:-10] + b"0123456789")  # damaged in place
        assert not imp_steps.round0_is_current(ctx)
    finally:
        path.write_bytes(saved)
    assert imp_steps.round0_is_current(ctx)


def test_rerun_by_other_code_trains_round0_again_and_stamps_it(finished, tmp_path):
    config = finished.model_copy(update={"runtime": finished.runtime.model_copy(
        update={"code_version": OTHER_CODE, "verbose": True})})
    lines: list[str] = []
    ctx = build_context(config)
    imp_steps.train_round_step(ctx, 0, None, None, log=lines.append)
    assert any("written by other code" in line for line in lines), lines
    assert any("epoch" in line for line in lines), "round 0 was not trained again"
    stamp = json.loads(imp_steps.round0_file(ctx).with_name("round0.json").read_text())
    assert stamp["code_version"] == OTHER_CODE and imp_steps.round0_is_current(ctx)


def test_a_method_at_prac_budget_is_keyed_by_what_the_prac_run_spent(finished, tmp_path):
    assert finished.method == "prac"
    snip = finished.model_copy(update={"method": "snip"})
    key = _key(snip, "select-cep", round_index=1)
    assert "-budget" in key and "-budgetunfinished" not in key
    assert "-budget" not in _key(finished.model_copy(update={"method": "lt"}), "select-cep", round_index=1)
    prac_set = run_paths(finished).round(1) / "prac_set.parquet"
    saved = prac_set.read_bytes()
    try:
        prac_set.write_bytes(saved + b"\0")  # the prac run's set of that round recomputed differently
        assert _key(snip, "select-cep", round_index=1) != key
    finally:
        prac_set.write_bytes(saved)
    assert _key(snip, "select-cep", round_index=1) == key
    elsewhere = snip.model_copy(update={"runtime": snip.runtime.model_copy(update={"output_dir": str(tmp_path)})})
    assert "-budgetunfinished-" in _key(elsewhere, "select-cep", round_index=1)  # never a cache hit
