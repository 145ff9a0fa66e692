"""What every stage of one experiment shares: its config, its data on the device, a model factory."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prac.config import ExperimentConfig
from prac.data.device_data import DeviceData, to_device_data
from prac.data.registry import load_dataset
from prac.device import configure_threads, select_device
from prac.fingerprint import fingerprint, round0_fingerprint, seed_for
from prac.models import build_model
from prac.precision import autocast_dtype


@dataclass
class ExperimentContext:
    config: ExperimentConfig
    data: DeviceData
    device: torch.device

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.config)

    @property
    def round0_fingerprint(self) -> str:
        return round0_fingerprint(self.config)

    def new_model(self) -> nn.Module:
        """The model at θ0: the same weights for every arm of one seed."""
        channels, height, _ = self.data.image_shape
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_for(self.config.seed, "init"))
            model = build_model(self.config.model.name, in_channels=channels,
                                num_classes=self.data.num_classes, image_size=height)
        model = model.to(self.device)
        if self.config.runtime.compile:
            model.compile()  # in place: parameter names and state_dict keys stay the model's own
        return model


def build_context(config: ExperimentConfig) -> ExperimentContext:
    device = select_device(config.runtime.device)
    configure_threads(config.runtime.threads)
    raw = load_dataset(config.data.dataset, config.runtime.data_dir, config.runtime.download)
    data = to_device_data(raw, config.data, device, autocast_dtype(config.runtime.precision, device))
    return ExperimentContext(config, data, device)
