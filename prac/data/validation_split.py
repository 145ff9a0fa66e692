"""The held-out validation split: a seeded permutation of the dataset's train set."""
from __future__ import annotations

import numpy as np


def split_train_validation(train_size: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions (in the dataset's train set) of D0 and of the validation split."""
    permutation = np.random.default_rng(seed).permutation(train_size)
    val_size = max(1, round(train_size * val_fraction))
    return np.sort(permutation[val_size:]), np.sort(permutation[:val_size])
