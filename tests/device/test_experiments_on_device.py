"""Every method end to end on the device (engine, CIFAR-10 pickle files), and what its files hold when read
back on the CPU: nested masks at the right sparsities, pruned weights at zero, PrAC sets whose CEP is the
disagreement of the dense and the sparse model, retrained tickets."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from device_runs import BATCH, short_config
from prac.artifacts import read_mask, read_prac_set
from prac.imp.context import build_context
from prac.experiment import run_experiment
from prac.training.masks import is_nested
from prac.strategies.methods import get_method
from prac.training.round_file import load_round
from prac.strategies.pruners import Magnitude
from prac.layout.run_paths import run_paths
from prac.training.schedule import scaled_schedule
from prac.imp.stages import predictions_on_d0

ROUNDS = 3
# EL2N and reinit on the device; the paper's baselines (their scores' autograd, SynFlow in float64, the prac run's
# budget read back) too.
METHODS = ["prac", "lt", "random", "el2n-subset", "random-reinit", "snip", "grasp", "synflow", "entropy-subset",
           "svp-subset"]
# On the CPU the methods run end to end on digits (tests/test_methods.py, tests/test_baselines.py); here, where
# these tests only check themselves on the CPU, one method of each kind: CEP, next-round tickets, a pruning score
# at the prac run's budget, a data score (random pruning is lt's path with another pruner)
ON_THE_CPU = ["prac", "lt", "synflow", "el2n-subset"]


@pytest.fixture(scope="module")
def run_method(device, cifar_dir, tmp_path_factory):
    """Runs a method once per device (the arms share one output folder, so round 0 is trained once)."""
    output_dir = tmp_path_factory.mktemp(f"runs-{device}")
    done = {}

    def run(method: str):
        if method not in done:
            config = short_config(device, cifar_dir, output_dir, f"method={method}", "runtime.evaluate_tickets=all")
            if method != "prac":
                # prac first, whichever test asks first: it trains the shared round 0 that every other arm reuses
                # (and is the run whose budget an at-budget arm trains at, prac.imp.budget)
                run("prac")
            lines: list[str] = []
            done[method] = run_experiment(config, log=lines.append), lines
        return done[method]
    return run


def train_file(result, r: int):
    paths = run_paths(result.config)
    return (paths.shared_round0 if r == 0 else paths.round(r)) / "train.pt"


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_end_to_end_and_its_files_read_back_on_the_cpu(device, run_method, method):
    if device == "cpu" and method not in ON_THE_CPU:
        pytest.skip(f"{method}: on CUDA only (on the CPU: tests/test_methods.py, tests/test_baselines.py)")
    result, lines = run_method(method)
    paths = run_paths(result.config)
    assert [r.round for r in result.rounds] == list(range(ROUNDS))
    masks = [read_mask(paths.round(r) / "mask.parquet", expected_fingerprint=result.fingerprint).mask
             for r in range(ROUNDS)]
    for r, (record, mask) in enumerate(zip(result.rounds, masks)):
        assert all(m.device.type == "cpu" and m.dtype == torch.bool for m in mask.values())
        assert record.conv_sparsity == pytest.approx(1 - 0.8 ** (r + 1), abs=1e-3)  # the paper's ResNet rate
        assert record.output_sparsity == 0 and 0 < record.sparsity < record.conv_sparsity  # the classifier dense
        if r:
            assert is_nested(mask, masks[r - 1])
        trained = load_round(train_file(result, r))  # written from device tensors, read on the CPU
        assert all(t.device.type == "cpu" for t in trained.final.last_state.values())
        if r:  # round r trained under mask r-1: its pruned weights stayed exactly zero
            assert all((trained.final.last_state[n][~masks[r - 1][n]] == 0).all() for n in mask)
        prac_set = read_prac_set(paths.round(r) / "prac_set.parquet", expected_fingerprint=result.fingerprint).prac_set
        assert int(prac_set.trained.sum()) == record.train_set_size
        assert int(prac_set.in_prac.sum()) == record.prac_set_size > 0
        assert math.isfinite(record.ticket_test_acc) and math.isfinite(record.test_acc)
    described = get_method(method)
    if isinstance(described.pruner, Magnitude) and not described.ticket_start.fresh_init:
        # magnitude tickets from θ_rewind learn; random masks or initialisations need not in 8 short epochs
        assert result.rounds[-1].ticket_test_acc > 0.2  # ten classes: well above chance (0.1)


def test_prac_trains_later_rounds_on_its_prac_set_for_scaled_epochs(run_method):
    prac, _ = run_method("prac")
    lt, _ = run_method("lt")
    assert prac.rounds[0].train_set_size == lt.rounds[0].train_set_size  # round 0: all of D0, shared
    d0 = lt.rounds[0].train_set_size
    for r in range(1, ROUNDS):
        size = prac.rounds[r].train_set_size
        assert size == prac.rounds[r - 1].prac_set_size <= lt.rounds[r].train_set_size == d0
        scaled = scaled_schedule(prac.config.train, size, d0, prac.config.prac.schedule_scaling).epochs
        assert prac.rounds[r].epochs_run <= scaled  # the epochs scaled to the set (fewer if early stop fired)
        assert prac.rounds[r].train_iterations == prac.rounds[r].epochs_run * math.ceil(size / BATCH)
        assert lt.rounds[r].train_iterations == lt.config.train.epochs * math.ceil(d0 / BATCH)
    assert prac.rounds[-1].cumulative_iterations <= lt.rounds[-1].cumulative_iterations


def test_cep_on_the_device_is_where_the_dense_and_the_sparse_model_disagree(run_method):
    result, _ = run_method("prac")
    ctx = build_context(result.config)
    paths = run_paths(result.config)
    dense = pq.read_table(paths.root / "dense_predictions.parquet").column("prediction").to_numpy()
    for r in range(1, ROUNDS):
        best = load_round(train_file(result, r)).final.best_state
        sparse = predictions_on_d0(ctx, ctx.place(best))  # placed once, predicted on the device
        prac_set = read_prac_set(paths.round(r) / "prac_set.parquet").prac_set
        np.testing.assert_array_equal(prac_set.in_cep, dense != sparse)
        np.testing.assert_array_equal(prac_set.in_prac, prac_set.in_cet | prac_set.in_cep)
        assert prac_set.in_cep.any()


def test_prac_tickets_are_retrained_on_all_of_d0_for_the_full_schedule(run_method):
    result, _ = run_method("prac")
    d0 = result.rounds[0].train_set_size
    for r in range(ROUNDS):
        ticket = json.loads((run_paths(result.config).round(r) / "ticket.json").read_text())
        assert ticket["source"] == "retrain"
        assert ticket["ticket_iterations"] == result.config.train.epochs * math.ceil(d0 / BATCH)
        assert ticket["ticket_test_acc"] == result.rounds[r].ticket_test_acc


def test_lt_and_random_reuse_round_0_and_take_tickets_from_the_next_round(run_method):
    prac, _ = run_method("prac")
    for method in ("lt", "random"):
        result, lines = run_method(method)
        assert any("reusing the shared dense round" in line for line in lines)
        sources = [json.loads((run_paths(result.config).round(r) / "ticket.json").read_text())["source"]
                   for r in range(ROUNDS)]
        assert sources == ["round 1 training", "round 2 training", "retrain"]
