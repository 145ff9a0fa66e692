"""Dataset loaders (through tiny files in the real formats) and batched augmentation."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from prac.data import idx_files
from prac.data.augment import crop_flip, draw_crop_flip, normalize
from prac.data.registry import DATASETS, load_dataset
from prac.errors import DataError
import datafiles  # tests/ is on sys.path (pytest rootdir-less import)


def _assert_split(ds, name, expected, channels, size, num_classes):
    assert ds.name == name and ds.num_classes == num_classes
    assert ds.image_shape == (channels, size, size)
    for part in ("train", "test"):
        images, labels = getattr(ds, f"{part}_images"), getattr(ds, f"{part}_labels")
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        np.testing.assert_array_equal(images, expected[f"{part}_images"].reshape(images.shape))
        np.testing.assert_array_equal(labels, expected[f"{part}_labels"])
    assert len(ds.mean) == len(ds.std) == channels


# --- loaders -----------------------------------------------------------------------------------


def test_digits_fixed_split_covers_everything():
    from sklearn.datasets import load_digits

    a, b = load_dataset("digits"), load_dataset("digits")
    np.testing.assert_array_equal(a.test_images, b.test_images)
    np.testing.assert_array_equal(a.train_labels, b.train_labels)
    assert a.image_shape == (1, 8, 8) and a.train_images.dtype == np.uint8 and a.num_classes == 10
    assert len(a.train_labels) + len(a.test_labels) == 1797 and len(a.test_labels) == 360
    # Train + test is exactly the bundled set (as a multiset of image/label rows).
    sk = load_digits()
    want = np.column_stack([np.rint(sk.images.reshape(-1, 64) * 255 / 16), sk.target]).astype(np.int64)
    got = np.column_stack([np.concatenate([a.train_images, a.test_images]).reshape(-1, 64),
                           np.concatenate([a.train_labels, a.test_labels])]).astype(np.int64)
    np.testing.assert_array_equal(want[np.lexsort(want.T[::-1])], got[np.lexsort(got.T[::-1])])
    assert a.train_images.max() == 255 and np.bincount(a.test_labels).min() >= 35  # stratified


@pytest.mark.parametrize("as_folder", [False, True])
def test_cifar10_round_trip(tmp_path, as_folder):
    expected = datafiles.write_cifar10(tmp_path)
    ds = load_dataset("cifar10", tmp_path / "cifar-10-batches-py" if as_folder else tmp_path)
    _assert_split(ds, "cifar10", expected, 3, 32, 10)
    assert len(ds.train_labels) == 15


def test_cifar100_round_trip(tmp_path):
    expected = datafiles.write_cifar100(tmp_path)
    _assert_split(load_dataset("cifar100", tmp_path), "cifar100", expected, 3, 32, 100)


def test_cifar_bytes_keys(tmp_path):
    # Pickles written by Python 2 come back with bytes keys.
    expected = datafiles.write_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python" / "test"
    data = np.ascontiguousarray(expected["test_images"].reshape(-1, 3072))
    datafiles._write_pickle(path, {b"data": data, b"fine_labels": expected["test_labels"].tolist()})
    np.testing.assert_array_equal(load_dataset("cifar100", tmp_path).test_images, expected["test_images"])


@pytest.mark.parametrize("torchvision_layout", [False, True])
def test_fashion_mnist_round_trip(tmp_path, torchvision_layout):
    folder = tmp_path / "FashionMNIST" / "raw" if torchvision_layout else tmp_path
    expected = datafiles.write_fashion_mnist(folder)
    _assert_split(load_dataset("fashion-mnist", tmp_path), "fashion-mnist", expected, 1, 28, 10)


def test_fashion_mnist_uncompressed(tmp_path):
    expected = datafiles.write_fashion_mnist(tmp_path)
    for gz in tmp_path.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    _assert_split(load_dataset("fashion-mnist", tmp_path), "fashion-mnist", expected, 1, 28, 10)


@pytest.mark.needs("fashion-mnist")
def test_fashion_mnist_real_files():
    ds = load_dataset("fashion-mnist")
    assert ds.train_images.shape == (60000, 1, 28, 28) and ds.test_images.shape == (10000, 1, 28, 28)
    assert ds.num_classes == 10 and set(np.unique(ds.train_labels)) == set(range(10))


def test_tiny_imagenet_round_trip_and_class_order(tmp_path):
    expected = datafiles.write_tiny_imagenet(tmp_path)
    for root in (tmp_path, tmp_path / "tiny-imagenet-200"):
        ds = load_dataset("tiny-imagenet", root)
        assert ds.num_classes == 3 and ds.image_shape == (3, 64, 64)
        order = sorted(datafiles.TINY_WNIDS)  # class index = position in sorted wnids
        for part, split in (("train", "train"), ("test", "val")):
            images, labels = getattr(ds, f"{part}_images"), getattr(ds, f"{part}_labels")
            assert images.dtype == np.uint8 and labels.dtype == np.int64
            np.testing.assert_array_equal(labels, [order.index(w) for w, _ in expected[split]])
            np.testing.assert_array_equal(images, np.stack([px for _, px in expected[split]]))
        # Colour confirms the label: n01 is red, so class 0 images are red-dominant (grey ones excepted).
        colour = ds.test_images.astype(float).mean(axis=(2, 3))
        assert (colour.argmax(axis=1) == ds.test_labels).all()


# --- errors --------------------------------------------------------------------------------------


def _data_error(*args, match: str) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(*args)
    message = str(info.value)
    assert match in message and "\n" not in message, message
    return message


def test_unknown_dataset():
    message = _data_error("imagenet-22k", match="imagenet-22k")
    assert all(name in message for name in DATASETS)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "tiny-imagenet", "fashion-mnist"])
def test_missing_dir(tmp_path, name):
    _data_error(name, tmp_path / "nope", match=str(tmp_path / "nope"))


@pytest.mark.parametrize("name", ["cifar10", "tiny-imagenet"])
def test_no_data_dir_given(name):
    _data_error(name, None, match="--data-dir")


@pytest.mark.parametrize("name", ["cifar10", "tiny-imagenet", "fashion-mnist"])
def test_empty_dir(tmp_path, name):
    _data_error(name, tmp_path, match=str(tmp_path))


def test_missing_files(tmp_path):
    datafiles.write_cifar10(tmp_path / "c10")
    (tmp_path / "c10" / "cifar-10-batches-py" / "data_batch_3").unlink()
    _data_error("cifar10", tmp_path / "c10", match="data_batch_3")
    datafiles.write_fashion_mnist(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    _data_error("fashion-mnist", tmp_path / "fm", match=str(tmp_path / "fm" / "t10k-labels-idx1-ubyte"))
    datafiles.write_tiny_imagenet(tmp_path / "ti")
    (tmp_path / "ti" / "tiny-imagenet-200" / "val" / "images" / "val_1.JPEG").unlink()
    _data_error("tiny-imagenet", tmp_path / "ti", match="val_1.JPEG")


@pytest.mark.parametrize("payload", [b"", b"not a pickle at all", b"\x80\x02K\x01."])
def test_corrupt_cifar(tmp_path, payload):
    datafiles.write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(payload)
    _data_error("cifar10", tmp_path, match=str(path))


def test_corrupt_idx(tmp_path):
    datafiles.write_fashion_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])  # truncated gzip stream
    _data_error("fashion-mnist", tmp_path, match=str(path))
    idx_files.write_idx(path, np.zeros((2, 28), dtype=np.uint8))  # wrong number of dimensions
    _data_error("fashion-mnist", tmp_path, match=str(path))
    with gzip.open(path, "wb") as f:  # header promises more bytes than the file holds
        f.write(bytes([0, 0, 8, 3]) + np.asarray([9, 28, 28], ">u4").tobytes() + bytes(28 * 28))
    _data_error("fashion-mnist", tmp_path, match=str(path))


def test_corrupt_jpeg(tmp_path):
    datafiles.write_tiny_imagenet(tmp_path)
    path = tmp_path / "tiny-imagenet-200" / "train" / "n02000000" / "images" / "n02000000_0.JPEG"
    path.write_bytes(b"\xff\xd8 truncated")
    _data_error("tiny-imagenet", tmp_path, match=str(path))
    shutil.rmtree(path.parent)
    _data_error("tiny-imagenet", tmp_path, match=str(path.parent))


# --- augmentation ---------------------------------------------------------------------------------


def _images(b=64, c=3, h=9, w=7, seed=0):
    return torch.randint(0, 256, (b, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _windows(image, padding):
    """Reference: every crop (and its mirror) of one zero-padded sample, keyed by (top, left, mirrored)."""
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    out = {}
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, top:top + h, left:left + w]
            out[(top, left, False)], out[(top, left, True)] = crop, crop.flip(-1)
    return out


def random_crop_flip(images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Draws for the batch from `generator`, then applied: what the training step does for an epoch's rows."""
    return crop_flip(images, padding, draw_crop_flip(len(images), padding, flip, generator, images.device))


