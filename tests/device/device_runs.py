"""What the device tests share: the devices, the data sizes, a short cifar10-resnet20 config."""
from __future__ import annotations

from pathlib import Path

import pytest

from prac.settings.config import ExperimentConfig
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config

DEVICES = [
    pytest.param("cpu", marks=pytest.mark.slow, id="cpu"),
    pytest.param("cuda", id="cuda", marks=[
        pytest.mark.gpu, pytest.mark.needs("cuda")]),
]
# (training images, test images) per device: a few batches on the CPU; on a GPU enough for epochs of 35
# batches (4,500 images, the size a GPU run of the product first failed on).
SIZES = {"cpu": (256, 128), "cuda": (4_500, 1_000)}
BATCH = 128

# cifar10-resnet20 shortened: 8 epochs, the LR cut 100-fold after epoch 3 so that the candidate masks
# settle and early stop (ε 0.02, window 3) fires; 3 rounds, rewind to epoch 1.
SHORT = ["train.epochs=8", "train.milestones=[3]", "train.gamma=0.01", "prune.rounds=3", "prune.rewind_epoch=1",
         "prac.early_stop_eps=0.02", "prac.early_stop_window=3"]


def short_config(device: str, data_dir: Path, output_dir: Path, *overrides: str) -> ExperimentConfig:
    return apply_overrides(preset_config("cifar10-resnet20"), [
        *SHORT, f"runtime.device={device}", f"runtime.data_dir={data_dir}", f"runtime.output_dir={output_dir}",
        *overrides])
