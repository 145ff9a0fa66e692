"""The training step of K rounds at once (a stack): each parameter, buffer and momentum buffer of the K models
held as one tensor with a leading dimension K, and the models' forward pass one `torch.func.vmap` of the
architecture over it: one computation (a convolution becomes a grouped convolution over the K tickets) where
K separate steps would leave a GPU mostly idle (BENCHMARKS.md "stacked").

Per ticket, as when trained alone: its mask, weights, BatchNorm statistics, momentum, visiting order,
augmentation draws and learning rate. The loss is the sum of the tickets' mean losses, so each ticket's gradient
is its own loss's. Elementwise work (the SGD update, the mask on the gradients) is the same arithmetic on the
same numbers; the forward and backward passes are batched kernels that add in another order, so a stacked
ticket agrees with the ticket trained alone to rounding, not bit for bit (tests/test_stacked.py states how close).

The stacked tensors are filled from the K rounds' models and optimizers before an epoch (`load`) and written
back after it (`store`): between epochs each round is a plain model again, validated, checkpointed and resumed
as when it trains alone (prac.training.round_run).
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from prac.data.augment import CropFlip
from prac.data.device_data import DeviceData
from prac.training.round_run import RoundRun
from prac.training.train_step import CapturedSteps, momentum_buffers, sgd_update, single_sgd_group, zero_gradients


def plain_module(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "_orig_mod", model)  # a torch.compile'd model: its module (parameter names unprefixed)


STACKED_CHANNELS_LAST = True  # where the ticket alone trains channels_last; bench/stacked.py --layout measures both


class FloatInputBatchNorm(nn.BatchNorm2d):
    """BatchNorm in a stack under autocast: the input taken to float32, the output back to the input's dtype.
    vmap's batching rule normalises with a stand-in weight of the input's dtype, which CUDA's kernels refuse beside
    float32 running statistics ("Expected running_mean to have type BFloat16": Conv-4 on an H200); a ticket alone
    also normalises in float32 and rounds the output to the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # contiguous on CUDA: under vmap, torch.batch_norm there asks whether a channels_last input is contiguous,
        # which vmap refuses ("NYI: querying is_contiguous inside of vmap"; an H200, torch 2.11). Not on a CPU: the
        # copy changes the order of BatchNorm's sums, and a ticket's first step then agrees with the ticket alone
        # less closely (float32 rounding flips ReLUs; float64 agrees to 1e-13 either way)
        x32 = x.float()
        return super().forward(x32.contiguous() if x32.is_cuda else x32).to(x.dtype)


class AutocastConv2d(nn.Conv2d):
    """A convolution in a stack, cast to autocast's dtype by hand as autocast casts a ticket's alone: under vmap,
    autocast leaves convolutions in float32 (seen with torch 2.11 and 2.14), while matrix products are cast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return super().forward(x)
        dtype = torch.get_autocast_dtype(device)
        bias = None if self.bias is None else self.bias.to(dtype)
        return self._conv_forward(x.to(dtype), self.weight.to(dtype), bias)


STACKED_MODULES = {nn.BatchNorm2d: FloatInputBatchNorm, nn.Conv2d: AutocastConv2d}  # same state, their forward


def base_module(model: torch.nn.Module) -> torch.nn.Module:
    """The architecture without weights (on the meta device): what the vmapped forward calls with a ticket's."""
    base = copy.deepcopy(plain_module(model)).to("meta")
    for module in base.modules():
        module.__class__ = STACKED_MODULES.get(type(module), type(module))
    return base


def stacked_channels_last(images: torch.Tensor) -> torch.Tensor:
    """(K, batch, C, H, W) images laid out in memory as (batch, H, W, K, C): vmap's convolution folds the K tickets
    into the channels (a grouped convolution of K groups) and then sees a channels_last batch, as a ticket alone."""
    return images.permute(1, 3, 4, 0, 2).contiguous().permute(3, 0, 4, 1, 2)


