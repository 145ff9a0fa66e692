"""Splits held on the training device as one uint8 tensor each; batches are gathered by index."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from prac.settings.config import DataConfig
from prac.data.augment import CropFlip, crop_flip, draw_crop_flip, normalize
from prac.data.raw import RawDataset
from prac.data.registry import DATASETS
from prac.data.validation_split import split_train_validation


@dataclass
class DeviceSplit:
    images: torch.Tensor  # (N, C, H, W) uint8 on the device
    labels: torch.Tensor  # (N,) int64 on the device

    def __len__(self) -> int:
        return self.labels.shape[0]


@dataclass
class DeviceData:
    """D0, validation and test on the device, with what the training loop needs to augment them."""

    train: DeviceSplit  # D0
    val: DeviceSplit
    test: DeviceSplit
    train_index: np.ndarray  # position of each D0 sample in the dataset's train set
    val_index: np.ndarray
    mean: torch.Tensor  # (1, C, 1, 1)
    std: torch.Tensor
    crop_padding: int
    flip: bool
    num_classes: int
    image_shape: tuple[int, int, int]
    autocast: torch.dtype | None = None  # forward passes in this dtype (prac.hardware.precision); None: float32
    graphs: bool = True  # on a CUDA device, capture the training step as a CUDA graph (prac.training.train_step)

    def forward_context(self, graph_safe: bool = False) -> contextlib.AbstractContextManager:
        """Where a model's forward pass (and loss) runs: autocast to `autocast` on the data's device.
        `graph_safe`: without autocast's cache of cast weights, which must not outlive a captured step."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.train.images.device.type, dtype=self.autocast, cache_enabled=not graph_safe)

    def draw_augmentation(self, count: int, generator: torch.Generator) -> CropFlip:
        """The random crop offsets and flips of `count` training samples, drawn from `generator`."""
        return draw_crop_flip(count, self.crop_padding, self.flip, generator, self.train.images.device)

    def prepare(self, images: torch.Tensor, draws: CropFlip | None, channels_last: bool) -> torch.Tensor:
        """uint8 batch -> normalised float batch; augmented with `draws` (draw_augmentation) when given."""
        if draws is not None:
            images = crop_flip(images, self.crop_padding, draws)
        batch = normalize(images, self.mean, self.std)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch


def _to_device(images: np.ndarray, labels: np.ndarray, device: torch.device) -> DeviceSplit:
    return DeviceSplit(torch.from_numpy(np.ascontiguousarray(images)).to(device),
                       torch.from_numpy(labels.astype(np.int64)).to(device))


def to_device_data(raw: RawDataset, config: DataConfig, device: torch.device,
                   autocast: torch.dtype | None = None) -> DeviceData:
    train_images, train_labels = raw.train_images, raw.train_labels
    if config.train_limit is not None:
        train_images, train_labels = train_images[: config.train_limit], train_labels[: config.train_limit]
    train_index, val_index = split_train_validation(len(train_labels), config.val_fraction, config.split_seed)
    spec = DATASETS[config.dataset]
    channels = raw.train_images.shape[1]
    return DeviceData(
        train=_to_device(train_images[train_index], train_labels[train_index], device),
        val=_to_device(train_images[val_index], train_labels[val_index], device),
        test=_to_device(raw.test_images, raw.test_labels, device),
        train_index=train_index,
        val_index=val_index,
        mean=torch.tensor(raw.mean, dtype=torch.float32, device=device).view(1, channels, 1, 1),
        std=torch.tensor(raw.std, dtype=torch.float32, device=device).view(1, channels, 1, 1),
        crop_padding=spec.crop_padding if config.augment else 0,
        flip=spec.flip and config.augment,
        num_classes=raw.num_classes,
        image_shape=raw.image_shape,
        autocast=autocast,
    )
