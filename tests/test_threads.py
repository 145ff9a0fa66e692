"""The CPU thread count the product chooses (prac.hardware.device)."""
import os

import pytest
import torch

from prac.settings.config import RuntimeConfig
from prac.hardware.device import choose_threads, configure_threads, usable_cores


def affinity() -> int:
    return len(os.sched_getaffinity(0))


@pytest.mark.parametrize("cpu_max, expected", [
    ("max 100000\n", None),          # no quota: the affinity
    ("100000 100000\n", 1),          # one CPU's worth
    ("150000 100000\n", 2),          # 1.5 CPUs: two threads, each partly busy
    ("5000 100000\n", 1),            # a twentieth of a CPU still gets one thread
])
def test_usable_cores_caps_the_affinity_by_a_container_quota(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert usable_cores(path) == min(affinity(), expected or affinity())


def test_usable_cores_without_a_readable_quota_is_the_affinity(tmp_path):
    assert usable_cores(tmp_path / "missing") == affinity()
    garbled = tmp_path / "cpu.max"
    garbled.write_text("not numbers")
    assert usable_cores(garbled) == affinity()


def test_configured_threads_beat_the_environment_which_beats_the_default(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(3) == 3
    assert choose_threads(None) is None  # the environment's choice stands
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert choose_threads(None) == usable_cores()


def test_configure_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        configure_threads(2)
        assert torch.get_num_threads() == 2
        configure_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_must_be_positive():
    with pytest.raises(ValueError):
        RuntimeConfig(threads=0)
    assert RuntimeConfig().threads is None
