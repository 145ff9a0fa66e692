"""Early stop by mask distance (DESIGN §1): FIFO of `window` values starting full of ones, records
only once a distance above eps was seen, stops when all values are below eps."""
from __future__ import annotations

import pytest
import torch

from prac.training.early_stop import MaskDistanceEarlyStop

EPS = 0.08
BIG, SMALL = 0.3, 0.01


def first_stop(distances, eps=EPS, window=5):
    """1-based index of the update at which the rule first fires, None if never."""
    stopper = MaskDistanceEarlyStop(eps, window)
    for i, d in enumerate(distances, start=1):
        if stopper.update(d):
            return i
    return None


def first_stop_epoch(distances, eps=EPS, window=5):
    """The training loop gets its first distance after epoch 2 (epoch 1 has no previous mask)."""
    update = first_stop(distances, eps, window)
    return None if update is None else update + 1


def test_never_stops_when_distances_stay_below_eps_from_the_start():
    assert first_stop([SMALL] * 50) is None
    assert first_stop([0.0] * 50) is None
    assert first_stop([EPS] * 50) is None  # equal to eps is not above it


@pytest.mark.parametrize("window", [1, 3, 5])
def test_fastest_stop_is_at_epoch_window_plus_two(window):
    distances = [BIG] + [SMALL] * 20
    assert first_stop_epoch(distances, window=window) == window + 2
    assert MaskDistanceEarlyStop.minimum_epochs(window) == window + 2


def test_returns_false_until_it_fires_and_true_from_then_on():
    stopper = MaskDistanceEarlyStop(EPS, 5)
    results = [stopper.update(d) for d in [BIG] + [SMALL] * 7]
    assert results == [False] * 5 + [True] * 3
    assert stopper.should_stop


def test_small_values_before_the_first_big_one_are_not_recorded():
    # The mask must first move: the leading small values do not count towards the window.
    distances = [SMALL] * 10 + [BIG] + [SMALL] * 10
    assert first_stop(distances) == 10 + 1 + 5
    stopper = MaskDistanceEarlyStop(EPS, 5)
    for d in [SMALL] * 3:
        assert not stopper.update(d)
    assert list(stopper.history) == [1.0] * 5 and not stopper.armed
    stopper.update(BIG)
    assert list(stopper.history) == [1.0] * 4 + [BIG] and stopper.armed


def test_a_late_spike_above_eps_delays_the_stop():
    base = [BIG] + [SMALL] * 3
    assert first_stop(base + [SMALL] * 10) == 6
    # A spike one update before the stop would fire: needs 5 fresh values below eps after it.
    spiked = base + [BIG] + [SMALL] * 10
    assert first_stop(spiked) == len(base) + 1 + 5
    # A value equal to eps is not "below eps": it also delays the stop.
    at_eps = base + [EPS] + [SMALL] * 10
    assert first_stop(at_eps) == len(base) + 1 + 5


def test_distances_just_below_eps_count():
    assert first_stop([BIG] + [EPS * 0.999] * 5) == 6


def test_initial_history_is_window_ones():
    stopper = MaskDistanceEarlyStop(0.07, 4)
    assert list(stopper.history) == [1.0] * 4
    assert not stopper.armed and not stopper.should_stop
    assert stopper.eps == 0.07 and stopper.window == 4


def test_state_dict_round_trip_continues_identically():
    sequence = [SMALL, BIG, SMALL, 0.2, SMALL, SMALL, SMALL, SMALL, SMALL, SMALL]
    for cut in range(len(sequence) + 1):
        reference = MaskDistanceEarlyStop(EPS, 5)
        expected = [reference.update(d) for d in sequence]
        first = MaskDistanceEarlyStop(EPS, 5)
        got = [first.update(d) for d in sequence[:cut]]
        restored = MaskDistanceEarlyStop.from_state_dict(first.state_dict())
        got += [restored.update(d) for d in sequence[cut:]]
        assert got == expected, cut
        assert list(restored.history) == list(reference.history)
        assert restored.armed == reference.armed
    assert any(expected) and not all(expected)


def test_state_dict_is_plain_data_and_keeps_the_window():
    stopper = MaskDistanceEarlyStop(EPS, 3)
    for d in [BIG, SMALL]:
        stopper.update(d)
    state = stopper.state_dict()
    assert state == {"eps": EPS, "window": 3, "armed": True, "history": [1.0, BIG, SMALL], "warmup": 0}
    restored = MaskDistanceEarlyStop.from_state_dict(state)
    restored.update(SMALL)
    restored.update(SMALL)
    assert len(restored.history) == 3  # still a FIFO of the window's length
    assert restored.should_stop


