"""Early stop by mask distance (DESIGN §1): FIFO of `window` values starting full of ones, records
only once a distance above eps was seen, stops when all values are below eps."""
from __future__ import annotations

import pytest

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
    assert state == {"eps": EPS, "window": 3, "armed": True, "history": [1.0, BIG, SMALL]}
    restored = MaskDistanceEarlyStop.from_state_dict(state)
    restored.update(SMALL)
    restored.update(SMALL)
    assert len(restored.history) == 3  # still a FIFO of the window's length
    assert restored.should_stop
