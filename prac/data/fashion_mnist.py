"""Fashion-MNIST from the four standard idx files (gzip-compressed or not)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from prac.data.raw import RawDataset
from prac.errors import DataError, one_line

# Where the Debian package dataset-fashion-mnist installs the files.
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Standard per-channel statistics of the Fashion-MNIST training set.
MEAN = (0.2860,)
STD = (0.3530,)
_HINT = "install the Debian package dataset-fashion-mnist or pass --data-dir"


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _resolve_dir(data_dir: Path) -> Path:
    """Accept the flat layout or torchvision's <dir>/FashionMNIST/raw/."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"fashion-mnist: data dir {data_dir} is not a folder (pass the folder holding the idx files)")
    if not data_dir.is_dir():
        raise DataError(f"fashion-mnist: data dir {data_dir} does not exist ({_HINT})")
    for candidate in (data_dir, data_dir / "FashionMNIST" / "raw"):
        if any(_find(candidate, stem) for stem in FILES.values()):
            return candidate
    expected = ", ".join(f"{stem}[.gz]" for stem in FILES.values())
    raise DataError(f"fashion-mnist: no idx files in {data_dir} (expected {expected}; {_HINT})")


def read_idx_ubyte(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte idx file; torchvision's reader neither gunzips nor validates without asserts."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except Exception as exc:  # gzip/zlib/OS errors all mean an unreadable file
        raise DataError(f"fashion-mnist: cannot read {path}: {one_line(exc)}") from exc
    header = 4 + 4 * ndim
    if len(data) < header or data[0:2] != b"\x00\x00" or data[2] != 0x08 or data[3] != ndim:
        raise DataError(f"fashion-mnist: {path} is not a {ndim}-d unsigned-byte idx file (bad magic number)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - header != int(np.prod(shape)):
        raise DataError(f"fashion-mnist: {path} holds {len(data) - header} bytes of data, header says {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(data_dir: str | Path | None = None) -> RawDataset:
    """Load Fashion-MNIST as uint8 (N, 1, 28, 28); defaults to the Debian package's directory."""
    directory = _resolve_dir(Path(data_dir) if data_dir is not None else DEFAULT_DIR)
    arrays = {}
    for key, stem in FILES.items():
        path = _find(directory, stem)
        if path is None:
            raise DataError(f"fashion-mnist: missing file {directory / stem}[.gz] ({_HINT})")
        arrays[key] = read_idx_ubyte(path, ndim=3 if key.endswith("images") else 1)
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"fashion-mnist: {part} has {images.shape[0]} images but {labels.shape[0]} labels in {directory}")
        if labels.size and labels.max() >= 10:
            raise DataError(f"fashion-mnist: {part} labels in {directory} go up to {labels.max()}, expected 0..9")
    return RawDataset(
        name="fashion-mnist",
        train_images=arrays["train_images"][:, None, :, :].copy(),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"][:, None, :, :].copy(),
        test_labels=arrays["test_labels"].astype(np.int64),
        num_classes=10,
        mean=MEAN,
        std=STD,
    )
