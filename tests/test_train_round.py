"""One training round on the real digits data (preset digits-smoke, CPU): iteration counts, subsets,
determinism, the rewind point, the best checkpoint, early stop, and the mask during training."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from prac.data.device_data import DeviceSplit
from prac.training.evaluate import accuracy
from prac.training.masks import full_mask, kept_count
from prac.training.pruning import magnitude_prune, random_prune
from prac.training.round_types import EarlyStopSpec, RoundSpec
from prac.training.schedule import RoundSchedule
from prac.training.train import train_round


pytestmark = pytest.mark.usefixtures("one_thread")




def schedule(epochs: int, milestones: tuple[int, ...] = ()) -> RoundSchedule:
    return RoundSchedule(epochs=epochs, milestones=milestones, warmup_epochs=0, lr=0.05, gamma=0.1)


def run(ctx, spec: RoundSpec, mask=None):
    model = ctx.new_model()
    if mask is None:
        mask = full_mask(model)
    return train_round(model, mask, ctx.data, ctx.config.train, spec)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def weights_of(state: dict, mask: dict) -> dict:
    return {n: state[n] for n in mask}


def test_the_context_is_the_digits_smoke_preset(ctx):
    assert ctx.config.train.batch_size == 64
    assert len(ctx.data.train) + len(ctx.data.val) == 1437  # sklearn digits' 1797 minus 360 test
    assert len(ctx.data.test) == 360


def test_full_data_round_iterations_and_forgetting_length(ctx):
    result = run(ctx, RoundSpec(schedule(1), seed=0))
    size = len(ctx.data.train)
    assert result.final.iterations == 1 * math.ceil(size / 64) == 21
    assert result.final.epochs_run == 1 and len(result.curves) == 1
    assert result.final.forget_events.shape == (size,)
    assert result.early is None and result.rewind_state is None


def test_subset_round_counts_iterations_and_is_deterministic(ctx, subset):
    spec = RoundSpec(schedule(2), seed=3, subset=subset)
    first, second = run(ctx, spec), run(ctx, spec)
    assert first.final.iterations == 2 * math.ceil(len(subset) / 64) == 8
    assert first.final.forget_events.shape == (len(subset),)
    assert states_equal(first.final.last_state, second.final.last_state)
    assert states_equal(first.final.best_state, second.final.best_state)
    np.testing.assert_array_equal(first.final.forget_events, second.final.forget_events)
    assert [{k: v for k, v in c.items() if v == v} for c in first.curves] == \
        [{k: v for k, v in c.items() if v == v} for c in second.curves]  # all but the nan distances
    # ...and the weights did move, and another seed (data order, augmentation) gives others.
    start = ctx.new_model().state_dict()
    assert not states_equal(first.final.last_state, start)
    other = run(ctx, RoundSpec(schedule(2), seed=4, subset=subset))
    assert not states_equal(first.final.last_state, other.final.last_state)


def test_training_on_a_subset_only_touches_the_subset(ctx, subset):
    # Scramble every D0 sample outside the subset: the round must not notice.
    outside = np.setdiff1d(np.arange(len(ctx.data.train)), subset)
    images, labels = ctx.data.train.images.clone(), ctx.data.train.labels.clone()
    g = torch.Generator().manual_seed(0)
    images[outside] = torch.randint(0, 256, images[outside].shape, generator=g, dtype=torch.uint8)
    labels[outside] = (labels[outside] + 1) % ctx.data.num_classes
    scrambled = dataclasses.replace(ctx.data, train=DeviceSplit(images, labels))
    spec = RoundSpec(schedule(1), seed=0, subset=subset)
    model_a, model_b = ctx.new_model(), ctx.new_model()
    mask = full_mask(model_a)
    clean = train_round(model_a, mask, ctx.data, ctx.config.train, spec)
    dirty = train_round(model_b, mask, scrambled, ctx.config.train, spec)
    assert states_equal(clean.final.last_state, dirty.final.last_state)
    np.testing.assert_array_equal(clean.final.forget_events, dirty.final.forget_events)
    # The check can fail: scrambling a sample *inside* the subset changes the result.
    images[subset[:32]] = torch.randint(0, 256, images[subset[:32]].shape, generator=g, dtype=torch.uint8)
    inside = dataclasses.replace(ctx.data, train=DeviceSplit(images, labels))
    changed = train_round(ctx.new_model(), mask, inside, ctx.config.train, spec)
    assert not states_equal(clean.final.last_state, changed.final.last_state)


def test_rewind_state_is_the_weights_after_epoch_k(ctx, subset):
    # Milestone 2: the LR of the first two epochs is the same in the 3- and the 2-epoch schedule.
    long = run(ctx, RoundSpec(schedule(3, (2,)), seed=1, subset=subset, rewind_epoch=2))
    short = run(ctx, RoundSpec(schedule(2, (2,)), seed=1, subset=subset))
    assert states_equal(long.rewind_state, short.final.last_state)
    assert not states_equal(long.rewind_state, long.final.last_state)  # a copy, not the live weights
    assert any(k.endswith("running_mean") for k in long.rewind_state)  # BN buffers included


def test_rewind_epoch_zero_is_the_start(ctx, subset):
    model = ctx.new_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    mask = full_mask(model)
    result = train_round(model, mask, ctx.data, ctx.config.train,
                         RoundSpec(schedule(1), seed=0, subset=subset, rewind_epoch=0))
    assert states_equal(result.rewind_state, start)


def test_best_checkpoint_is_the_best_validation_epoch(ctx, subset):
    result = run(ctx, RoundSpec(schedule(4, (3,)), seed=2, subset=subset))
    val = [c["val_acc"] for c in result.curves]
    assert len(val) == 4
    assert result.final.best_val_acc == max(val)
    assert result.final.best_epoch == val.index(max(val)) + 1
    # Independent check: evaluate the saved best weights on validation and test.
    model = ctx.new_model()
    model.load_state_dict(result.final.best_state)
    channels_last = ctx.config.train.channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
    assert accuracy(model, ctx.data.val, ctx.data, channels_last) == pytest.approx(result.final.best_val_acc)
    assert accuracy(model, ctx.data.test, ctx.data, channels_last) == pytest.approx(result.final.test_acc)
    if result.final.best_epoch == 4:
        assert states_equal(result.final.best_state, result.final.last_state)
    else:
        assert not states_equal(result.final.best_state, result.final.last_state)


def reference_stop_epoch(distances: list[float], eps: float, window: int) -> int | None:
    """DESIGN §1 written out: distances[i] is the one computed after epoch i + 1 (nan for epoch 1)."""
    fifo, armed = [1.0] * window, False
    for epoch, d in enumerate(distances, start=1):
        if d != d:  # no previous candidate mask yet
            continue
        armed = armed or d > eps
        if armed:
            fifo = fifo[1:] + [d]
            if all(x < eps for x in fifo):
                return epoch
    return None


def test_early_stop_ends_the_round_where_the_rule_fires(ctx, subset):
    window, epochs = 2, 7
    sched = schedule(epochs, (4,))
    # 1. The distances of this round (the rule only observes; training is unaffected).
    observe = run(ctx, RoundSpec(sched, seed=5, subset=subset, rewind_epoch=1,
                                 early_stop=EarlyStopSpec(0.5, window, 0.2, stop=False)))
    distances = [c["mask_distance"] for c in observe.curves]
    assert len(distances) == epochs and distances[0] != distances[0]
    assert all(0.0 <= d <= 0.4 + 1e-9 for d in distances[1:])  # two 20% prunings differ in ≤ 40%
    assert observe.early is None  # eps 0.5 is above every distance: never armed, never stops
    # 2. An eps that the rule says fires before the schedule's end (the earliest such).
    candidates = sorted({(a + b) / 2 for a in distances[1:] for b in distances[1:] if a != b})
    stops = [(reference_stop_epoch(distances, eps, window), eps) for eps in candidates]
    stops = [(e, eps) for e, eps in stops if e is not None and e < epochs]
    assert stops, f"no eps fires early with these distances: {distances}"
    stop_epoch, eps = min(stops)
    assert stop_epoch >= window + 2
    # 3. With stop=True the round ends exactly there.
    stopped = run(ctx, RoundSpec(sched, seed=5, subset=subset, early_stop=EarlyStopSpec(eps, window, 0.2, stop=True)))
    per_epoch = math.ceil(len(subset) / 64)
    assert stopped.final.epochs_run == stop_epoch < sched.epochs
    assert len(stopped.curves) == stop_epoch
    assert stopped.final.iterations == stop_epoch * per_epoch
    assert stopped.early is stopped.final
    assert [c["mask_distance"] for c in stopped.curves][1:] == distances[1:stop_epoch]
    # The same weights as the observing run had after that epoch, which it reports as `early`.
    noted = run(ctx, RoundSpec(sched, seed=5, subset=subset, rewind_epoch=2,
                               early_stop=EarlyStopSpec(eps, window, 0.2, stop=False)))
    assert noted.early is not None and noted.early.epochs_run == stop_epoch
    assert noted.final.epochs_run == epochs
    assert states_equal(noted.early.last_state, stopped.final.last_state)
    np.testing.assert_array_equal(noted.early.forget_events, stopped.final.forget_events)
    # The distance of epoch 2, recomputed from the weights after epochs 1 and 2 (the rewind points).
    dense = full_mask(ctx.new_model())
    candidate_1 = magnitude_prune(observe.rewind_state, dense, 0.2)
    candidate_2 = magnitude_prune(noted.rewind_state, dense, 0.2)
    changed = sum(int((candidate_1[n] != candidate_2[n]).sum()) for n in dense)
    assert distances[1] == pytest.approx(changed / kept_count(dense))


def test_pruned_weights_are_exactly_zero_in_last_and_best_state(ctx, subset):
    model = ctx.new_model()
    dense = full_mask(model)
    mask = magnitude_prune(dict(model.named_parameters()), dense, 0.5)
    mask = random_prune(mask, 0.3, torch.Generator().manual_seed(0))  # not only the small ones
    assert kept_count(mask) < kept_count(dense)
    start = {n: p.detach().clone() for n, p in model.named_parameters() if n in mask}
    result = train_round(model, mask, ctx.data, ctx.config.train, RoundSpec(schedule(2), seed=0, subset=subset))
    for state in (result.final.last_state, result.final.best_state):
        for n, m in mask.items():
            assert (state[n][~m] == 0.0).all(), n
            assert (state[n][m] != start[n][m]).float().mean() > 0.5, n  # the kept weights trained
