"""Learning-rate schedules and the dynamic scaling of a round's schedule (DESIGN §1)."""
from __future__ import annotations

import pytest

from prac.settings.config import TrainConfig
from prac.training.schedule import RoundSchedule, full_schedule, scaled_schedule, steps_per_epoch

PAPER = TrainConfig(epochs=182, batch_size=128, lr=0.1, milestones=[91, 136])
D0 = 45_000  # CIFAR-10's 50k train images minus the 10% validation split


def total_steps(schedule: RoundSchedule, samples: int, batch_size: int) -> int:
    return schedule.epochs * steps_per_epoch(samples, batch_size)


# --- learning rate -----------------------------------------------------------------------------

def test_learning_rate_drops_by_gamma_at_each_milestone():
    schedule = RoundSchedule(epochs=8, milestones=(3, 5), warmup_epochs=0, lr=0.1, gamma=0.1)
    per_epoch = 4
    lrs = [schedule.learning_rate(step, per_epoch) for step in range(8 * per_epoch)]
    expected = [0.1] * 12 + [0.01] * 8 + [0.001] * 12  # epochs 0-2, 3-4, 5-7
    assert lrs == pytest.approx(expected)
    # The drop happens exactly at the first step of the milestone epoch.
    assert schedule.learning_rate(3 * per_epoch - 1, per_epoch) == pytest.approx(0.1)
    assert schedule.learning_rate(3 * per_epoch, per_epoch) == pytest.approx(0.01)


def test_learning_rate_gamma_other_than_a_tenth():
    schedule = RoundSchedule(epochs=4, milestones=(1, 2, 3), warmup_epochs=0, lr=0.8, gamma=0.5)
    assert [schedule.learning_rate(e, 1) for e in range(4)] == pytest.approx([0.8, 0.4, 0.2, 0.1])


def test_warmup_is_linear_per_step_then_constant():
    schedule = RoundSchedule(epochs=6, milestones=(), warmup_epochs=2, lr=0.03, gamma=0.1)
    per_epoch = 5
    warm = [schedule.learning_rate(step, per_epoch) for step in range(10)]
    assert warm == pytest.approx([0.03 * (s + 1) / 10 for s in range(10)])
    # Strictly increasing within and across the warm-up epochs (per step, not per epoch).
    assert all(b > a for a, b in zip(warm, warm[1:]))
    assert warm[-1] == pytest.approx(0.03)
    assert [schedule.learning_rate(s, per_epoch) for s in range(10, 30)] == pytest.approx([0.03] * 20)


def test_warmup_and_milestones_combine():
    schedule = RoundSchedule(epochs=6, milestones=(4,), warmup_epochs=2, lr=0.1, gamma=0.1)
    assert schedule.learning_rate(0, 10) == pytest.approx(0.1 / 20)
    assert schedule.learning_rate(39, 10) == pytest.approx(0.1)
    assert schedule.learning_rate(40, 10) == pytest.approx(0.01)


def test_steps_per_epoch_counts_the_last_partial_batch():
    assert steps_per_epoch(1000, 128) == 8
    assert steps_per_epoch(1024, 128) == 8
    assert steps_per_epoch(1025, 128) == 9
    assert steps_per_epoch(5, 128) == 1


# --- scaled schedules --------------------------------------------------------------------------

@pytest.mark.parametrize("scaling", ["epochs", "iterations"])
def test_ratio_one_is_the_full_schedule(scaling):
    train = TrainConfig(epochs=30, batch_size=64, lr=0.03, milestones=[15, 23], warmup_epochs=5)
    assert scaled_schedule(train, 1000, 1000, scaling) == full_schedule(train)
    full = full_schedule(train)
    assert (full.epochs, full.milestones, full.warmup_epochs, full.lr, full.gamma) == (30, (15, 23), 5, 0.03, 0.1)


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.8])
def test_epochs_mode_scales_epochs_and_milestones(ratio):
    subset = round(ratio * D0)
    schedule = scaled_schedule(PAPER, subset, D0, "epochs")
    assert abs(schedule.epochs - 182 * ratio) <= 0.5
    assert len(schedule.milestones) == 2
    for got, full in zip(schedule.milestones, (91, 136)):
        assert abs(got - full * ratio) <= 1.0
    assert list(schedule.milestones) == sorted(schedule.milestones)
    assert all(1 <= m <= schedule.epochs for m in schedule.milestones)
    assert schedule.lr == PAPER.lr and schedule.gamma == PAPER.gamma


