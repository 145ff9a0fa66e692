"""scikit-learn's bundled 8x8 digits, with a fixed stratified train/test split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from prac.data.raw import RawDataset

# Digits ships without a test split; a fixed seed makes every run see the same one.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits(data_dir: str | Path | None = None) -> RawDataset:
    """Load the 1,797 digits as uint8 (N, 1, 8, 8); `data_dir` is ignored (the data is bundled)."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    # Pixel values are 0..16; rescale to the 0..255 range every other dataset uses.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    scaled = train_x.astype(np.float64) / 255.0
    return RawDataset(
        name="digits",
        train_images=np.ascontiguousarray(train_x),
        train_labels=np.ascontiguousarray(train_y),
        test_images=np.ascontiguousarray(test_x),
        test_labels=np.ascontiguousarray(test_y),
        num_classes=10,
        mean=(float(scaled.mean()),),
        std=(float(scaled.std()),),
    )
