"""Prefect's temporary server as the CLI starts it (prac_lth/environment.py): on a port the kernel chose, and
a start that fails leaves no server process behind for the flow's own start to collide with."""
from __future__ import annotations

from pathlib import Path

import pytest
from prefect.server.api.server import SubprocessASGIServer

from prac_lth import environment


def _ephemeral_range() -> range:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(low, high + 1)


@pytest.fixture
def local_mode(monkeypatch, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    SubprocessASGIServer().stop()  # one an in-process flow of an earlier test left running (one per process)
    yield
    SubprocessASGIServer().stop()


def test_a_failed_start_stops_its_server_and_leaves_a_fresh_one_to_start(local_mode, monkeypatch):
    monkeypatch.setattr(environment, "START_TIMEOUT_S", 0.2)  # far shorter than the server's start
    first = SubprocessASGIServer()
    with environment.local_server_starting():
        pass
    assert first.server_process is None, "the server process of the failed start is still there"
    server = SubprocessASGIServer()
    assert server is not first and not server.running
    assert server.port in _ephemeral_range()
    server.start(timeout=120)  # the flow's client next (its timeout the CLI's: a new home is created)
    assert server.running and server.server_process.poll() is None


def test_the_server_listens_on_a_port_the_kernel_chose(local_mode):
    with environment.local_server_starting():
        pass
    server = SubprocessASGIServer()
    assert server.running and server.port in _ephemeral_range()
