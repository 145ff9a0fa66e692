"""The training step: one SGD step on the next batch of an epoch's visits, with static shapes.

Everything a step reads lives in buffers with fixed addresses, filled once per epoch (`run_epoch`): the
visiting order, the augmentation draws and the learning rate of every step; a cursor on the device says
which visits come next and the step advances it itself. A step therefore needs nothing from the host. On a
CUDA device the full-batch step is captured once per round as a CUDA graph and replayed: one launch per
step instead of a few hundred kernels launched from Python, and no host synchronisation inside an epoch.
An epoch's last partial batch runs the same code eagerly, so the forgetting record and the iteration count
stay exact. On the CPU every step runs eagerly, the same code.

The SGD update (momentum, weight decay, no dampening, as torch.optim.SGD computes it) is written here with
the learning rate as a device tensor, so that a captured step follows the schedule; the momentum buffers
are the optimizer's own state (`optimizer.state[p]["momentum_buffer"]`), so its state_dict checkpoints
them as before.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from prac.data.device_data import DeviceData
from prac.errors import one_line
from prac.training.forgetting import CorrectnessRecord
from prac.training.masks import MaskEnforcer

WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuDNN's choices, lazily made buffers)


class CapturedSteps:
    """The steps of an epoch, the full-batch step captured as a CUDA graph after a few warm-up steps where the
    device and the data allow (one launch a step); an epoch's partial last batch, and every step on the CPU, run
    eagerly, the same code. A subclass writes `_step(batch)`, reading everything from buffers at fixed addresses
    that advance themselves (`cursor`, `step_index`)."""

    def __init__(self, device: torch.device, size: int, batch: int, data: DeviceData,
                 log: Callable[[str], None] | None):
        self.size, self.batch, self.data, self.log = size, batch, data, log
        self.cursor = torch.zeros(1, dtype=torch.int64, device=device)  # the next batch's first visit
        self.step_index = torch.zeros(1, dtype=torch.int64, device=device)  # the step within the epoch
        self.offsets = torch.arange(batch, device=device)
        self.foreach = device.type != "cpu"  # fused multi-tensor kernels; the CPU falls back to a slower loop
        self.capture = device.type == "cuda" and data.graphs
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self.replays = 0

    def _run_steps(self) -> int:
        """The epoch's steps, from a cursor at 0; the number of steps (the last batch may be partial)."""
        self.cursor.zero_()
        self.step_index.zero_()
        full, tail = divmod(self.size, self.batch)
        for _ in range(full):
            self._full_batch()
        if tail:
            self._step(tail)
            self.eager_steps += 1
        return full + (tail > 0)

    def _first_step(self) -> None:
        self.cursor.zero_()
        self.step_index.zero_()
        self._step(min(self.batch, self.size))

    def _step(self, batch: int) -> None:
        raise NotImplementedError

    def _full_batch(self) -> None:
        if self.graph is not None:
            self.graph.replay()
            self.replays += 1
        elif self.capture and self.eager_steps >= WARMUP_STEPS:
            self._capture()
            self._full_batch()
        elif self.capture:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._step(self.batch)
            torch.cuda.current_stream().wait_stream(side)
            self.eager_steps += 1
        else:
            self._step(self.batch)
            self.eager_steps += 1

    def _capture(self) -> None:
        """Record the full-batch step as a CUDA graph (recording runs nothing). Should capture fail (an
        operation a future model adds that cannot be captured), the round goes on eagerly, saying why."""
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._step(self.batch)
        except Exception as exc:  # noqa: BLE001 - any capture failure falls back to the same eager step
            self.capture = False
            if self.log is not None:
                self.log(f"warning: training step not captured as a CUDA graph, running eagerly ({one_line(exc)})")
            return
        self.graph = graph


