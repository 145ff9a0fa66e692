"""Write tiny datasets in the real on-disk formats, so tests exercise the real loaders."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from prac.data import cifar_files, idx_files


def _write_pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 3, n_test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Write root/cifar-10-batches-py/{data_batch_1..5,test_batch} (random images, prac.data.cifar_files);
    return the expected NCHW arrays."""
    rng = np.random.default_rng(seed)
    expected = {
        "train_images": rng.integers(0, 256, (5 * per_batch, 3, 32, 32), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, 5 * per_batch),
        "test_images": rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test),
    }
    cifar_files.write_cifar10(root, **expected)
    return expected


def write_cifar100(root: Path, n_train: int = 6, n_test: int = 3, seed: int = 1) -> dict[str, np.ndarray]:
    """Write root/cifar-100-python/{train,test} with fine and coarse labels; return the expected arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        coarse = (np.asarray(fine) // 5).tolist()
        _write_pickle(folder / split, {"data": data, "fine_labels": fine, "coarse_labels": coarse})
        out[f"{split}_images"] = data.reshape(-1, 3, 32, 32)
        out[f"{split}_labels"] = np.asarray(fine)
    return out


def write_fashion_mnist(folder: Path, n_train: int = 5, n_test: int = 3, seed: int = 2) -> dict[str, np.ndarray]:
    """Write the four gzipped idx files into `folder` (prac.data.idx_files); return the expected (N, 28, 28) /
    (N,) arrays."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        out[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        out[f"{split}_labels"] = rng.integers(0, 10, n).astype(np.uint8)
    idx_files.write_fashion_mnist(folder, **out)
    return out


# wnids deliberately unsorted on disk: class index must follow sorted order.
TINY_WNIDS = ["n03000000", "n01000000", "n02000000"]
TINY_COLORS = {"n01000000": (200, 30, 30), "n02000000": (30, 200, 30), "n03000000": (30, 30, 200)}


def _write_jpeg(path: Path, color: tuple[int, int, int], grey: bool, seed: int) -> np.ndarray:
    """A solid colour plus mild noise; returns the pixels PIL decodes back from the written file."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.asarray(color) + rng.integers(-10, 11, (64, 64, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    (img.convert("L") if grey else img).save(path, format="JPEG", quality=95)
    with Image.open(path) as back:
        return np.asarray(back.convert("RGB")).transpose(2, 0, 1)


def write_tiny_imagenet(root: Path, per_class: int = 2, val_per_class: int = 1) -> dict[str, list]:
    """Write root/tiny-imagenet-200/ with a few classes; return {split: [(wnid, CHW pixels), ...]} in load order."""
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    expected: dict[str, list] = {"train": [], "val": []}
    seed = 0
    for wnid in sorted(TINY_WNIDS):
        folder = base / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for j in range(per_class):
            seed += 1
            pixels = _write_jpeg(folder / f"{wnid}_{j}.JPEG", TINY_COLORS[wnid], grey=(j == 1), seed=seed)
            expected["train"].append((wnid, pixels))
    val_images = base / "val" / "images"
    val_images.mkdir(parents=True)
    lines = []
    for k, wnid in enumerate(TINY_WNIDS * val_per_class):
        seed += 1
        name = f"val_{k}.JPEG"
        lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
        expected["val"].append((name, wnid, _write_jpeg(val_images / name, TINY_COLORS[wnid], False, seed)))
    (base / "val" / "val_annotations.txt").write_text("\n".join(reversed(lines)) + "\n")
    expected["val"] = [(wnid, px) for _, wnid, px in sorted(expected["val"], key=lambda t: t[0])]
    return expected
