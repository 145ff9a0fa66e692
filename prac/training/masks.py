"""Masks over the prunable weights, and keeping pruned weights at exactly zero during training."""
from __future__ import annotations

import math
from typing import Iterable, Literal

import torch
from torch import nn

Mask = dict[str, torch.Tensor]  # parameter name -> bool tensor of the parameter's shape
# The layer types pruned at rates of their own (prac.settings.config.PruneConfig): convolutions, hidden linear
# layers, and the output layer.
LayerType = Literal["conv", "linear", "output"]
LAYER_TYPES: tuple[LayerType, ...] = ("conv", "linear", "output")


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every conv and linear weight (the first conv and the output layer included): a mask covers all the
    weights a config could prune, so its sparsity is the network's, whichever types its rates leave dense."""
    return {
        f"{name}.weight" if name else "weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    }


def layer_types(model: nn.Module) -> dict[str, LayerType]:
    """Each prunable weight's layer type: conv, linear (a hidden one) or output: the network's last Linear in
    module order, where every model here registers its classifier (prac.models)."""
    types: dict[str, LayerType] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            types[f"{name}.weight" if name else "weight"] = "conv" if isinstance(module, nn.Conv2d) else "linear"
    linears = [name for name, kind in types.items() if kind == "linear"]
    if linears:
        types[linears[-1]] = "output"
    return types


def full_mask(model: nn.Module) -> Mask:
    return {name: torch.ones_like(p, dtype=torch.bool) for name, p in prunable_parameters(model).items()}


def kept_count(mask: Mask) -> int:
    return int(sum(int(m.sum()) for m in mask.values()))


def total_count(mask: Mask) -> int:
    return sum(m.numel() for m in mask.values())


def sparsity(mask: Mask) -> float:
    return 1.0 - kept_count(mask) / total_count(mask)


def is_nested(inner: Mask, outer: Mask) -> bool:
    """True when every weight kept by `inner` is kept by `outer` (masks only ever lose weights)."""
    return inner.keys() == outer.keys() and all(bool((inner[k] & ~outer[k]).sum() == 0) for k in inner)


def hamming_distance(a: Mask, b: Mask) -> int:
    return int(sum(int((a[k] != b[k]).sum()) for k in a))


def mask_similarity(a: Mask, b: Mask) -> float:
    """|a ∩ b| / |a ∪ b| over the kept weights of every layer (paper Fig. A13); 1.0 for two empty masks."""
    both = sum(int((a[k] & b[k]).sum()) for k in a)
    either = sum(int((a[k] | b[k]).sum()) for k in a)
    return both / either if either else 1.0


class MaskEnforcer:
    """Keeps pruned weights at exactly zero during training, without re-parametrising every forward
    (torch.nn.utils.prune): `apply_to_weights` zeroes them in place, `zero_pruned_gradients` zeroes their
    gradients before each optimizer step.

    With a zero gradient, a zero weight and a zero momentum buffer, an SGD step (weight decay included)
    leaves a pruned weight at exactly zero (the same bits as re-applying the mask after the step). A loop
    whose optimizer starts with the mask in force (fresh, or restored from such a loop) therefore needs
    the gradients zeroed every step and the mask applied only as a guard; an optimizer that carries
    momentum from before the mask needs `apply_to_weights` after every step.
    """

    def __init__(self, model: nn.Module, mask: Mask):
        params = dict(model.named_parameters())
        missing = [name for name in mask if name not in params]
        if missing:
            raise ValueError(f"mask names parameters the model lacks: {missing}")
        self.params = [params[name] for name in mask]
        self.factors = [mask[name].to(device=params[name].device, dtype=params[name].dtype) for name in mask]
        # torch's foreach kernels fuse the multiplies on accelerators; on the CPU they fall back to a
        # per-tensor loop that measured slower than this one's (LeNet-300-100: 65 vs 37 us a step).
        self.foreach = bool(self.params) and self.params[0].device.type != "cpu"

    @torch.no_grad()
    def apply_to_weights(self) -> None:
        if self.foreach:
            torch._foreach_mul_(self.params, self.factors)
        else:
            for p, f in zip(self.params, self.factors):
                p.mul_(f)

    def zero_pruned_gradients(self) -> None:
        # Gradients are outside the autograd graph: no no_grad context needed (it costs ~10 us a call).
        grads = [p.grad for p in self.params]
        if self.foreach and all(g is not None for g in grads):
            torch._foreach_mul_(grads, self.factors)
        else:
            for g, f in zip(grads, self.factors):
                if g is not None:
                    g.mul_(f)


def type_sparsities(mask: Mask, types: dict[str, LayerType]) -> dict[LayerType, float]:
    """Per layer type, the sparsity of its tensors together; nan for a type the network has none of."""
    out: dict[LayerType, float] = {}
    for kind in LAYER_TYPES:
        of_type = {name: m for name, m in mask.items() if types[name] == kind}
        out[kind] = sparsity(of_type) if of_type else math.nan
    return out


def layer_sparsities(mask: Mask) -> Iterable[tuple[str, float]]:
    for name, m in mask.items():
        yield name, 1.0 - float(m.sum()) / m.numel()
