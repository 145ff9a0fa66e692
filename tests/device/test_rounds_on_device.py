"""One training round on the device: the step captured as a CUDA graph on a GPU, early stop firing, a round interrupted and resumed from its
checkpoint, bfloat16 autocast, and the files a round writes from device tensors read back equal on the CPU."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from device_runs import BATCH, short_config
from prac.artifacts import load_torch, read_mask, write_mask
from prac.imp.context import build_context
from prac.training.masks import full_mask
from prac.hardware.placement import map_tensors, to_cpu
from prac.hardware.precision import autocast_dtype
from prac.training.pruning import PruneRule, magnitude_prune, random_prune
from prac.training.round_file import load_round, save_round
from prac.training.round_types import EarlyStopSpec, RoundSpec
from prac.training.schedule import RoundSchedule, full_schedule
from prac.training.train import prunable_weights, train_round
from prac.training.train_step import WARMUP_STEPS, TrainStep


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def ctx(device, cifar_dir, tmp_path_factory):
    return build_context(short_config(device, cifar_dir, tmp_path_factory.mktemp("out")))


def pruned_start(ctx, rate: float = 0.2):
    """A fresh model on the device and a mask pruning `rate` of its prunable weights (on the device too)."""
    model = ctx.new_model()
    mask = full_mask(model)
    return model, magnitude_prune(prunable_weights(model, mask), mask, rate)


def test_a_mask_on_the_cpu_is_refused_with_a_clear_error(ctx):
    if ctx.device.type == "cpu":
        pytest.skip("on the CPU every tensor is on the training device")
    model, mask = pruned_start(ctx)
    with pytest.raises(ValueError, match="is on cpu, but the round runs on cuda"):
        train_round(model, {k: v.cpu() for k, v in mask.items()}, ctx.data, ctx.config.train,
                    RoundSpec(full_schedule(ctx.config.train), seed=0))


def test_early_stop_fires_on_a_subset_and_ends_the_round(ctx):
    subset = np.arange(0, len(ctx.data.train), 2)  # an index set: every other sample of D0
    spec = RoundSpec(full_schedule(ctx.config.train), seed=0, subset=subset)
    # An observing run (ε 1: never armed, never fires) gives the candidate masks' distances: large while
    # the LR is 0.1 (epochs 1-3), small once it is cut 100-fold. An ε between the two must fire by epoch 6.
    model, mask = pruned_start(ctx)
    observed = train_round(model, mask, ctx.data, ctx.config.train,
                           replace(spec, early_stop=EarlyStopSpec(1.0, 3, 0.2, stop=False)))
    distance = {c["epoch"]: c["mask_distance"] for c in observed.curves}
    settled = max(distance[4], distance[5], distance[6])
    assert distance[2] > settled, f"the candidate masks did not settle after the LR cut: {distance}"
    eps = math.sqrt(distance[2] * settled) if settled > 0 else distance[2] / 2  # far from both sides

    model, mask = pruned_start(ctx)
    result = train_round(model, mask, ctx.data, ctx.config.train,
                         replace(spec, early_stop=EarlyStopSpec(eps, 3, 0.2, stop=True)))
    assert result.early is not None and result.final is result.early
    stopped = result.final.epochs_run
    assert 5 <= stopped <= 6  # window 3 needs 5 epochs at least; by epoch 6 the last three were below ε
    assert result.final.iterations == stopped * math.ceil(len(subset) / BATCH)
    assert all(c["mask_distance"] < eps for c in result.curves[stopped - 3:stopped])
    assert len(result.final.forget_events) == len(subset)


def test_an_interrupted_round_resumes_from_its_checkpoint(ctx, tmp_path):
    spec = RoundSpec(full_schedule(ctx.config.train), seed=3, rewind_epoch=1,
                     early_stop=EarlyStopSpec(0.02, 3, 0.2, stop=False))  # the stopper's state is saved too
    checkpoint = tmp_path / "train.ckpt"

    def stop_after_epoch_2(line: str) -> None:
        if line.startswith("epoch 2/"):
            raise Interrupted(line)

    model, mask = pruned_start(ctx)
    with pytest.raises(Interrupted):
        train_round(model, mask, ctx.data, ctx.config.train, spec, stop_after_epoch_2, checkpoint_path=checkpoint)
    stored = load_torch(checkpoint)  # written from device tensors, read on the CPU
    assert stored["progress"]["epochs_done"] == 2
    devices: set[str] = set()
    map_tensors(stored, lambda t: devices.add(t.device.type) or t)
    assert devices == {"cpu"}
    lines: list[str] = []
    model, mask = pruned_start(ctx)
    resumed = train_round(model, mask, ctx.data, ctx.config.train, spec, lines.append, checkpoint_path=checkpoint)
    assert lines[0] == f"resumed from {checkpoint} after epoch 2/{spec.schedule.epochs}"
    per_epoch = math.ceil(len(ctx.data.train) / BATCH)
    assert resumed.final.epochs_run == spec.schedule.epochs
    assert resumed.final.iterations == spec.schedule.epochs * per_epoch
    assert resumed.rewind_state is not None  # taken after epoch 1, before the interruption
    assert all((resumed.final.last_state[n][~mask[n]] == 0).all() for n in mask)
    if ctx.device.type == "cpu":  # bit-identical to a round that ran through (GPU kernels are not deterministic)
        model, mask = pruned_start(ctx)
        reference = train_round(model, mask, ctx.data, ctx.config.train, spec)
        assert all(torch.equal(resumed.final.last_state[k], v) for k, v in reference.final.last_state.items())
        np.testing.assert_array_equal(resumed.final.forget_events, reference.final.forget_events)


def test_a_round_autocasts_to_bfloat16_with_float32_weights(ctx, device):
    if device == "cuda" and torch.cuda.is_bf16_supported():
        assert autocast_dtype("auto", ctx.device) is torch.bfloat16  # the GPU default
    config = ctx.config.model_copy(update={"runtime": ctx.config.runtime.model_copy(update={"precision": "bfloat16"})})
    bf16 = build_context(config)
    assert bf16.data.autocast is torch.bfloat16
    model, mask = pruned_start(bf16, rate=0.5)
    with bf16.data.forward_context():
        assert model(bf16.data.prepare(bf16.data.train.images[:4], None, True)).dtype == torch.bfloat16
    result = train_round(model, mask, bf16.data, config.train, RoundSpec(full_schedule(config.train), seed=0))
    state = result.final.last_state
    assert all(state[n].dtype == torch.float32 for n in mask)
    assert all((state[n][~mask[n]] == 0).all() for n in mask)
    assert result.curves[-1]["train_loss"] < result.curves[0]["train_loss"]


def test_files_written_from_device_tensors_read_back_equal_on_the_cpu(ctx, tmp_path):
    model, mask = pruned_start(ctx)
    assert all(m.device == ctx.data.train.images.device for m in mask.values())
    write_mask(tmp_path / "mask.parquet", mask, fingerprint="f", round=0)
    read = read_mask(tmp_path / "mask.parquet").mask
    assert read.keys() == mask.keys()
    assert all(read[n].device.type == "cpu" and torch.equal(read[n], mask[n].cpu()) for n in mask)

    schedule = RoundSchedule(epochs=1, milestones=(), warmup_epochs=0, lr=0.1, gamma=0.1)
    result = train_round(model, mask, ctx.data, ctx.config.train, RoundSpec(schedule, seed=0, rewind_epoch=0))
    save_round(tmp_path / "train.pt", result)
    back = load_round(tmp_path / "train.pt")
    for original, loaded in ((result.final.last_state, back.final.last_state),
                             (result.final.best_state, back.final.best_state),
                             (result.rewind_state, back.rewind_state)):
        assert original.keys() == loaded.keys()
        assert all(loaded[k].device.type == "cpu" and torch.equal(loaded[k], v.cpu()) for k, v in original.items())
    np.testing.assert_array_equal(back.final.forget_events, result.final.forget_events)


def test_layerwise_pruning_on_the_device_keeps_the_mask_there_and_equals_the_cpu(ctx):
    model, mask = pruned_start(ctx)
    weights = prunable_weights(model, mask)
    rule = PruneRule.uniform(mask, 0.3, "layerwise")
    layerwise = magnitude_prune(weights, mask, rule)
    assert all(m.device.type == ctx.device.type for m in layerwise.values())
    for name, kept in mask.items():  # each tensor loses round(0.3 × its kept weights)
        before = int(kept.sum())
        assert int(layerwise[name].sum()) == before - round(0.3 * before), name
    on_cpu = magnitude_prune(to_cpu(weights), to_cpu(mask), rule)
    assert all(torch.equal(layerwise[n].cpu(), on_cpu[n]) for n in mask)
    randomly = random_prune(mask, rule, torch.Generator().manual_seed(1))
    assert all(m.device.type == ctx.device.type for m in randomly.values())
    same_on_cpu = random_prune(to_cpu(mask), rule, torch.Generator().manual_seed(1))
    assert all(torch.equal(randomly[n].cpu(), same_on_cpu[n]) for n in mask)


def test_on_a_gpu_the_step_is_a_cuda_graph_replayed_and_trains_as_the_eager_step(ctx, device, monkeypatch):
    """prac.training.train_step: on CUDA the full-batch step is captured after WARMUP_STEPS eager steps and replayed for
    the rest; the last partial batch of each epoch runs eagerly. On the CPU nothing is captured."""
    made: list[TrainStep] = []
    init = TrainStep.__init__

    def recorded(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)
    monkeypatch.setattr(TrainStep, "__init__", recorded)
    spec = RoundSpec(full_schedule(ctx.config.train), seed=0)
    model, mask = pruned_start(ctx)
    graphed = train_round(model, mask, ctx.data, ctx.config.train, spec)
    model, mask = pruned_start(ctx)
    eager = train_round(model, mask, replace(ctx.data, graphs=False), ctx.config.train, spec)
    epochs, (full, tail) = spec.schedule.epochs, divmod(len(ctx.data.train), BATCH)
    assert graphed.final.iterations == eager.final.iterations == epochs * (full + (tail > 0))
    if device == "cuda":
        assert made[0].graph is not None and made[0].replays == epochs * full - WARMUP_STEPS
    else:
        assert made[0].graph is None and made[0].replays == 0
    assert made[1].graph is None and made[1].replays == 0
    assert all((graphed.final.last_state[n][~mask[n]] == 0).all() for n in mask)
    difference = max(float((graphed.final.last_state[k].float() - v.float()).abs().max())
                     for k, v in eager.final.last_state.items())
    print(f"largest weight difference, graph against eager: {difference:g}")
    assert abs(graphed.final.best_val_acc - eager.final.best_val_acc) <= 0.05
    assert graphed.curves[-1]["train_loss"] == pytest.approx(eager.curves[-1]["train_loss"], rel=0.1)
