"""Mixed precision: the dtype forward passes autocast to, chosen per device (and model) where measured faster.

`runtime.precision` "auto" resolves on the machine that trains (BENCHMARKS.md, sections 1 and 6):
- a CUDA GPU with bfloat16: bfloat16 (tensor cores; no loss scaling needed, unlike float16), except for
  the models in FLOAT32_FASTER on that device;
- a CPU with native bfloat16 instructions (AVX-512 BF16 or AMX): bfloat16. Measured on such a CPU (2 threads,
  batch 128): LeNet-300-100 1.3x, Conv-2 1.8x, Conv-4 1.8x, ResNet-20 1.6x float32's training speed;
- any other CPU: float32 (bfloat16 there is emulated and slower).
The resolved precision changes the numbers, so it is part of what keys a result (prac.fingerprint).
"""
from __future__ import annotations

from typing import Literal

import torch

Precision = Literal["float32", "bfloat16"]
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}
# (device type, model) where float32 trained faster than bfloat16 autocast, so "auto" keeps float32 there.
FLOAT32_FASTER: set[tuple[str, str]] = set()


def cpu_has_native_bfloat16() -> bool:
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def resolve_precision(choice: str, device: torch.device, model: str | None = None) -> Precision:
    """The precision `choice` ("auto", "float32" or "bfloat16") means for `model` on `device`."""
    if choice != "auto":
        return choice  # type: ignore[return-value]
    if (device.type, model) in FLOAT32_FASTER:
        return "float32"
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if device.type == "cpu" and cpu_has_native_bfloat16() else "float32"


def autocast_dtype(choice: str, device: torch.device, model: str | None = None) -> torch.dtype | None:
    """The autocast dtype of `resolve_precision`; None for float32 (no autocast)."""
    return AUTOCAST_DTYPES[resolve_precision(choice, device, model)]