@pytest.mark.parametrize("padding,flip", [(2, False), (1, True), (4, True)])
def test_crop_flip_matches_reference(padding, flip):
    images = _images()
    out = random_crop_flip(images, padding, flip, _gen(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    seen = []  # the matching (top, left, mirrored) per sample
    for i in range(len(images)):
        matches = [k for k, crop in _windows(images[i], padding).items() if torch.equal(crop, out[i])]
        assert matches, f"sample {i} is not a window of its padded input"
        assert flip or not any(k[2] for k in matches)
        seen.append(matches[0])
    assert len({k[:2] for k in seen}) > 1  # offsets differ across samples
    if flip:
        assert 10 < sum(k[2] for k in seen) < 54  # roughly half mirrored


def test_flip_only_mirrors_selected_samples():
    images = _images()
    out = random_crop_flip(images, 0, True, _gen(3))
    same = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all())  # each sample is exactly one of the two
    assert 10 < int(mirrored.sum()) < 54


def test_crop_flip_determinism_and_identity():
    images = _images()
    assert torch.equal(random_crop_flip(images, 4, True, _gen(7)), random_crop_flip(images, 4, True, _gen(7)))
    assert not torch.equal(random_crop_flip(images, 4, True, _gen(7)), random_crop_flip(images, 4, True, _gen(8)))
    assert random_crop_flip(images, 0, False, _gen(7)) is images


def test_normalize():
    images = _images(b=2)
    mean = torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1)
    out = normalize(images, mean, std)
    assert out.dtype == torch.float32 and out.shape == images.shape
    torch.testing.assert_close(out, (images.double() / 255 - mean.double()) / std.double(), check_dtype=False)


def test_generated_fashion_mnist_files_are_read_by_the_real_loader(tmp_path):
    """The benchmarks' smoke runs train on these where the Debian package is missing (bench/common.py)."""
    idx_files.write_learnable_fashion_mnist(tmp_path, train=200, test=50, seed=3)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.train_images.shape == (200, 1, 28, 28) and ds.test_images.shape == (50, 1, 28, 28)
    assert ds.train_images.dtype == np.uint8 and set(np.unique(ds.train_labels)) == set(range(10))
    # Learnable: a test image is nearest to its own class's mean training image, far more often than chance.
    train, test = (x.reshape(len(x), -1).astype(float) for x in (ds.train_images, ds.test_images))
    means = np.stack([train[ds.train_labels == c].mean(0) for c in range(10)])
    nearest = np.argmin(((test[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (nearest == ds.test_labels).mean() > 0.5
