"""Several experiments at once: the order (prac.imp.concurrency: arms sharing round 0 never train it side by side)
and the engine's process pool giving the same files as one experiment after another."""
from __future__ import annotations

from concurrent.futures import Future

import pytest

from prac.imp.concurrency import round0_first, sharing_cores
from prac.hardware.device import usable_cores
from prac.layout.fingerprint import fingerprint
from prac.experiment import compare_in_process
from prac.layout.fingerprint import round0_fingerprint
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.layout.run_paths import run_paths


def config_of(method: str, seed: int, output_dir, *items: str):
    return apply_overrides(preset_config("digits-smoke"), [f"method={method}", f"seed={seed}", "runtime.threads=1",
                                                          f"runtime.output_dir={output_dir}", *items])


def test_one_arm_per_shared_round0_runs_first_and_the_groups_side_by_side(tmp_path):
    configs = [config_of(m, s, tmp_path) for s in (0, 1) for m in ("prac", "lt", "random-subset")]
    configs.append(config_of("lt", 2, tmp_path, "prune.rate=0.3"))  # another round 0: a group of its own
    events: list[tuple[str, str, int]] = []
    running: list[Future] = []

    def submit(config):
        events.append(("start", config.method, config.seed))
        future = Future()
        future.config = config
        running.append(future)
        return future

    def first_done(futures):
        future = next(f for f in running if f in futures)  # the oldest still running ends first
        running.remove(future)
        future.set_result(None)
        events.append(("end", future.config.method, future.config.seed))
        return future

    finished = [(c.method, c.seed) for c, _ in round0_first(configs, submit, first_done)]
    assert sorted(finished) == sorted((c.method, c.seed) for c in configs)
    # Each group's first arm starts before anything ends; a group's other arms start only after it ended.
    assert events[:3] == [("start", "prac", 0), ("start", "prac", 1), ("start", "lt", 2)]
    for config in configs:
        group = [c for c in configs if round0_fingerprint(c) == round0_fingerprint(config)]
        if config is not group[0]:
            start = events.index(("start", config.method, config.seed))
            assert events.index(("end", group[0].method, group[0].seed)) < start


@pytest.mark.slow
def test_the_engine_runs_experiments_at_once_with_the_same_files(tmp_path):
    def run(folder, parallel):
        configs = [config_of(m, s, tmp_path / folder, "prune.rounds=2") for s in (0, 1) for m in ("prac", "lt")]
        rows = compare_in_process(configs, log=lambda line: None, parallel=parallel)
        files = {(c.method, c.seed, r): (run_paths(c).round(r) / name).read_bytes()
                 for c in configs for r in range(2) for name in ("mask.parquet", "prac_set.parquet")}
        return rows, files

    one_by_one, two_at_once = run("sequential", 1), run("parallel", 2)
    assert [(r["method"], r["seed"], r["round"]) for r in two_at_once[0]] == [
        (r["method"], r["seed"], r["round"]) for r in one_by_one[0]]
    assert two_at_once[1] == one_by_one[1]  # byte-identical masks and PrAC sets
    assert [r["ticket_test_acc"] for r in two_at_once[0]] == [r["ticket_test_acc"] for r in one_by_one[0]]


def test_experiments_side_by_side_share_the_cores_instead_of_each_taking_all(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    unset = apply_overrides(preset_config("digits-smoke"), [f"runtime.output_dir={tmp_path}"])
    pinned = apply_overrides(unset, ["runtime.threads=3"])
    shared = sharing_cores([unset, pinned], 2)
    assert shared[0].runtime.threads == max(1, usable_cores() // 2)
    assert shared[1].runtime.threads == 3  # what the user set stands
    assert fingerprint(shared[0]) == fingerprint(unset)  # where it runs, not what it computes
    assert sharing_cores([unset], 1)[0].runtime.threads is None  # alone: torch's threads as configured
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert sharing_cores([unset], 2)[0].runtime.threads is None  # the environment chose
