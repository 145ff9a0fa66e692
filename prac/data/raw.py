"""What every dataset loader returns: the whole dataset on the host, as uint8 arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RawDataset:
    """A dataset as loaded from disk, before any split or device placement.

    Images are uint8 in NCHW layout; labels are int64 class indices in [0, num_classes).
    `mean` and `std` are per-channel statistics on the [0, 1] scale, used for normalisation
    on the training device.
    """

    name: str
    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            images = getattr(self, f"{part}_images")
            labels = getattr(self, f"{part}_labels")
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(f"{self.name}: {part} images must be uint8 NCHW, got {images.dtype} {images.shape}")
            if labels.shape != (images.shape[0],):
                raise ValueError(f"{self.name}: {part} labels shape {labels.shape} != ({images.shape[0]},)")
        if len(self.mean) != self.train_images.shape[1] or len(self.std) != self.train_images.shape[1]:
            raise ValueError(f"{self.name}: mean/std must have one value per channel")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]
