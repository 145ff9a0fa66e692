"""The training step (prac.training.train_step) on the CPU: its SGD update is torch.optim.SGD's, in both of its forms
(the per-tensor loop of the CPU and the multi-tensor kernels of a GPU), and it keeps what a CUDA graph
replays at fixed addresses, reading nothing from the host between the steps of an epoch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from prac.training.forgetting import CorrectnessRecord
from prac.training.masks import MaskEnforcer, full_mask
from prac.training.pruning import magnitude_prune
from prac.training.train import prunable_weights
from prac.training.train_step import TrainStep, sgd_update

pytestmark = pytest.mark.usefixtures("one_thread")


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


@pytest.mark.parametrize("foreach", [False, True])
def test_the_sgd_update_is_torch_sgd_and_keeps_pruned_weights_at_zero(foreach):
    ours, reference = small_model(), small_model()
    mask = magnitude_prune(prunable_weights(ours, full_mask(ours)), full_mask(ours), 0.5)
    for model in (ours, reference):
        MaskEnforcer(model, mask).apply_to_weights()
    sgd = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)
    optimizer, torch_sgd = torch.optim.SGD(ours.parameters(), **sgd), torch.optim.SGD(reference.parameters(), **sgd)
    params = list(ours.parameters())
    buffers = [optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p)) for p in params]
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for i, lr in enumerate((0.1, 0.1, 0.05, 0.01)):  # the schedule changes the LR between steps
        for model in (ours, reference):
            model.zero_grad(set_to_none=False)
            nn.functional.cross_entropy(model(x * (i + 1)), y).backward()
            MaskEnforcer(model, mask).zero_pruned_gradients()
        sgd_update(params, buffers, torch.tensor(lr), sgd["momentum"], sgd["weight_decay"], foreach)
        torch_sgd.param_groups[0]["lr"] = lr
        torch_sgd.step()
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
        torch.testing.assert_close(optimizer.state[p]["momentum_buffer"], torch_sgd.state[q]["momentum_buffer"],
                                   rtol=1e-5, atol=1e-6)
    assert all((p.detach()[~mask[n]] == 0).all() for n, p in ours.named_parameters() if n in mask)
    assert not all((p.detach() == q.detach()).all() for p, q in zip(ours.parameters(), small_model().parameters()))


def test_epochs_reuse_the_same_buffers_and_the_last_partial_batch_is_exact(ctx, subset):
    """What a captured step replays must stay at the addresses it was captured with, epoch after epoch;
    a 201-sample subset in batches of 64 is 3 full steps and one of 9 samples, every visit recorded once."""
    model = ctx.new_model()
    mask = full_mask(model)
    enforcer = MaskEnforcer(model, mask)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    positions = torch.as_tensor(subset, dtype=torch.int64)
    record = CorrectnessRecord(2, len(subset), "cpu")
    step = TrainStep(model, enforcer, optimizer, ctx.data, positions, 64, False, record)

    def addresses() -> list[int]:
        fixed = [step.order, step.lrs, step.cursor, step.step_index, step.loss_sum, *step.buffers]
        fixed += [t for t in (step.draws.top, step.draws.left, step.draws.mirrored) if t is not None]
        return [t.data_ptr() for t in fixed] + [p.grad.data_ptr() for p in step.params] + \
               [p.data_ptr() for p in step.params]

    seen = []
    for epoch in range(2):
        generator = torch.Generator().manual_seed(epoch)
        order = torch.randperm(len(subset), generator=generator)
        record._predicted.fill_(-1)
        assert step.run_epoch(order, generator, [0.05] * 4) == 4
        assert int(step.cursor) == len(subset) and int(step.step_index) == 4
        assert (record._predicted >= 0).all()  # every visit's prediction kept, the partial batch's included
        record.end_epoch(epoch, order, ctx.data.train.labels[positions[order]])
        seen.append(addresses())
    assert seen[0] == seen[1]
    assert step.eager_steps == 8 and step.replays == 0 and step.graph is None  # the CPU never captures


def test_the_step_takes_the_learning_rate_of_each_step_from_the_device(ctx):
    """A warm-up schedule changes the LR every step; the step reads step i's rate from its table."""
    model = ctx.new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.0)
    positions = torch.arange(128)
    step = TrainStep(model, MaskEnforcer(model, {}), optimizer, ctx.data, positions, 64, False,
                     CorrectnessRecord(1, 128, "cpu"))
    used = []
    step._sgd = lambda lr: used.append(float(lr))  # type: ignore[method-assign]
    generator = torch.Generator().manual_seed(0)
    step.run_epoch(torch.randperm(128, generator=generator), generator, [0.01, 0.02])
    assert used == pytest.approx([0.01, 0.02])
    assert np.isfinite(float(step.loss_sum))
