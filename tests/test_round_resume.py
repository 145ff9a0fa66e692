"""A training round resumed from its per-epoch checkpoint (real digits data, preset digits-smoke, CPU):
interrupted after epoch k and resumed with a fresh model object, it ends bit-identical to a round
that ran through; a finished checkpoint trains nothing; another round's or a damaged file is refused."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from prac.artifacts import load_torch, save_torch
from prac.training.early_stop import MaskDistanceEarlyStop
from prac.errors import ArtifactError
from prac.training.masks import full_mask
from prac.training.round_types import EarlyStopSpec, RoundResult, RoundSpec, Snapshot
from prac.training.schedule import RoundSchedule
from prac.training.train import train_round
from prac.training.train_step import TrainStep

WINDOW = 2


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def steps(monkeypatch):
    """Counts the training steps taken (TrainStep._step: the optimizer updates) while the test runs."""
    count = [0]
    step = TrainStep._step

    def counted(self, batch: int) -> None:
        count[0] += 1
        step(self, batch)
    monkeypatch.setattr(TrainStep, "_step", counted)
    return count


class Interrupted(Exception):
    pass


def schedule(epochs: int, milestones: tuple[int, ...] = ()) -> RoundSchedule:
    return RoundSchedule(epochs=epochs, milestones=milestones, warmup_epochs=0, lr=0.05, gamma=0.1)


def run(ctx, spec: RoundSpec, checkpoint: Path | None = None, stop_after: int | None = None,
        lines: list[str] | None = None) -> RoundResult:
    """One round with a fresh model; with `stop_after`, the log callback raises once that epoch is logged."""
    def log(line: str) -> None:
        if lines is not None:
            lines.append(line)
        if stop_after is not None and line.startswith(f"epoch {stop_after}/"):
            raise Interrupted(line)

    model = ctx.new_model()
    mask = full_mask(model)
    return train_round(model, mask, ctx.data, ctx.config.train, spec, log, checkpoint_path=checkpoint)


def interrupted_then_resumed(ctx, spec: RoundSpec, checkpoint: Path, interruptions: list[int]) -> RoundResult:
    for k in interruptions:
        with pytest.raises(Interrupted):
            run(ctx, spec, checkpoint, stop_after=k)
        assert load_torch(checkpoint)["progress"]["epochs_done"] == k
    return run(ctx, spec, checkpoint)


def states_equal(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def nan_free(curves: list[dict[str, float]]) -> list[dict]:
    return [{k: (None if v != v else v) for k, v in c.items()} for c in curves]


def assert_snapshots_identical(a: Snapshot | None, b: Snapshot | None) -> None:
    assert (a is None) == (b is None)
    if a is None:
        return
    assert (a.epochs_run, a.iterations, a.best_epoch, a.eval_samples) == (b.epochs_run, b.iterations, b.best_epoch,
                                                                           b.eval_samples)
    assert a.best_val_acc == b.best_val_acc
    assert a.test_acc == b.test_acc or (a.test_acc != a.test_acc and b.test_acc != b.test_acc)
    assert states_equal(a.last_state, b.last_state)
    assert states_equal(a.best_state, b.best_state)
    assert a.forget_events.dtype == b.forget_events.dtype
    np.testing.assert_array_equal(a.forget_events, b.forget_events)


def assert_rounds_identical(a: RoundResult, b: RoundResult) -> None:
    assert_snapshots_identical(a.final, b.final)
    assert_snapshots_identical(a.early, b.early)
    assert (a.early is a.final) == (b.early is b.final)
    assert states_equal(a.rewind_state, b.rewind_state)
    assert nan_free(a.curves) == nan_free(b.curves)


@pytest.mark.parametrize("rewind_epoch, interruptions", [
    (2, [1]),  # before the rewind point is taken
    (2, [3]),  # after it
    (2, [1, 3]),  # interrupted twice
    (0, [2]),  # rewind to the start weights
])
def test_an_interrupted_round_resumes_bit_identical(ctx, subset, tmp_path, steps, rewind_epoch, interruptions):
    spec = RoundSpec(schedule(4, (3,)), seed=7, subset=subset, rewind_epoch=rewind_epoch)
    reference = run(ctx, spec)  # no checkpoint at all
    checkpoint = tmp_path / "round.pt"
    steps[0] = 0
    resumed = interrupted_then_resumed(ctx, spec, checkpoint, interruptions)
    assert_rounds_identical(resumed, reference)
    per_epoch = math.ceil(len(subset) / 64)
    assert resumed.final.iterations == 4 * per_epoch
    assert steps[0] == 4 * per_epoch  # each epoch trained exactly once over all the attempts
    # The resumed attempt logs where it picked up and then only the remaining epochs.
    lines: list[str] = []
    checkpoint.unlink()
    with pytest.raises(Interrupted):
        run(ctx, spec, checkpoint, stop_after=2)
    run(ctx, spec, checkpoint, lines=lines)
    assert lines[0] == f"resumed from {checkpoint} after epoch 2/4"
    assert [line.split()[1] for line in lines[1:]] == ["3/4", "4/4"]


def test_full_data_round_resumes_bit_identical(ctx, tmp_path):
    spec = RoundSpec(schedule(2), seed=1, rewind_epoch=1)
    reference = run(ctx, spec)
    assert_rounds_identical(interrupted_then_resumed(ctx, spec, tmp_path / "round.pt", [1]), reference)


@pytest.fixture(scope="module")
def firing_eps(ctx, subset) -> tuple[float, int]:
    """An eps at which early stop fires before the end of a 7-epoch round, and the epoch it fires at
    (chosen from the distances of an observing run, as in test_train_round)."""
    observe = run(ctx, RoundSpec(schedule(7, (4,)), seed=5, subset=subset,
                                 early_stop=EarlyStopSpec(0.5, WINDOW, 0.2, stop=False)))
    distances = [c["mask_distance"] for c in observe.curves][1:]  # epoch 1 has no previous mask

    def fires_at(eps: float) -> int | None:
        rule = MaskDistanceEarlyStop(eps, WINDOW)
        return next((epoch for epoch, d in enumerate(distances, start=2) if rule.update(d)), None)

    candidates = sorted({(a + b) / 2 for a in distances for b in distances if a != b})
    stops = [(fires_at(eps), eps) for eps in candidates]
    stops = [(epoch, eps) for epoch, eps in stops if epoch is not None and epoch < 6]
    assert stops, f"no eps fires early enough with these distances: {distances}"
    epoch, eps = min(stops)
    return eps, epoch


@pytest.mark.parametrize("stop, where", [
    (True, "before"), (True, "at"),  # a round that stops has no epoch after the stop point
    (False, "before"), (False, "at"), (False, "after"),  # round 0: early stop only noted
])
def test_early_stop_round_resumes_bit_identical(ctx, subset, tmp_path, steps, firing_eps, stop, where):
    eps, stop_epoch = firing_eps
    k = {"before": stop_epoch - 1, "at": stop_epoch, "after": stop_epoch + 1}[where]
    spec = RoundSpec(schedule(7, (4,)), seed=5, subset=subset, rewind_epoch=1,
                     early_stop=EarlyStopSpec(eps, WINDOW, 0.2, stop=stop))
    reference = run(ctx, spec)
    assert reference.early is not None and reference.early.epochs_run == stop_epoch
    assert reference.final.epochs_run == (stop_epoch if stop else 7)
    checkpoint = tmp_path / "round.pt"
    with pytest.raises(Interrupted):
        run(ctx, spec, checkpoint, stop_after=k)
    steps[0] = 0
    resumed = run(ctx, spec, checkpoint)
    assert_rounds_identical(resumed, reference)
    per_epoch = math.ceil(len(subset) / 64)
    assert steps[0] == (reference.final.epochs_run - k) * per_epoch  # 0 when it had stopped at k


def test_a_finished_checkpoint_trains_nothing(ctx, subset, tmp_path, steps):
    spec = RoundSpec(schedule(2), seed=3, subset=subset, rewind_epoch=1)
    checkpoint = tmp_path / "round.pt"
    first = run(ctx, spec, checkpoint)
    steps[0] = 0
    forwards = [0]
    model = ctx.new_model()
    model.register_forward_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
    again = train_round(model, full_mask(model), ctx.data, ctx.config.train, spec,
                        checkpoint_path=checkpoint)
    assert steps[0] == 0 and forwards[0] == 0  # neither trained nor evaluated
    assert_rounds_identical(again, first)
    assert states_equal(model.state_dict(), first.final.last_state)  # the model holds the round's last weights


@pytest.mark.parametrize("change", ["seed", "epochs", "milestones", "subset", "batch_size", "rewind_epoch", "early_stop"])
def test_a_checkpoint_of_another_round_is_refused(ctx, subset, tmp_path, change):
    spec = RoundSpec(schedule(2), seed=3, subset=subset)
    checkpoint = tmp_path / "round.pt"
    run(ctx, spec, checkpoint)
    train = ctx.config.train
    other_subset = np.sort(np.setdiff1d(np.arange(len(ctx.data.train)), subset)[:len(subset)])
    other = {
        "seed": RoundSpec(schedule(2), seed=4, subset=subset),
        "epochs": RoundSpec(schedule(3), seed=3, subset=subset),
        "milestones": RoundSpec(schedule(2, (1,)), seed=3, subset=subset),
        "subset": RoundSpec(schedule(2), seed=3, subset=other_subset),  # same size, other samples
        "batch_size": spec,
        "rewind_epoch": RoundSpec(schedule(2), seed=3, subset=subset, rewind_epoch=1),
        "early_stop": RoundSpec(schedule(2), seed=3, subset=subset, early_stop=EarlyStopSpec(0.1, 2, 0.2, True)),
    }[change]
    if change == "batch_size":
        train = train.model_copy(update={"batch_size": 32})
    model = ctx.new_model()
    with pytest.raises(ArtifactError) as error:
        train_round(model, full_mask(model), ctx.data, train, other,
                    checkpoint_path=checkpoint)
    message = str(error.value)
    assert str(checkpoint) in message and "another round" in message and "\n" not in message
    assert change in message  # names what differs


def test_a_damaged_checkpoint_is_an_error_naming_the_file(ctx, subset, tmp_path):
    spec = RoundSpec(schedule(1), seed=3, subset=subset)
    checkpoint = tmp_path / "round.pt"
    run(ctx, spec, checkpoint)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ArtifactError, match="cannot be read") as error:
        run(ctx, spec, checkpoint)
    assert str(checkpoint) in str(error.value) and "\n" not in str(error.value)
    save_torch(checkpoint, {"weights": torch.zeros(3)})  # readable, but not a round checkpoint
    with pytest.raises(ArtifactError, match="not a training-round checkpoint") as error:
        run(ctx, spec, checkpoint)
    assert str(checkpoint) in str(error.value)
    checkpoint.write_bytes(data)
    stored = load_torch(checkpoint)
    del stored["optimizer"]  # this round's identity, but incomplete
    save_torch(checkpoint, stored)
    with pytest.raises(ArtifactError, match="cannot be resumed") as error:
        run(ctx, spec, checkpoint)
    assert str(checkpoint) in str(error.value) and "\n" not in str(error.value)


def test_a_checkpoint_of_other_code_is_set_aside_and_the_round_starts_afresh(ctx, subset, tmp_path, steps):
    spec = RoundSpec(schedule(2), seed=3, subset=subset)
    checkpoint = tmp_path / "round.pt"
    through = run(ctx, spec, checkpoint)
    per_round = steps[0]
    stored = load_torch(checkpoint)
    assert run(ctx, spec, checkpoint) is not None and steps[0] == per_round  # this code's: nothing trained
    stored["identity"]["code"] = "0123456789abcdef"  # written by other code (prac.code_version)
    save_torch(checkpoint, stored)
    lines: list[str] = []
    again = run(ctx, spec, checkpoint, lines=lines)
    assert steps[0] == 2 * per_round, "the round was not trained again"
    assert any("written by other code" in line for line in lines) and not any("resumed" in line for line in lines)
    assert all(torch.equal(again.final.last_state[k], v) for k, v in through.final.last_state.items())
