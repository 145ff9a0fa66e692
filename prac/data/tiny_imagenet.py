"""Tiny-ImageNet-200 from its standard folder tree; the labelled val split serves as the test set."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from prac.data.raw import RawDataset
from prac.errors import DataError, one_line

FOLDER = "tiny-imagenet-200"
SIZE = 64
# Commonly used per-channel statistics of the Tiny-ImageNet training set.
MEAN = (0.4802, 0.4481, 0.3975)
STD = (0.2770, 0.2691, 0.2821)


def _resolve_dir(data_dir: Path) -> Path:
    """Accept the parent folder or tiny-imagenet-200/ itself."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"tiny-imagenet: data dir {data_dir} is not a folder (pass the folder holding {FOLDER}/)")
    if not data_dir.is_dir():
        raise DataError(f"tiny-imagenet: data dir {data_dir} does not exist (pass --data-dir)")
    for candidate in (data_dir / FOLDER, data_dir):
        if (candidate / "wnids.txt").is_file():
            return candidate
    raise DataError(f"tiny-imagenet: no {FOLDER}/wnids.txt in {data_dir} (pass the folder holding {FOLDER})")


def _read_text(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"tiny-imagenet: missing file {path}")
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except Exception as exc:
        raise DataError(f"tiny-imagenet: cannot read {path}: {one_line(exc)}") from exc


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))  # some images are greyscale
    except Exception as exc:  # PIL raises many types for truncated or non-image files
        raise DataError(f"tiny-imagenet: cannot decode {path}: {one_line(exc)}") from exc
    if pixels.shape != (SIZE, SIZE, 3):
        raise DataError(f"tiny-imagenet: {path} is {pixels.shape[1]}x{pixels.shape[0]}, expected {SIZE}x{SIZE}")
    return pixels


def _decode_all(paths: list[Path]) -> np.ndarray:
    # Fill a preallocated NCHW array so the full train set is held in memory only once.
    out = np.empty((len(paths), 3, SIZE, SIZE), dtype=np.uint8)
    # PIL releases the GIL while decoding, so threads help; map keeps the order.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, pixels in enumerate(pool.map(_decode, paths)):
            out[i] = pixels.transpose(2, 0, 1)
    return out


def load_tiny_imagenet(data_dir: str | Path | None) -> RawDataset:
    """Tiny-ImageNet as uint8 (N, 3, 64, 64); class index = position of the wnid in sorted wnids.txt."""
    if data_dir is None:
        raise DataError("tiny-imagenet: no data dir given (pass --data-dir)")
    root = _resolve_dir(Path(data_dir))
    wnids = sorted(set(_read_text(root / "wnids.txt")))
    if not wnids:
        raise DataError(f"tiny-imagenet: {root / 'wnids.txt'} lists no classes")
    index = {wnid: i for i, wnid in enumerate(wnids)}

    train_paths, train_labels = [], []
    for wnid in wnids:
        folder = root / "train" / wnid / "images"
        files = sorted(folder.glob("*.JPEG"))
        if not files:
            raise DataError(f"tiny-imagenet: no .JPEG files in {folder}")
        train_paths += files
        train_labels += [index[wnid]] * len(files)

    annotations = root / "val" / "val_annotations.txt"
    val = []
    for line in _read_text(annotations):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DataError(f"tiny-imagenet: bad line in {annotations}: {line[:80]!r}")
        val.append((fields[0], index[fields[1]]))
    if not val:
        raise DataError(f"tiny-imagenet: {annotations} lists no validation images")
    val.sort()
    val_paths = [root / "val" / "images" / filename for filename, _ in val]
    val_labels = [label for _, label in val]
    for path in val_paths:
        if not path.is_file():
            raise DataError(f"tiny-imagenet: missing file {path}")

    return RawDataset(
        name="tiny-imagenet",
        train_images=_decode_all(train_paths),
        train_labels=np.asarray(train_labels, dtype=np.int64),
        test_images=_decode_all(val_paths),
        test_labels=np.asarray(val_labels, dtype=np.int64),
        num_classes=len(wnids),
        mean=MEAN,
        std=STD,
    )
