"""Batched on-device augmentation: one gather per batch, no per-sample Python.

The random draws are separate from their application (`draw_crop_flip`, `crop_flip`), so that the training
step can draw a whole epoch's augmentation at the epoch's start and read a batch's rows by index on the
device (prac.training.train_step: a step with static shapes, captured as a CUDA graph on a GPU).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class CropFlip:
    """Per-sample crop offsets into the zero-padded image and mirror flags; None where not augmented."""

    top: torch.Tensor | None  # (B, 1) int64 in 0..2*padding
    left: torch.Tensor | None
    mirrored: torch.Tensor | None  # (B, 1) bool

    def tensors(self) -> list[torch.Tensor]:
        """The draws there are (the buffers a training step refills each epoch)."""
        return [t for t in (self.top, self.left, self.mirrored) if t is not None]

    def rows(self, index: torch.Tensor) -> "CropFlip":
        """The draws of the samples at `index` (positions within the drawn batch), on the device."""
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        return CropFlip(pick(self.top), pick(self.left), pick(self.mirrored))


def draw_crop_flip(count: int, padding: int, flip: bool, generator: torch.Generator,
                   device: torch.device | str) -> CropFlip:
    """The random draws of `count` samples from `generator` (on `device`): top, then left, then mirror."""
    top = left = mirrored = None
    if padding:
        top = torch.randint(0, 2 * padding + 1, (count, 1), generator=generator, device=device)
        left = torch.randint(0, 2 * padding + 1, (count, 1), generator=generator, device=device)
    if flip:
        mirrored = torch.randint(0, 2, (count, 1), generator=generator, device=device).bool()
    return CropFlip(top, left, mirrored)


def crop_flip(images: torch.Tensor, padding: int, draws: CropFlip) -> torch.Tensor:
    """Zero-pad by `padding`, crop back to HxW at the drawn offsets, and mirror the drawn samples.
    `images` is uint8 (B, C, H, W)."""
    if draws.top is None and draws.mirrored is None:
        return images
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    rows = torch.arange(h, device=device).expand(b, h) if draws.top is None else draws.top + torch.arange(h, device=device)
    cols = torch.arange(w, device=device).expand(b, w) if draws.left is None else draws.left + torch.arange(w, device=device)
    if draws.mirrored is not None:
        # Mirroring is just reading the crop's columns in reverse order.
        cols = torch.where(draws.mirrored, cols.flip(1), cols)
    # One gather along each sample's flattened padded image (shared by its channels): about 4x faster
    # on the CPU than advanced indexing with four broadcast index tensors, and the same pixels.
    flat = rows[:, :, None] * padded.shape[-1] + cols[:, None, :]  # (B, H, W) positions in a padded plane
    return padded.flatten(2).gather(2, flat.reshape(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 `(x / 255 - mean) / std`, with mean/std shaped (1, C, 1, 1) on the images' device."""
    return (images.float().div_(255.0) - mean).div_(std)