class StackedTrainStep(CapturedSteps):
    """The steps of the rounds `runs` (the same training-set size and batch size) trained as one stack."""

    def __init__(self, runs: Sequence[RoundRun], data: DeviceData, batch: int,
                 log: Callable[[str], None] | None = None):
        first = runs[0]
        if any(run.size != first.size for run in runs):
            raise ValueError("a stack trains rounds of one training-set size")
        device = first.device
        super().__init__(device, first.size, batch, data, log)
        self.runs, self.k = list(runs), len(runs)
        # a CPU's channels_last grouped convolutions add in an order that depends on K: a ticket would not train
        # bit for bit alike in stacks of 3 and 2 (tests/test_stacked.py, a killed stack resumed)
        self.channels_last = first.train.channels_last and device.type == "cuda" and STACKED_CHANNELS_LAST
        group = single_sgd_group(first.optimizer)
        self.momentum, self.weight_decay = group["momentum"], group["weight_decay"]
        self.base = base_module(first.model)
        self.param_names = [name for name, _ in self.base.named_parameters()]
        self.buffer_names = [name for name, _ in self.base.named_buffers()]
        models = [dict(plain_module(run.model).named_parameters()) for run in runs]
        self.params = {n: torch.stack([m[n].detach() for m in models]).requires_grad_() for n in self.param_names}
        model_buffers = [dict(plain_module(run.model).named_buffers()) for run in runs]
        self.buffers = {n: torch.stack([b[n] for b in model_buffers]) for n in self.buffer_names}
        self.momentum_buffers = [torch.zeros_like(p) for p in self.params.values()]
        self.masked = [self.params[name] for name in first.mask]
        self.mask_factors = [torch.stack([run.mask[name] for run in runs]).to(self.params[name].dtype)
                             for name in first.mask]
        self.positions = torch.stack([run.positions for run in runs])  # (K, size)
        self.order = torch.zeros(self.k, self.size, dtype=torch.int64, device=device)
        self.draws = data.draw_augmentation(self.k * self.size, torch.Generator(device=device))  # ticket-major rows
        self.row_start = (torch.arange(self.k, device=device) * self.size)[:, None]  # ticket k's first draw
        self.lrs = torch.zeros(self.k, first.per_epoch, dtype=torch.float32, device=device)
        self.lr_now = torch.zeros(self.k, dtype=torch.float32, device=device)
        self.lr_views = [self.lr_now.view(self.k, *[1] * (p.dim() - 1)) for p in self.params.values()]
        self.loss_sum = torch.zeros(self.k, dtype=torch.float32, device=device)
        self.forward = vmap(lambda params, buffers, images: functional_call(self.base, (params, buffers), (images,)))

    # --- the rounds' state in and out -----------------------------------------------------------------

    def slots(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(slot k of a stacked tensor, round k's own tensor) for every weight, buffer and momentum buffer."""
        pairs = []
        for k, run in enumerate(self.runs):
            model = plain_module(run.model)
            params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
            pairs += [(stacked[k], params[name]) for name, stacked in self.params.items()]
            pairs += [(stacked[k], buffers[name]) for name, stacked in self.buffers.items()]
            own_momentum = momentum_buffers(run.optimizer, list(params.values()))
            pairs += [(stacked[k], own) for stacked, own in zip(self.momentum_buffers, own_momentum)]
        return pairs

    @torch.no_grad()
    def load(self) -> None:
        """Each round's weights, BatchNorm statistics and momentum into its slot of the stack."""
        for slot, own in self.slots():
            slot.copy_(own)

    @torch.no_grad()
    def store(self) -> None:
        """The stack's slots back into each round's model and optimizer."""
        for slot, own in self.slots():
            own.copy_(slot)

    # --- one epoch ------------------------------------------------------------------------------------

    def run_epoch(self, inputs: Sequence[tuple[torch.Tensor, torch.Generator, Sequence[float]]]) -> int:
        """One epoch of every round, round k visiting in inputs[k]'s order with its generator's augmentation draws
        and learning rates (RoundRun.epoch_inputs); the number of steps. Each round's loss sum is in
        `loss_sum[k]` afterwards, its predicted classes in its record."""
        self._fill(inputs)
        return self._run_steps()

    def first_step(self, inputs: Sequence[tuple[torch.Tensor, torch.Generator, Sequence[float]]]) -> None:
        """Only the epoch's first step, eagerly (a memory probe: prac.training.stacked.measured_ticket_bytes)."""
        self._fill(inputs)
        self._first_step()

    def _fill(self, inputs: Sequence[tuple[torch.Tensor, torch.Generator, Sequence[float]]]) -> None:
        for k, (order, generator, rates) in enumerate(inputs):
            self.order[k].copy_(order)
            drawn = self.data.draw_augmentation(self.size, generator).tensors()
            for buffer, rows in zip(self.draws.tensors(), drawn):
                buffer[k * self.size:(k + 1) * self.size].copy_(rows)
            self.lrs[k].copy_(torch.tensor(list(rates), dtype=torch.float32))
        self.loss_sum.zero_()

    def _step(self, batch: int) -> None:
        visits = self.cursor + self.offsets[:batch]  # positions in the epoch's visiting order, as for one round
        index = self.positions.gather(1, self.order.index_select(1, visits)).reshape(-1)  # (K*batch,) D0 positions
        train = self.data.train
        draws: CropFlip = self.draws.rows((self.row_start + visits).reshape(-1))
        images = self.data.prepare(train.images.index_select(0, index), draws, channels_last=False)
        images = images.view(self.k, batch, *images.shape[1:])
        if self.channels_last and images.dim() == 5:
            images = stacked_channels_last(images)
        labels = train.labels.index_select(0, index).view(self.k, batch)
        with self.data.forward_context(graph_safe=self.capture):
            logits = self.forward(self.params, self.buffers, images)  # (K, batch, classes)
            losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(self.k, batch)
            loss = losses.float().mean(dim=1)
        params = list(self.params.values())
        zero_gradients(params, self.foreach)
        loss.sum().backward()
        self._zero_pruned_gradients()
        self.lr_now.copy_(self.lrs.index_select(1, self.step_index).view(self.k))
        sgd_update(params, self.momentum_buffers, self.lr_views, self.momentum, self.weight_decay, self.foreach)
        for k, run in enumerate(self.runs):
            run.record.record_batch(visits, logits[k])
        self.loss_sum.add_(loss.detach() * batch)
        self.cursor.add_(batch)
        self.step_index.add_(1)

    def _zero_pruned_gradients(self) -> None:
        grads = [p.grad for p in self.masked]
        if self.foreach:
            torch._foreach_mul_(grads, self.mask_factors)
        else:
            for g, f in zip(grads, self.mask_factors):
                g.mul_(f)
