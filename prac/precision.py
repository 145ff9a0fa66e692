"""Mixed precision: the dtype forward passes autocast to, chosen per device."""
from __future__ import annotations

import torch

AUTOCAST_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


def autocast_dtype(choice: str, device: torch.device) -> torch.dtype | None:
    """`runtime.precision`: "auto" is bfloat16 on a GPU that supports it (the tensor cores' fast path;
    no loss scaling needed, unlike float16) and float32 on the CPU (bfloat16 there is emulated on most
    CPUs and changes the numerics of the reference runs)."""
    if choice == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else None
    return AUTOCAST_DTYPES[choice]
