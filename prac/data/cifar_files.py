"""CIFAR-10 files in the python-pickle release format (`cifar-10-batches-py/`), written from arrays.

For the tests (they run the real reader, prac.data.cifar, on them) and for checking a machine that has
no copy of CIFAR-10 (bench/gpu_check.sh):

    python -m prac.data.cifar_files OUT_DIR [--train N] [--test N] [--seed S]

writes OUT_DIR/cifar-10-batches-py/ with N learnable CIFAR-shaped training images (see
`prac.data.learnable`), ready for `prac-lth run cifar10-resnet20 --data-dir OUT_DIR`.
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from prac.artifacts import atomic_write
from prac.data.learnable import learnable_images

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = 5
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _write_pickle(path: Path, obj: dict) -> None:
    # str keys and protocol 2, as the release's own files read back under Python 3
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root: Path, train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                  test_labels: np.ndarray) -> Path:
    """Write uint8 (N, 3, 32, 32) images and their labels as root/cifar-10-batches-py/: the training set
    split in order over data_batch_1..5, test_batch, batches.meta. Returns the folder."""
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(train_labels)), TRAIN_FILES), start=1):
        _write_pickle(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of {TRAIN_FILES}",
            "data": np.ascontiguousarray(train_images[part]).reshape(len(part), -1),
            "labels": [int(y) for y in train_labels[part]]})
    _write_pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1",
                                          "data": np.ascontiguousarray(test_images).reshape(len(test_labels), -1),
                                          "labels": [int(y) for y in test_labels]})
    _write_pickle(folder / "batches.meta", {"label_names": LABEL_NAMES, "num_vis": 3072,
                                            "num_cases_per_batch": -(-len(train_labels) // TRAIN_FILES)})
    return folder


def write_learnable_cifar10(root: Path, train: int, test: int, seed: int = 0) -> Path:
    train_images, train_labels = learnable_images(train, seed)
    test_images, test_labels = learnable_images(test, seed + 1)
    return write_cifar10(root, train_images, train_labels, test_images, test_labels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write learnable CIFAR-shaped data as CIFAR-10 pickle files.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train", type=int, default=5_000, help="training images (default 5000)")
    parser.add_argument("--test", type=int, default=1_000, help="test images (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = write_learnable_cifar10(args.out_dir, args.train, args.test, args.seed)
    print(f"wrote {args.train} training and {args.test} test images to {folder}")


if __name__ == "__main__":
    main()
