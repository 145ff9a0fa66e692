"""Batched on-device augmentation: one gather per batch, no per-sample Python."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding`, crop back to HxW at per-sample offsets, and mirror a random half if `flip`.

    `images` is uint8 (B, C, H, W); every random draw comes from `generator` (on the images' device),
    so a fixed generator seed gives identical output.
    """
    if padding == 0 and not flip:
        return images
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    if padding:
        top = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=device)
        left = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=device)
    else:
        top = left = torch.zeros((b, 1), dtype=torch.long, device=device)
    rows = top + torch.arange(h, device=device)  # (B, H)
    cols = left + torch.arange(w, device=device)  # (B, W)
    if flip:
        # Mirroring is just reading the crop's columns in reverse order.
        mirrored = torch.randint(0, 2, (b, 1), generator=generator, device=device).bool()
        cols = torch.where(mirrored, cols.flip(1), cols)
    # One gather along each sample's flattened padded image (shared by its channels): about 4x faster
    # on the CPU than advanced indexing with four broadcast index tensors, and the same pixels.
    flat = rows[:, :, None] * padded.shape[-1] + cols[:, None, :]  # (B, H, W) positions in a padded plane
    return padded.flatten(2).gather(2, flat.view(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 `(x / 255 - mean) / std`, with mean/std shaped (1, C, 1, 1) on the images' device."""
    return (images.float().div_(255.0) - mean).div_(std)
