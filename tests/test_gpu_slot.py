"""PRAC_GPU_LIMIT: each experiment holds a slot of that Prefect global concurrency limit while it trains
(prac_lth/flows/device_slot.py), against a real Prefect server: a limit of N lets N hold the GPU at once, a limit
that does not exist is one line naming it."""
from __future__ import annotations

import threading
import time

import pytest
from prefect.client.orchestration import get_client
from tests.prefect_homes import prefect_harness

from prac.errors import UserError
from prac_lth.flows.device_slot import LIMIT_ENV, gpu_slot

HOLD_S = 3.0  # long beside acquiring a slot (milliseconds), so that holders that may overlap do


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_harness():
        yield


def _limit(name: str, slots: int) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, slots)


def _holders_at_once(count: int) -> int:
    """How many of `count` threads held a slot at the same time, at most."""
    lock, holding, most = threading.Lock(), [0], [0]

    def hold() -> None:
        with gpu_slot():
            with lock:
                holding[0] += 1
                most[0] = max(most[0], holding[0])
            time.sleep(HOLD_S)
            with lock:
                holding[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return most[0]


@pytest.mark.parametrize("slots", [1, 2])
def test_a_limit_lets_that_many_hold_the_gpu_at_once(prefect_server, monkeypatch, slots):
    _limit(f"gpu-test-{slots}", slots)
    monkeypatch.setenv(LIMIT_ENV, f"gpu-test-{slots}")
    assert _holders_at_once(3) == slots


def test_a_limit_that_does_not_exist_is_one_line(prefect_server, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, "gpu-nowhere")
    with pytest.raises(UserError) as error:
        with gpu_slot():
            pytest.fail("ran without its slot")
    assert "PRAC_GPU_LIMIT=gpu-nowhere" in str(error.value) and "prefect gcl create gpu-nowhere" in str(error.value)
    assert "\n" not in str(error.value)