def test_epochs_mode_scales_warmup():
    train = TrainConfig(epochs=182, lr=0.03, milestones=[91, 136], warmup_epochs=15)
    half = scaled_schedule(train, D0 // 2, D0, "epochs")
    assert half.epochs == 91
    assert abs(half.warmup_epochs - 7.5) <= 0.5
    tiny = scaled_schedule(train, 10, D0, "epochs")
    assert tiny.warmup_epochs < tiny.epochs  # warm-up never takes the whole round


@pytest.mark.parametrize("scaling", ["epochs", "iterations"])
def test_never_fewer_than_one_epoch(scaling):
    schedule = scaled_schedule(PAPER, 1, D0, scaling)
    assert schedule.epochs == 1
    assert all(m >= 1 for m in schedule.milestones)
    assert schedule.warmup_epochs == 0


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.8])
def test_iterations_mode_spends_ratio_times_the_full_steps(ratio):
    subset = round(ratio * D0)
    full_steps = total_steps(full_schedule(PAPER), D0, PAPER.batch_size)
    schedule = scaled_schedule(PAPER, subset, D0, "iterations")
    steps = total_steps(schedule, subset, PAPER.batch_size)
    assert steps / full_steps == pytest.approx(ratio, rel=0.03)
    # Whole epochs of the subset: the count is the nearest whole number of epochs to the target.
    per_epoch = steps_per_epoch(subset, PAPER.batch_size)
    assert abs(steps - ratio * full_steps) <= per_epoch / 2 + 1e-9
    assert all(1 <= m <= schedule.epochs for m in schedule.milestones)


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.8])
def test_iterations_scale_linearly_in_one_mode_and_quadratically_in_the_other(ratio):
    subset = round(ratio * D0)
    full_steps = total_steps(full_schedule(PAPER), D0, PAPER.batch_size)
    epochs_mode = total_steps(scaled_schedule(PAPER, subset, D0, "epochs"), subset, PAPER.batch_size)
    iterations_mode = total_steps(scaled_schedule(PAPER, subset, D0, "iterations"), subset, PAPER.batch_size)
    assert epochs_mode / full_steps == pytest.approx(ratio**2, rel=0.05)
    assert iterations_mode / full_steps == pytest.approx(ratio, rel=0.05)
    assert epochs_mode / iterations_mode == pytest.approx(ratio, rel=0.06)


def test_iterations_mode_keeps_about_the_full_epoch_count():
    # |P|/|D0| × N0 steps of a |P|-sample set is ~E0 epochs of it.
    schedule = scaled_schedule(PAPER, D0 // 4, D0, "iterations")
    assert abs(schedule.epochs - 182) <= 2
    assert all(abs(a - b) <= 2 for a, b in zip(schedule.milestones, (91, 136)))


@pytest.mark.parametrize("scaling", ["epochs", "iterations"])
def test_epoch_floor_lifts_short_rounds_and_scales_their_milestones(scaling):
    train = TrainConfig(epochs=12, batch_size=128, lr=0.1, milestones=[6, 9])
    starved = scaled_schedule(train, 5400, 54000, "epochs")
    assert starved.epochs == 1  # 12 x 10 %: what the floor is for
    floored = scaled_schedule(train, 5400, 54000, scaling, min_epochs=7)
    assert floored.epochs == max(7, scaled_schedule(train, 5400, 54000, scaling).epochs)
    assert floored.milestones == tuple(round(m * floored.epochs / 12) for m in (6, 9))
    # A floor above what scaling gives changes nothing else; one above the full schedule is capped.
    assert scaled_schedule(train, 40000, 54000, "epochs", min_epochs=3) == scaled_schedule(train, 40000, 54000, "epochs")
    assert scaled_schedule(train, 5400, 54000, "epochs", min_epochs=50).epochs == 12


@pytest.mark.parametrize("subset", [0, -1, D0 + 1])
def test_subset_size_out_of_range_is_an_error(subset):
    with pytest.raises(ValueError):
        scaled_schedule(PAPER, subset, D0, "epochs")
