"""The product run on each training device: the CPU (slow-marked) and CUDA (`gpu`-marked, skipped where
there is no CUDA device). The same test bodies run on both, so the GPU tests are themselves checked on
every CI run, and a GPU machine runs them with `pytest -m gpu tests/device`.

These tests import the engine only (prac/), never Prefect or MLflow: a GPU machine with its own torch
needs just the project's pure-Python dependencies to run them (docs/howto/gpu.md, "Install and check").
Data: learnable CIFAR-shaped images written as real CIFAR-10 pickle files (prac.data.cifar_files).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from device_runs import DEVICES, SIZES
from prac.data.cifar_files import write_learnable_cifar10


@pytest.fixture(scope="module", params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def cifar_dir(device, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp(f"cifar-{device}")
    train, test = SIZES[device]
    write_learnable_cifar10(root, train, test, seed=0)
    return root
