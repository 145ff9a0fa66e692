"""Where tensors live: the one boundary between the training device and the CPU.

The discipline (docs/decisions.md, "Device discipline"):
- a round's weights, masks, index sets and correctness record live on the training device;
- what goes to disk or to numpy crosses to the CPU here: `to_cpu` (every torch file, in
  `prac.artifacts.save_torch`) and `to_numpy`;
- what is read from disk comes back on the CPU and is placed on the device by `to_device`, in one
  place per experiment: `ExperimentContext.place`, called by the step that reads it (prac/imp/imp_steps.py);
  a round's own epoch checkpoint is placed by the round that resumes from it (prac.training.round_checkpoint);
- code that trains checks its inputs with `require_on` instead of moving them quietly, so a tensor on
  the wrong device is a clear error on the first GPU run, not a silent copy every step.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np
import torch

Device = torch.device | str


def map_tensors(tree: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """`tree` with `fn` applied to every tensor in it: through dicts, lists, tuples and dataclasses;
    anything else (numbers, strings, numpy arrays, None) is kept as it is."""
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, Mapping):
        return {k: map_tensors(v, fn) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_tensors(v, fn) for v in tree)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return dataclasses.replace(tree, **{f.name: map_tensors(getattr(tree, f.name), fn)
                                            for f in dataclasses.fields(tree) if f.init})
    return tree


def to_cpu(tree: Any) -> Any:
    """Every tensor of `tree` on the CPU, detached (no copy for those already there)."""
    return map_tensors(tree, lambda t: t.detach().cpu())


def to_device(tree: Any, device: Device) -> Any:
    """Every tensor of `tree` on `device` (no copy for those already there)."""
    return map_tensors(tree, lambda t: t.to(device))


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array, from whichever device it is on."""
    return tensor.detach().cpu().numpy()


def require_on(device: Device, tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """ValueError naming the first tensor of `tensors` that is not on `device`."""
    device = torch.device(device)
    for name, tensor in tensors.items():
        if not _same_device(tensor.device, device):
            raise ValueError(f"{what} {name!r} is on {tensor.device}, but the round runs on {device}: "
                             "place what is read from disk with prac.hardware.placement.to_device (ExperimentContext.place)")


def _same_device(a: torch.device, b: torch.device) -> bool:
    # "cuda" and "cuda:0" name the same device when the current device is 0
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
