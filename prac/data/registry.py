"""Known datasets, their augmentation settings, and one entry point to load them by name."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prac.data.cifar import load_cifar10, load_cifar100
from prac.data.digits import load_digits
from prac.data.fashion_mnist import load_fashion_mnist
from prac.data.raw import RawDataset
from prac.data.tiny_imagenet import load_tiny_imagenet
from prac.errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: Callable[[Path | None, bool], RawDataset]  # (data_dir, download) -> dataset
    crop_padding: int  # zero-padding for random crops; 0 disables cropping
    flip: bool  # random horizontal flips (off for digits, where mirroring changes meaning)
    needs_data_dir: bool  # False when the data is bundled or has a default location


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("digits", lambda d, dl: load_digits(d), 1, False, False),
        DatasetSpec("fashion-mnist", lambda d, dl: load_fashion_mnist(d), 2, True, False),
        DatasetSpec("cifar10", load_cifar10, 4, True, True),
        DatasetSpec("cifar100", load_cifar100, 4, True, True),
        DatasetSpec("tiny-imagenet", lambda d, dl: load_tiny_imagenet(d), 4, True, True),
    )
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return DATASETS[name]


def check_data_dir(name: str, data_dir: str | Path | None = None, download: bool = False) -> None:
    """The data-dir mistakes load_dataset meets first, found without reading anything (the CLI says them before
    it starts a server): a dataset that needs a data dir given none, or a data dir that does not exist where
    nothing is to be downloaded into it. A DataError, one line."""
    spec = get_spec(name)
    if data_dir is None and spec.needs_data_dir:
        hint = " (or --download with --data-dir to fetch it)" if name.startswith("cifar") else ""
        raise DataError(f"{name}: no data dir given; pass --data-dir{hint}")
    if data_dir is not None and spec.needs_data_dir and not download and not Path(data_dir).exists():
        raise DataError(f"{name}: data dir {data_dir} does not exist (pass --data-dir, or --download to fetch it)")


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> RawDataset:
    """Load dataset `name`; every missing or unreadable input surfaces as a one-line DataError."""
    spec = get_spec(name)
    check_data_dir(name, data_dir, download)
    raw = spec.loader(Path(data_dir) if data_dir is not None else None, download)
    for part in ("train", "test"):
        if len(getattr(raw, f"{part}_labels")) == 0:
            where = f" in {data_dir}" if data_dir is not None else ""
            raise DataError(f"{name}: the {part} split{where} holds no images")
    return raw
