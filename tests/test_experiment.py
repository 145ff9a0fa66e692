"""End to end on digits-smoke: the files an experiment writes, the IMP invariants they must satisfy,
determinism, and the sharing of round 0 between the prac and lt arms.

The runs are module fixtures (each trains for real), shared by the tests that inspect them:
  prac_a  prac, seed 0, into A        lt_a    lt, seed 0, into A after prac_a (reuses round 0)
  prac_b  prac, seed 0, into B        prac_c  prac, seed 1, into C (one round)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from prac.artifacts import read_mask, read_prac_set
from prac.errors import ArtifactError
from prac.experiment import ExperimentResult, run_experiment
from prac.training.masks import is_nested
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config

pytestmark = pytest.mark.slow

ROUNDS = 3  # digits-smoke's rounds


def _run(out: Path, *items: str) -> tuple[ExperimentResult, list[str]]:
    """Run digits-smoke; the log gets one extra line per training ("trainings: N") at the end."""
    import prac.imp.stages

    config = apply_overrides(preset_config("digits-smoke"), [f"runtime.output_dir={out}", "runtime.device=cpu", *items])
    lines: list[str] = []
    trainings = []
    real = prac.imp.stages.train_round

    def counting(*args, **kwargs):
        trainings.append(1)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prac.imp.stages, "train_round", counting)
        result = run_experiment(config, log=lines.append)
    return result, [*lines, f"trainings: {len(trainings)}"]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    return {name: tmp_path_factory.mktemp(f"run_{name}") for name in "ABC"}


@pytest.fixture(scope="module")
def prac_a(dirs):
    # Tickets are not retrained here (a runtime choice): masks and PrAC sets do not depend on it.
    return _run(dirs["A"], "method=prac", "evaluate_tickets=none")


@pytest.fixture(scope="module")
def prac_b(dirs, prac_a):
    return _run(dirs["B"], "method=prac", "evaluate_tickets=none")


@pytest.fixture(scope="module")
def prac_c(dirs):
    return _run(dirs["C"], "method=prac", "seed=1", "rounds=1", "evaluate_tickets=none")


@pytest.fixture(scope="module")
def lt_a(dirs, prac_a):
    return _run(dirs["A"], "method=lt", "evaluate_tickets=all")


def _d0(result: ExperimentResult) -> np.ndarray:
    split = pq.read_table(result.output_dir / "split.parquet").to_pandas()
    return split.loc[split["split"] == "train", "index"].to_numpy()


def _files(result: ExperimentResult, r: int) -> tuple[Path, Path]:
    base = result.output_dir / f"round_{r:02d}"
    return base / "mask.parquet", base / "prac_set.parquet"


# ---------------------------------------------------------------- the prac arm's files


def test_prac_writes_every_round(prac_a):
    result, _ = prac_a
    assert len(result.rounds) == ROUNDS
    assert [rec.round for rec in result.rounds] == list(range(ROUNDS))
    for r in range(ROUNDS):
        mask_path, prac_path = _files(result, r)
        assert mask_path.is_file() and prac_path.is_file()
        mask = read_mask(mask_path, expected_fingerprint=result.fingerprint)
        prac = read_prac_set(prac_path, expected_fingerprint=result.fingerprint)
        assert mask.round == r and prac.round == r
    assert not (result.output_dir / f"round_{ROUNDS:02d}").exists()
    with pytest.raises(ArtifactError):
        read_mask(_files(result, 0)[0], expected_fingerprint="0" * len(result.fingerprint))
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["fingerprint"] == result.fingerprint and config["method"] == "prac"


def test_masks_are_nested_with_the_expected_sparsity(prac_a):
    from prac.models import build_model
    from prac.training.masks import layer_types, prunable_parameters

    result, _ = prac_a
    model = build_model("conv2", in_channels=1, num_classes=10, image_size=8)
    prunable, types = prunable_parameters(model), layer_types(model)  # every conv and linear weight
    # digits-smoke's LTH rates, each type's tensors pooled: round(rate x remaining) of each type a round
    rates = {"conv": 0.1, "linear": 0.2, "output": 0.1}
    remaining = {t: sum(p.numel() for n, p in prunable.items() if types[n] == t) for t in rates}
    previous = None
    for r in range(ROUNDS):
        file = read_mask(_files(result, r)[0], expected_fingerprint=result.fingerprint)
        mask = file.mask
        assert list(mask) == list(prunable)
        assert all(mask[name].shape == prunable[name].shape and mask[name].dtype == torch.bool
                   for name in mask)
        remaining = {t: left - round(rates[t] * left) for t, left in remaining.items()}
        for kind, left in remaining.items():
            of_type = [m for n, m in mask.items() if types[n] == kind]
            assert sum(int(m.sum()) for m in of_type) == left, (r, kind)
            total_of_type = sum(m.numel() for m in of_type)
            assert getattr(result.rounds[r], f"{kind}_sparsity") == pytest.approx(1 - left / total_of_type)
        kept = sum(int(m.sum()) for m in mask.values())
        total = sum(m.numel() for m in mask.values())
        assert kept == sum(remaining.values())
        assert file.sparsity == pytest.approx(1 - kept / total, abs=1e-12)
        assert result.rounds[r].sparsity == pytest.approx(file.sparsity, abs=1e-12)
        if previous is not None:
            assert is_nested(mask, previous), f"mask of round {r} keeps weights round {r - 1} pruned"
            assert result.rounds[r].trained_sparsity == pytest.approx(result.rounds[r - 1].sparsity)
        else:
            assert result.rounds[0].trained_sparsity == 0.0
        previous = mask


def test_prac_sets_cover_d0_and_follow_the_selection_rules(prac_a):
    from prac.data.digits import load_digits

    result, _ = prac_a
    d0 = _d0(result)
    labels = load_digits().train_labels
    sets = [read_prac_set(_files(result, r)[1], expected_fingerprint=result.fingerprint).prac_set
            for r in range(ROUNDS)]
    for r, (s, record) in enumerate(zip(sets, result.rounds)):
        assert len(s.index) == len(d0) == result.rounds[0].train_set_size
        np.testing.assert_array_equal(s.index, d0)
        np.testing.assert_array_equal(s.label, labels[d0])
        np.testing.assert_array_equal(s.in_prac, s.in_cet | s.in_cep)
        assert not (s.in_cet & ~s.trained).any(), "CET must come from the samples trained on"
        # E_F = 0: forgotten at least once, or never learned (-1).
        forgotten = (s.forget_events > 0) | (s.forget_events == -1)
        np.testing.assert_array_equal(s.in_cet, s.trained & forgotten)
        if r == 0:
            assert s.trained.all(), "round 0 trains on all of D0"
            assert not s.in_cep.any(), "CEP starts at round 1"
        assert int(s.trained.sum()) == record.train_set_size
        assert int(s.in_cet.sum()) == record.cet_size
        assert int(s.in_cep.sum()) == record.cep_size
        assert int(s.in_prac.sum()) == record.prac_set_size
        assert record.prac_set_fraction == pytest.approx(record.prac_set_size / len(d0))
        assert 0 < record.prac_set_size < len(d0)
    for r in range(ROUNDS - 1):
        np.testing.assert_array_equal(sets[r + 1].trained, sets[r].in_prac,
                                      err_msg=f"round {r + 1} must train on round {r}'s PrAC set")


def test_prac_round_records(prac_a):
    result, _ = prac_a
    recs = result.rounds
    batch, epochs = 64, 8
    total = 0
    for rec in recs:
        total += rec.train_iterations
        assert rec.cumulative_iterations == total
        assert rec.train_iterations == rec.epochs_run * math.ceil(rec.train_set_size / batch)
        assert 0.0 <= rec.test_acc <= 1.0 and 0.0 <= rec.best_val_acc <= 1.0
        assert math.isnan(rec.ticket_test_acc)  # evaluate_tickets=none
    for a, b in zip(recs, recs[1:]):
        assert b.train_set_size == a.prac_set_size
    # Dynamic iterations (schedule_scaling=epochs): round r >= 1 trains at most E0 * |D| / |D0| epochs.
    d0 = recs[0].train_set_size
    assert recs[0].epochs_run <= epochs
    for rec in recs[1:]:
        assert 1 <= rec.epochs_run <= max(1, round(epochs * rec.train_set_size / d0))
    assert recs[-1].cumulative_iterations < ROUNDS * epochs * math.ceil(d0 / batch)
    # The records on disk say the same.
    on_disk = json.loads((result.output_dir / "rounds.json").read_text())
    assert [row["cumulative_iterations"] for row in on_disk] == [rec.cumulative_iterations for rec in recs]
    assert [row["prac_set_size"] for row in on_disk] == [rec.prac_set_size for rec in recs]


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(prac_a, prac_b, dirs):
    (a, _), (b, _) = prac_a, prac_b
    assert a.fingerprint == b.fingerprint
    assert a.output_dir != b.output_dir and str(a.output_dir).startswith(str(dirs["A"]))
    assert str(b.output_dir).startswith(str(dirs["B"]))
    # Both really trained round 0: the shared dense round lives under each output dir.
    assert list(dirs["B"].glob("digits-smoke/round0-*/train.pt"))
    for r in range(ROUNDS):
        for path_a, path_b in zip(_files(a, r), _files(b, r)):
            assert path_a.read_bytes() == path_b.read_bytes(), f"{path_a.name} of round {r} differs"
    assert [rec.cumulative_iterations for rec in a.rounds] == [rec.cumulative_iterations for rec in b.rounds]
    assert [rec.test_acc for rec in a.rounds] == [rec.test_acc for rec in b.rounds]


def test_a_different_seed_gives_a_different_mask(prac_a, prac_c):
    (a, _), (c, _) = prac_a, prac_c
    assert a.fingerprint != c.fingerprint
    mask_a = read_mask(_files(a, 0)[0]).mask
    mask_c = read_mask(_files(c, 0)[0]).mask
    assert mask_a.keys() == mask_c.keys()
    assert any(not np.array_equal(mask_a[k].numpy(), mask_c[k].numpy()) for k in mask_a)
    # Same sparsity though: the seed changes which weights, not how many.
    assert read_mask(_files(c, 0)[0]).sparsity == pytest.approx(read_mask(_files(a, 0)[0]).sparsity)


# ---------------------------------------------------------------- the lt arm and the shared round 0


def test_lt_trains_on_all_of_d0_every_round(prac_a, lt_a):
    result, _ = lt_a
    d0 = len(_d0(result))
    full = 8 * math.ceil(d0 / 64)
    assert len(result.rounds) == ROUNDS
    for r, rec in enumerate(result.rounds):
        assert rec.train_set_size == d0
        assert rec.prac_set_size == d0
        assert rec.cep_size == 0
        assert rec.cet_size > 0
        assert rec.train_iterations == full and rec.epochs_run == 8 and not rec.early_stopped
        s = read_prac_set(_files(result, r)[1], expected_fingerprint=result.fingerprint).prac_set
        assert s.trained.all() and s.in_prac.all() and not s.in_cep.any()
        np.testing.assert_array_equal(s.in_cet, (s.forget_events > 0) | (s.forget_events == -1))
        assert int(s.in_cet.sum()) == rec.cet_size
        # the same counts of each layer type as prac's magnitudes removed (other weights)
        assert read_mask(_files(result, r)[0]).sparsity == pytest.approx(prac_a[0].rounds[r].sparsity, abs=1e-12)
    assert result.rounds[-1].cumulative_iterations == ROUNDS * full
    for r in range(1, ROUNDS):
        assert is_nested(read_mask(_files(result, r)[0]).mask, read_mask(_files(result, r - 1)[0]).mask)


def test_lt_ticket_of_round_r_is_its_round_r_plus_1(lt_a):
    result, log = lt_a
    recs = result.rounds
    for a, b in zip(recs, recs[1:]):
        assert a.ticket_test_acc == b.test_acc
    assert not math.isnan(recs[-1].ticket_test_acc)  # the last mask is retrained for real
    # Trained once each: rounds 1..R-1 (which are the retrains of masks 0..R-2) and the retrain of the
    # last mask; round 0 is reused from the prac run. Retraining every mask again would be 2R-1.
    assert log[-1] == f"trainings: {ROUNDS}"


def test_prac_trains_once_per_round_without_ticket_evaluation(prac_a, prac_b):
    for _, log in (prac_a, prac_b):
        assert log[-1] == f"trainings: {ROUNDS}"


def test_lt_reuses_the_shared_round0_of_prac(prac_a, lt_a, dirs):
    (prac, prac_log), (lt, lt_log) = prac_a, lt_a
    assert any("reusing the shared dense round" in line for line in lt_log), lt_log
    assert not any("reusing" in line for line in prac_log)
    assert len(list(dirs["A"].glob("digits-smoke/round0-*"))) == 1
    p0, l0 = prac.rounds[0], lt.rounds[0]
    full = 8 * math.ceil(p0.train_set_size / 64)
    assert l0.train_iterations == full
    # prac takes round 0 where early stop fired, if it did; lt always takes the full dense training.
    assert p0.train_iterations <= l0.train_iterations
    if p0.early_stopped:
        assert p0.train_iterations < l0.train_iterations
    else:
        assert p0.train_iterations == l0.train_iterations
        assert p0.test_acc == l0.test_acc
        # Same weights pruned: same round-0 mask bits (the files differ only in their fingerprints).
        assert read_mask(_files(prac, 0)[0]).sha256 == read_mask(_files(lt, 0)[0]).sha256
