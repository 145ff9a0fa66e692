"""Fixtures shared by the tests that train on the real digits data."""
import os

# One OpenMP thread for the whole test run, set before torch loads (build_context respects it): on 2
# shared cores, 2 threads slow tiny steps down by an order of magnitude whenever another process is busy.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest
import torch

import external  # noqa: E402  (tests/ is on sys.path)
from prac.imp.context import build_context
from prac.settings.presets import preset_config


@pytest.fixture(scope="module")
def one_thread():
    # On 2 shared cores, OpenMP's 2 threads slow tiny steps down by an order of magnitude (up to ~50x)
    # whenever another process is busy; one thread is as fast when idle and steady under load.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ctx():
    return build_context(preset_config("digits-smoke", runtime={"device": "cpu"}))


@pytest.fixture(scope="module")
def subset(ctx):
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(len(ctx.data.train), size=201, replace=False))  # 4 batches of 64, last partial


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before the test's fixtures: a missing browser or server skips without building a whole comparison first.
    external.check_needs(item)


# Each module runs on one worker (`--dist loadscope`: its module-scoped runs are built once) and the workers take
# modules in collection order. The stack's module is by far the longest (8 minutes of a 20-minute run, one worker):
# last in alphabetical order it ran while the other worker had nothing left to do; first, the other worker's modules
# even out the end. Only it moves: two modules of many processes each side by side slow each other down
# (BENCHMARKS.md, test-suite run times).
FIRST = ["test_scale_out.py"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
