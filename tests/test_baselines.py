"""The paper's baselines at equal budget (prac.imp.budget): SNIP, GraSP and SynFlow pruning iteratively on the
prac run's PrAC sets, Entropy and SVP subsets as large as those sets, each round as many iterations as the prac
run's. Checked on the files of a short digits comparison run through the engine, prac listed last (a method at
its budget must wait for it)."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from prac.artifacts import read_mask, read_prac_set
from prac.experiment import compare_in_process
from prac.imp.context import build_context
from prac.imp.imp_steps import arm_snapshot, round0_file
from prac.layout.run_paths import run_paths
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.strategies.methods import METHODS
from prac.training.evaluate import probabilities
from prac.training.masks import MaskEnforcer
from prac.training.round_file import load_round
from prac.training.selection import entropy, highest_scores
from prac_lth.cli import main

ROUNDS = 2
PRUNING = ["snip", "grasp", "synflow"]
SUBSETS = ["entropy-subset", "svp-subset"]
ITEMS = [f"prune.rounds={ROUNDS}", "runtime.threads=1", "runtime.evaluate_tickets=none"]

pytestmark = pytest.mark.slow


def config_of(method: str, output_dir) -> object:
    return apply_overrides(preset_config("digits-smoke"), [f"method={method}", *ITEMS,
                                                          f"runtime.output_dir={output_dir}"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("baselines")
    configs = {m: config_of(m, output_dir) for m in [*PRUNING, *SUBSETS, "prac"]}  # prac last: run first anyway
    rows = compare_in_process(list(configs.values()), log=lambda line: None)
    return configs, {m: [r for r in rows if r["method"] == m] for m in configs}


def sets(config, r: int):
    return read_prac_set(run_paths(config).round(r) / "prac_set.parquet").prac_set


def mask(config, r: int):
    return read_mask(run_paths(config).round(r) / "mask.parquet").mask


def test_every_method_at_prac_budget_trains_what_prac_trained_round_by_round(runs):
    configs, records = runs
    assert {m for m in METHODS if METHODS.get(m).budget == "prac-run"} == set(PRUNING)
    for method in PRUNING + SUBSETS:
        for r in range(1, ROUNDS):
            own, prac = records[method][r], records["prac"][r]
            assert own["train_set_size"] == prac["train_set_size"], method
            assert abs(own["train_iterations"] - prac["train_iterations"]) <= 0.05 * prac["train_iterations"], method
            assert not own["early_stopped"]  # the prac run's epochs, not a stopping rule of its own
        assert records[method][0]["epochs_run"] == records["prac"][0]["epochs_run"]  # round 0 where prac's is


def test_the_pruning_baselines_train_on_prac_runs_sets_and_prune_by_their_own_criterion(runs):
    configs, records = runs
    for r in range(ROUNDS):
        prac_set, prac_mask = sets(configs["prac"], r), mask(configs["prac"], r)
        masks = {m: mask(configs[m], r) for m in PRUNING}
        for method in PRUNING:
            assert (sets(configs[method], r).in_prac == prac_set.in_prac).all(), method
            assert records[method][r]["sparsity"] == pytest.approx(records["prac"][r]["sparsity"])  # the same rate
            assert not all(torch.equal(masks[method][n], prac_mask[n]) for n in prac_mask), method  # not |w|
        assert not all(torch.equal(masks["snip"][n], masks["grasp"][n]) for n in prac_mask)
        assert not all(torch.equal(masks["snip"][n], masks["synflow"][n]) for n in prac_mask)


def test_svp_takes_the_samples_most_uncertain_under_the_early_dense_model(runs):
    configs, _ = runs
    scores = pq.read_table(run_paths(configs["svp-subset"]).root / "dense_predictions.parquet")
    scores = scores.column("proxy_entropy").to_numpy()
    assert np.isfinite(scores).all() and scores.std() > 0
    for r in range(ROUNDS):
        count = int(sets(configs["prac"], r).in_prac.sum())
        assert (sets(configs["svp-subset"], r).in_prac == highest_scores(scores, count)).all()


def test_entropy_takes_the_samples_most_uncertain_under_the_rounds_own_sparse_model(runs):
    configs, _ = runs
    config = configs["entropy-subset"]
    ctx = build_context(config)
    for r in range(ROUNDS):
        trained = round0_file(ctx) if r == 0 else run_paths(config).round(r) / "train.pt"  # round 0 is shared
        snap, _ = arm_snapshot(ctx, load_round(trained), r)
        model = ctx.new_model()
        model.load_state_dict(snap.best_state)
        MaskEnforcer(model, mask(config, r - 1) if r else {}).apply_to_weights()
        probs = probabilities(model, ctx.data.train, ctx.data, config.train.channels_last).numpy()
        count = int(sets(configs["prac"], r).in_prac.sum())
        assert (sets(config, r).in_prac == highest_scores(entropy(probs), count)).all(), r


def test_a_method_at_prac_budget_without_its_prac_run_stops_in_one_line(tmp_path, capsys):
    for command in (["run", "digits-smoke", "--method", "snip"], ["run", "digits-smoke", "--method", "svp-subset"],
                    ["run", "digits-smoke", "--method", "snip", "--engine-only"],
                    ["compare", "digits-smoke", "--methods", "lt,snip", "--engine-only"]):
        code = main([*command, "--set", f"prune.rounds={ROUNDS}", "--output-dir", str(tmp_path)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "the prac run of the same settings and seed" in err, err
        assert "--method prac --seed 0" in err and f"--methods prac,{command[3].split(',')[-1]}" in err
    assert not list(tmp_path.rglob("train.pt"))  # nothing trained, lt included