# ---------------------------------------------------------------- after the LR warm-up, as the reference code

def first_stop_epoch_with_warmup(distances, warmup, eps=EPS, window=5):
    """The epoch the rule fires at, the distances being those of epochs 2, 3, … (epoch 1 has no previous mask)."""
    stopper = MaskDistanceEarlyStop(eps, window, warmup=warmup)
    for epoch, d in enumerate(distances, start=2):
        if stopper.update(d, epoch):
            return epoch
    return None


def reference_stop_epoch(distances, warmup, eps=EPS, window=5):
    """VITA-Group/PrAC-LTH main_PrAC_imp.py, epochs counted from 0: `start_record = start_record or d > eps`;
    `if epoch > args.warmup and start_record: FIFO(queue, d)`; stop when `queue.max() < eps`. 1-based result."""
    queue, start_record = [1.0] * window, False
    for epoch0, d in enumerate(distances, start=1):
        start_record = start_record or d > eps
        if epoch0 > warmup and start_record:
            queue = queue[1:] + [d]
        if max(queue) < eps:
            return epoch0 + 1
    return None


@pytest.mark.parametrize("warmup", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("distances", [
    [BIG] + [SMALL] * 30,
    [SMALL, BIG] + [SMALL] * 30,
    [SMALL] * 4 + [BIG] + [SMALL] * 30,
    [BIG, SMALL, SMALL, 0.2, SMALL, SMALL, BIG, BIG] + [SMALL] * 30,
    [0.5, 0.3, 0.1] + [SMALL, EPS] * 6 + [SMALL] * 30,
])
def test_the_window_records_from_epoch_warmup_plus_two_as_the_reference(warmup, distances):
    assert first_stop_epoch_with_warmup(distances, warmup) == reference_stop_epoch(distances, warmup)


@pytest.mark.parametrize("window", [1, 3, 5])
@pytest.mark.parametrize("warmup, fastest", [(0, 2), (1, 2), (2, 3), (4, 5)])
def test_fastest_stop_after_a_warmup(window, warmup, fastest):
    # a big distance at epoch 2 arms the rule, warm-up or not; `window` small ones recorded from epoch warmup + 2
    assert first_stop_epoch_with_warmup([BIG] + [SMALL] * 30, warmup, window=window) == window + fastest
    assert MaskDistanceEarlyStop.minimum_epochs(window, warmup) == window + fastest
    assert MaskDistanceEarlyStop.minimum_epochs(window, warmup) == window + 1 + max(1, warmup)
    assert MaskDistanceEarlyStop.minimum_epochs(window) == window + 2


def test_warmup_distances_arm_but_are_not_recorded():
    stopper = MaskDistanceEarlyStop(EPS, 3, warmup=3)
    for epoch, d in ((2, SMALL), (3, BIG), (4, SMALL)):  # epochs 1-3 warm up; epoch 4's mask follows epoch 3's
        assert not stopper.update(d, epoch)
        assert list(stopper.history) == [1.0] * 3
    assert stopper.armed  # by the big distance of epoch 3
    results = [stopper.update(SMALL, epoch) for epoch in (5, 6, 7)]
    assert list(stopper.history) == [SMALL] * 3 and results == [False, False, True]


def test_with_a_warmup_the_epoch_is_needed():
    with pytest.raises(ValueError, match="needs the epoch"):
        MaskDistanceEarlyStop(EPS, 3, warmup=2).update(SMALL)
    MaskDistanceEarlyStop(EPS, 3).update(SMALL)  # without warm-up every distance counts, as before


def test_state_dict_round_trip_mid_warmup_continues_identically():
    sequence = [SMALL, BIG, SMALL, SMALL, 0.2, SMALL, SMALL, SMALL, SMALL, SMALL, SMALL]
    for cut in range(len(sequence) + 1):
        reference = MaskDistanceEarlyStop(EPS, 3, warmup=4)
        expected = [reference.update(d, epoch) for epoch, d in enumerate(sequence, start=2)]
        first = MaskDistanceEarlyStop(EPS, 3, warmup=4)
        got = [first.update(d, epoch) for epoch, d in enumerate(sequence[:cut], start=2)]
        state = first.state_dict()
        assert state["warmup"] == 4
        restored = MaskDistanceEarlyStop.from_state_dict(state)
        got += [restored.update(d, epoch) for epoch, d in enumerate(sequence[cut:], start=2 + cut)]
        assert got == expected, cut
        assert (list(restored.history), restored.armed, restored.warmup) == \
            (list(reference.history), reference.armed, reference.warmup)
    assert any(expected) and not all(expected)


def test_a_state_without_warmup_resumes_as_none():  # a checkpoint written before warm-up was kept
    restored = MaskDistanceEarlyStop.from_state_dict({"eps": EPS, "window": 2, "armed": True, "history": [BIG, SMALL]})
    assert restored.warmup == 0 and restored.update(SMALL)


WARMUP, WINDOW, EPOCHS = 3, 2, 9


class Killed(Exception):
    pass


def _warmup_round(ctx, subset, eps, stop=False, checkpoint=None, stop_after=None):
    """A round of digits-smoke's model with WARMUP warm-up epochs and early stop at `eps`; with `stop_after`, its
    log raises once that epoch is logged (killed there, its checkpoint written)."""
    from prac.training.masks import prunable_parameters
    from prac.training.round_types import EarlyStopSpec, RoundSpec
    from prac.training.schedule import RoundSchedule
    from prac.training.train import train_round

    def log(line):
        if stop_after is not None and line.startswith(f"epoch {stop_after}/"):
            raise Killed(line)

    schedule = RoundSchedule(epochs=EPOCHS, milestones=(), warmup_epochs=WARMUP, lr=0.05, gamma=0.1)
    model = ctx.new_model()
    mask = {name: torch.ones_like(p, dtype=torch.bool) for name, p in prunable_parameters(model).items()}
    spec = RoundSpec(schedule, seed=3, subset=subset, early_stop=EarlyStopSpec(eps, WINDOW, 0.2, stop=stop))
    return train_round(model, mask, ctx.data, ctx.config.train, spec, log, checkpoint_path=checkpoint)


@pytest.fixture(scope="module")
def warmup_firing(ctx, subset):
    """An eps at which the rule with the warm-up fires before the end, elsewhere than it would without, and where."""
    observed = _warmup_round(ctx, subset, eps=0.999)  # above every distance: never armed
    distances = [c["mask_distance"] for c in observed.curves][1:]
    assert len(distances) == EPOCHS - 1 and all(d == d for d in distances)
    for eps in sorted({(a + b) / 2 for a in distances for b in distances if a != b}):
        with_warmup = reference_stop_epoch(distances, WARMUP, eps, WINDOW)
        if with_warmup is not None and with_warmup != reference_stop_epoch(distances, 0, eps, WINDOW):
            return eps, with_warmup
    pytest.fail(f"no eps tells warm-up apart with these distances: {distances}")


def test_the_round_loop_gives_the_rule_its_warmup(ctx, subset, warmup_firing):
    """Through a round's own loop (prac.training.round_run): early stop fires where the reference's rule with the
    round's warm-up says, from the round's own distances."""
    eps, epoch = warmup_firing
    noted = _warmup_round(ctx, subset, eps)
    assert noted.early is not None and noted.early.epochs_run == epoch >= WARMUP + WINDOW + 1
    stopped = _warmup_round(ctx, subset, eps, stop=True)
    assert stopped.final.epochs_run == epoch and len(stopped.curves) == epoch


@pytest.mark.parametrize("killed_after", [2, 3, 4, 5])  # in the warm-up, at its end, just after, while recording
def test_a_round_killed_around_the_warmup_resumes_identically(ctx, subset, tmp_path, warmup_firing, killed_after):
    eps, epoch = warmup_firing
    reference = _warmup_round(ctx, subset, eps, stop=True)
    checkpoint = tmp_path / "round.pt"
    with pytest.raises(Killed):
        _warmup_round(ctx, subset, eps, stop=True, checkpoint=checkpoint, stop_after=killed_after)
    resumed = _warmup_round(ctx, subset, eps, stop=True, checkpoint=checkpoint)
    assert resumed.final.epochs_run == reference.final.epochs_run == epoch
    assert [c["mask_distance"] for c in resumed.curves][1:] == [c["mask_distance"] for c in reference.curves][1:]
    for name, value in reference.final.last_state.items():
        assert torch.equal(resumed.final.last_state[name], value), name


def test_the_run_says_when_warmup_leaves_early_stop_no_chance():
    from prac.experiment import short_schedule_note
    from prac.settings.overrides import apply_overrides
    from prac.settings.presets import preset_config

    def note(*items):  # digits-smoke: 8 epochs, a window of 3
        return short_schedule_note(apply_overrides(preset_config("digits-smoke"), list(items)))

    assert note() is None and note("train.warmup_epochs=4") is None  # 3 + 1 + 4 = 8 epochs: it can fire
    assert note("train.warmup_epochs=5") == ("note: early stop needs at least 9 epochs to fire; with 8 epochs it "
                                             "never will")
    assert note("train.warmup_epochs=5", "method=lt") is None  # no early stop to speak of
