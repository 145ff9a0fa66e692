"""Fashion-MNIST files in the release format (four gzipped unsigned-byte idx files), written from arrays.

For the tests (they run the real reader, prac.data.fashion_mnist, on them) and for machines without the
Debian package dataset-fashion-mnist (the benchmarks' --quick smoke runs):

    python -m prac.data.idx_files OUT_DIR [--train N] [--test N] [--seed S]

writes OUT_DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz with N learnable 28×28 images
(`prac.data.learnable`), ready for `prac-lth run fashion-lenet --data-dir OUT_DIR`.
"""
from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

from prac.artifacts import atomic_write
from prac.data.fashion_mnist import FILES
from prac.data.learnable import learnable_images

SHAPE = (1, 28, 28)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Unsigned-byte idx file: magic 0x0000 08 <ndim>, big-endian uint32 dims, then the bytes; gzipped."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with atomic_write(path) as tmp, gzip.open(tmp, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_fashion_mnist(folder: Path, train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                        test_labels: np.ndarray) -> Path:
    """Write uint8 (N, 28, 28) images and their labels as the four `.gz` files in `folder`; returns it."""
    folder = Path(folder)
    arrays = {"train_images": train_images, "train_labels": train_labels,
              "test_images": test_images, "test_labels": test_labels}
    for key, stem in FILES.items():
        write_idx(folder / f"{stem}.gz", np.asarray(arrays[key], dtype=np.uint8))
    return folder


def write_learnable_fashion_mnist(folder: Path, train: int, test: int, seed: int = 0) -> Path:
    train_images, train_labels = learnable_images(train, seed, SHAPE)
    test_images, test_labels = learnable_images(test, seed + 1, SHAPE)
    return write_fashion_mnist(folder, train_images[:, 0], train_labels, test_images[:, 0], test_labels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write learnable 28×28 images as Fashion-MNIST idx files.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train", type=int, default=6_000, help="training images (default 6000)")
    parser.add_argument("--test", type=int, default=1_000, help="test images (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = write_learnable_fashion_mnist(args.out_dir, args.train, args.test, args.seed)
    print(f"wrote {args.train} training and {args.test} test images to {folder}")


if __name__ == "__main__":
    main()
