"""CIFAR-10 / CIFAR-100 from the python-pickle release, read without torchvision's md5 checks."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from prac.data.raw import RawDataset
from prac.errors import DataError, one_line

# Standard per-channel statistics of the training sets (on the [0, 1] scale).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def _resolve_dir(name: str, data_dir: Path, folder: str, marker: str) -> Path:
    """Accept the parent folder or the extracted `folder` itself."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"{name}: data dir {data_dir} is not a folder (pass the folder holding {folder}/)")
    if not data_dir.is_dir():
        raise DataError(f"{name}: data dir {data_dir} does not exist (pass --data-dir, or --download to fetch it)")
    if (data_dir / folder).is_dir():
        return data_dir / folder
    if (data_dir / marker).exists():
        return data_dir
    raise DataError(f"{name}: no {folder}/ in {data_dir} (pass the folder holding it, or --download to fetch it)")


def _read_batch(name: str, path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{name}: missing file {path}")
    try:
        with open(path, "rb") as f:
            # latin1 decodes the py2-era pickles; keys may come back as str or bytes.
            raw = pickle.load(f, encoding="latin1")
    except Exception as exc:  # anything from a bad pickle means an unreadable file
        raise DataError(f"{name}: cannot read {path}: {one_line(exc)}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{name}: {path} holds a {type(raw).__name__}, not a CIFAR batch (a dict of data and labels)")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    missing = [key for key in ("data", label_key) if key not in batch]
    if missing:
        keys = ", ".join(map(str, list(batch)[:8])) or "none"
        raise DataError(f"{name}: {path} is not a CIFAR batch: no {' or '.join(map(repr, missing))} (keys: {keys})")
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except Exception as exc:  # values that are not arrays of numbers
        raise DataError(f"{name}: cannot read {path}: {one_line(exc)}") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise DataError(f"{name}: {path} has data {data.shape} and labels {labels.shape}, expected (N, 3072) and (N,)")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{name}: {path} has labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def _load(name, data_dir, download, folder, train_files, test_file, label_key, num_classes, mean, std):
    if data_dir is None:
        raise DataError(f"{name}: no data dir given (pass --data-dir, and --download to fetch it)")
    data_dir = Path(data_dir)
    if download:
        _download(name, data_dir)
    directory = _resolve_dir(name, data_dir, folder, test_file)
    train = [_read_batch(name, directory / f, label_key, num_classes) for f in train_files]
    test_images, test_labels = _read_batch(name, directory / test_file, label_key, num_classes)
    return RawDataset(
        name=name,
        train_images=np.concatenate([x for x, _ in train]),
        train_labels=np.concatenate([y for _, y in train]),
        test_images=test_images,
        test_labels=test_labels,
        num_classes=num_classes,
        mean=mean,
        std=std,
    )


def _download(name: str, data_dir: Path) -> None:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        cls(root=str(data_dir), download=True)
    except Exception as exc:  # network, disk and checksum failures all surface here
        raise DataError(f"{name}: download into {data_dir} failed: {one_line(exc)}") from exc


def load_cifar10(data_dir: str | Path | None, download: bool = False) -> RawDataset:
    """CIFAR-10 as uint8 (N, 3, 32, 32) from `cifar-10-batches-py/` (or that folder itself)."""
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    return _load("cifar10", data_dir, download, "cifar-10-batches-py", train_files, "test_batch",
                 "labels", 10, CIFAR10_MEAN, CIFAR10_STD)


def load_cifar100(data_dir: str | Path | None, download: bool = False) -> RawDataset:
    """CIFAR-100 (fine labels) as uint8 (N, 3, 32, 32) from `cifar-100-python/` (or that folder itself)."""
    return _load("cifar100", data_dir, download, "cifar-100-python", ["train"], "test",
                 "fine_labels", 100, CIFAR100_MEAN, CIFAR100_STD)
