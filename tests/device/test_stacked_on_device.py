"""Tickets trained as a stack on the device (prac.training.stacked): on a GPU the stacked step captured as a CUDA
graph, each ticket's step as the ticket's own step alone (to rounding: batched kernels add in another order; see
tests/test_stacked.py), a whole stacked epoch ending with every ticket's record and checkpoint-ready state, and K
chosen from the free device memory."""
from __future__ import annotations

import pytest
import torch

from device_runs import BATCH, short_config
from prac.imp.context import build_context
from prac.training.masks import full_mask
from prac.training.pruning import magnitude_prune
from prac.training.round_run import RoundRun, prunable_weights
from prac.training.round_types import RoundSpec
from prac.training.schedule import full_schedule
from prac.training.stacked import measured_ticket_bytes, run_epoch, stack_size
from prac.training.stacked_step import StackedTrainStep
from prac.training.train_step import TrainStep


@pytest.fixture(scope="module")
def ctx(device, cifar_dir, tmp_path_factory):
    # float32: the comparison with the ticket alone is of the stacking, not of bfloat16's rounding
    return build_context(short_config(device, cifar_dir, tmp_path_factory.mktemp("out"), "runtime.precision=float32"))


def ticket(ctx, i: int) -> RoundRun:
    model = ctx.new_model()
    mask = full_mask(model)
    mask = magnitude_prune(prunable_weights(model, mask), mask, 0.2 * (i + 1))
    return RoundRun(model, mask, ctx.data, ctx.config.train, RoundSpec(full_schedule(ctx.config.train), seed=i))


def test_each_ticket_of_a_stack_steps_as_alone_on_the_device(ctx):
    alone, stacked = [ticket(ctx, i) for i in range(3)], [ticket(ctx, i) for i in range(3)]
    for run in alone:
        TrainStep(run.model, run.enforcer, run.optimizer, ctx.data, run.positions, BATCH, False,
                  run.record).first_step(*run.epoch_inputs())
    steps = StackedTrainStep(stacked, ctx.data, BATCH)
    steps.load()
    steps.first_step([run.epoch_inputs() for run in stacked])
    steps.store()
    for a, s in zip(alone, stacked):
        for (name, p), q in zip(a.model.named_parameters(), s.model.parameters()):
            scale = p.detach().abs().max().clamp_min(1e-12)
            assert float((p - q).abs().max() / scale) < 1e-3, name  # TF32 is off: float32 kernels
        assert all((dict(s.model.named_parameters())[n][~keep] == 0).all() for n, keep in s.mask.items())


def test_a_stacked_epoch_is_captured_and_trains_every_ticket(ctx):
    runs = [ticket(ctx, i) for i in range(4)]
    steps = StackedTrainStep(runs, ctx.data, BATCH)
    run_epoch(steps, runs)
    run_epoch(steps, runs)
    if ctx.device.type == "cuda":
        assert steps.graph is not None and steps.replays > 0  # the stacked step replayed as one CUDA graph
    for run in runs:
        assert run.progress.epochs_done == 2 and len(run.progress.curves) == 2
        assert all(0 < curve["train_loss"] < 10 for curve in run.progress.curves)  # finite: trained, not diverged
        assert run.record.correct[:2].any(dim=1).all()  # both epochs' predictions recorded


def test_the_stack_size_comes_from_the_free_memory(ctx):
    runs = [ticket(ctx, i % 4) for i in range(20)]
    if ctx.device.type != "cuda":
        assert stack_size(None, runs, ctx.data) == 1
        return
    per_ticket = measured_ticket_bytes(runs[0], ctx.data)
    free, _ = torch.cuda.mem_get_info(ctx.device)
    assert 0 < per_ticket < free
    assert stack_size(None, runs, ctx.data) == min(16, int(free * 0.8) // per_ticket, 20)
    assert runs[0].progress.epochs_done == 0  # the probe trained a copy