class TrainStep(CapturedSteps):
    """The steps of one round over `positions` (D0 positions of the round's training set)."""

    def __init__(self, model: nn.Module, enforcer: MaskEnforcer, optimizer: torch.optim.SGD, data: DeviceData,
                 positions: torch.Tensor, batch: int, channels_last: bool, record: CorrectnessRecord,
                 log: Callable[[str], None] | None = None):
        group = single_sgd_group(optimizer)
        device = positions.device
        super().__init__(device, positions.numel(), batch, data, log)
        self.model, self.enforcer, self.record = model, enforcer, record
        self.positions, self.channels_last = positions, channels_last
        self.momentum, self.weight_decay = group["momentum"], group["weight_decay"]
        self.params: list[torch.Tensor] = [p for p in group["params"] if p.requires_grad]
        self.buffers = momentum_buffers(optimizer, self.params)
        self.order = torch.zeros(self.size, dtype=torch.int64, device=device)
        self.draws = data.draw_augmentation(self.size, torch.Generator(device=device))  # refilled per epoch
        self.lrs = torch.zeros(-(-self.size // batch), dtype=torch.float32, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)

    # --- one epoch ---------------------------------------------------------------------------------

    def run_epoch(self, order: torch.Tensor, generator: torch.Generator, learning_rates: Sequence[float]) -> int:
        """Train one epoch visiting D's positions in `order`, augmentation drawn from `generator`, step i at
        `learning_rates[i]`; return the number of steps (the last batch may be partial). The epoch's mean
        loss is in `loss_sum` / size afterwards, its predicted classes in the record."""
        self._fill(order, generator, learning_rates)
        return self._run_steps()

    def first_step(self, order: torch.Tensor, generator: torch.Generator, learning_rates: Sequence[float]) -> None:
        """Only that epoch's first step, eagerly (tests/test_stacked.py compares one step)."""
        self._fill(order, generator, learning_rates)
        self._first_step()

    def _fill(self, order: torch.Tensor, generator: torch.Generator, learning_rates: Sequence[float]) -> None:
        self.order.copy_(order)
        for buffer, drawn in zip(self.draws.tensors(), self.data.draw_augmentation(self.size, generator).tensors()):
            buffer.copy_(drawn)
        self.lrs.copy_(torch.tensor(learning_rates, dtype=torch.float32))
        self.loss_sum.zero_()

    # --- the step itself ------------------------------------------------------------------------------

    def _step(self, batch: int) -> None:
        visits = self.cursor + self.offsets[:batch]  # positions in the epoch's visiting order
        index = self.positions.index_select(0, self.order.index_select(0, visits))
        train = self.data.train
        images = self.data.prepare(train.images.index_select(0, index), self.draws.rows(visits), self.channels_last)
        labels = train.labels.index_select(0, index)
        with self.data.forward_context(graph_safe=self.capture):
            logits = self.model(images)
            loss = F.cross_entropy(logits, labels)
        self._zero_gradients()
        loss.backward()
        self.enforcer.zero_pruned_gradients()
        self._sgd(self.lrs.index_select(0, self.step_index).view(()))
        self.record.record_batch(visits, logits)
        self.loss_sum.add_(loss.detach().float() * batch)
        self.cursor.add_(batch)
        self.step_index.add_(1)

    def _zero_gradients(self) -> None:
        zero_gradients(self.params, self.foreach)

    def _sgd(self, lr: torch.Tensor) -> None:
        sgd_update(self.params, self.buffers, lr, self.momentum, self.weight_decay, self.foreach)


def single_sgd_group(optimizer: torch.optim.SGD) -> dict:
    """The optimizer's one parameter group; ValueError unless it is plain SGD (momentum, weight decay)."""
    if len(optimizer.param_groups) != 1 or optimizer.param_groups[0]["nesterov"] or \
            optimizer.param_groups[0]["dampening"]:
        raise ValueError("TrainStep updates with plain SGD of one parameter group (momentum, weight decay)")
    return optimizer.param_groups[0]


def momentum_buffers(optimizer: torch.optim.SGD, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The optimizer's momentum buffers of `params` (a zero buffer where it has none yet: what torch's first step
    makes of it, 0 * momentum + grad)."""
    return [optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p)) for p in params]


def zero_gradients(params: list[torch.Tensor], foreach: bool) -> None:
    # In place, not set to None: a captured step's gradients must stay at the addresses it recorded.
    grads = [p.grad for p in params if p.grad is not None]
    if foreach and grads:
        torch._foreach_zero_(grads)
    else:
        for g in grads:
            g.zero_()


@torch.no_grad()
def sgd_update(params: list[torch.Tensor], buffers: list[torch.Tensor], lr: torch.Tensor | list[torch.Tensor],
               momentum: float, weight_decay: float, foreach: bool) -> None:
    """torch.optim.SGD's update (dampening 0, not Nesterov) with the learning rate `lr` a 0-dim device tensor (or
    one tensor per parameter that broadcasts to it: a stack's per-ticket rates): d = g + wd * p;
    buf = momentum * buf + d; p -= lr * buf. `foreach`: multi-tensor kernels (accelerators)."""
    grads = [p.grad for p in params]
    if foreach:
        steps = torch._foreach_add(grads, params, alpha=weight_decay) if weight_decay else grads
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, steps)
        torch._foreach_sub_(params, torch._foreach_mul(buffers, lr))
        return
    rates = lr if isinstance(lr, list) else [lr] * len(params)
    for p, g, buf, rate in zip(params, grads, buffers, rates):
        step = g.add(p, alpha=weight_decay) if weight_decay else g
        buf.mul_(momentum).add_(step)
        p.sub_(buf * rate)
