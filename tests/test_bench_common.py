"""bench/common.py, what every benchmark runs on, in the quick tier: the smoke runs' stand-in for Fashion-MNIST,
and both arms (our training path and the DataLoader baseline) training on it. The benchmarks themselves run as
whole commands in tests/test_bench_smoke.py (slow)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import common  # noqa: E402


@pytest.fixture
def no_fashion_package(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "FASHION_DIR", tmp_path / "not-installed")
    monkeypatch.setattr(common, "SMOKE_FASHION", (1_200, 300))  # smaller than a smoke run's, same code
    monkeypatch.setattr(common, "FASHION_STAND_IN", False)
    # smoke_fashion_files sets PRAC_FASHION_DIR for the process (its benchmark's children read it): taken back
    # here, or the later tests' benchmarks would inherit these few images
    before = os.environ.pop("PRAC_FASHION_DIR", None)
    yield
    os.environ.pop("PRAC_FASHION_DIR", None)
    if before is not None:
        os.environ["PRAC_FASHION_DIR"] = before


def test_a_smoke_run_without_the_package_trains_on_generated_idx_files(no_fashion_package, capsys, one_thread):
    common.smoke_fashion_files()
    folder = Path(os.environ["PRAC_FASHION_DIR"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz"]
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().out and common.FASHION_STAND_IN
    common.smoke_fashion_files()  # a second call (a child process) keeps the folder it inherited
    assert os.environ["PRAC_FASHION_DIR"] == str(folder)

    workload = common.WORKLOADS["lenet300"]
    data = workload.make_data(1_024, test_count=300, precision="float32")
    assert tuple(data.train.images.shape) == (1_024, 1, 28, 28) and len(data.test) == 300
    ours, baseline = common.FastPath(workload, data), common.Baseline(workload, data, workers=0)
    assert ours.images_per_second(0) > 0 and baseline.images_per_second(0) > 0
    ours.train_epochs(2, seed=1)
    baseline.train_epochs(2, seed=1)  # three epochs each in all: ~0.5-0.7 here
    for arm in (ours, baseline):
        assert 0.3 < arm.test_accuracy() <= 1.0  # learnable images: both arms learn them, far above chance (0.1)
        assert common.pruned_fraction(arm.model, arm.mask) == 1.0  # the mask held through training
    kept = sum(int(k.sum()) for k in ours.mask.values()) / sum(k.numel() for k in ours.mask.values())
    assert np.isclose(kept, 1 - common.PRUNED, atol=0.001)
