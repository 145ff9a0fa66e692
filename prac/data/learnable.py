"""Images a network can learn, unlike uniform noise, for machines without the real data: each class is a
fixed smooth pattern (the same for every seed), each image that pattern at a random contrast under heavy
per-pixel noise, so some images are easy and some are hard. Training on them forgets and relearns samples,
prunes to masks that settle, and gives dense and sparse models that disagree on some samples: the PrAC
machinery behaves as on real data. Written to disk in the real formats by cifar_files and idx_files."""
from __future__ import annotations

import numpy as np

CLASSES = 10
BLOCKS = 4  # a pattern is BLOCKS × BLOCKS cells per channel, each cell a flat patch of the image


def learnable_images(count: int, seed: int, shape: tuple[int, int, int] = (3, 32, 32)) -> tuple[np.ndarray, np.ndarray]:
    """`count` uint8 images of `shape` (C, H, W; H and W multiples of BLOCKS) and their labels in 0..9."""
    channels, height, width = shape
    patterns = np.random.default_rng(12345).uniform(-1, 1, (CLASSES, channels, BLOCKS, BLOCKS))
    patterns = patterns.repeat(height // BLOCKS, axis=2).repeat(width // BLOCKS, axis=3)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, count)
    contrast = rng.uniform(10, 70, (count, 1, 1, 1))
    images = 128 + contrast * patterns[labels] + rng.normal(0, 60, (count, *shape))
    return np.clip(images, 0, 255).astype(np.uint8), labels
