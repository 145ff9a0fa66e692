"""Smoke runs of the benchmarks (bench/*.py --quick: a few batches each): they run, exit 0, and end
with their ratio line. The figures of a smoke run mean nothing; the benchmarks proper are run by hand."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prefect_homes import migrated_prefect_home

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench"
RATIO = re.compile(r"\d+(\.\d+)?(x|%)")  # e.g. "5.12x" or "12.3%"


# One torch thread: on 2 shared cores, two threads are slowed down many times by any busy neighbour.
QUICK_ARGS = {
    # throughput: its smoke run is step 3 of gpu_check.sh --cpu-smoke (test_gpu_check_runs_its_steps_on_the_cpu)
    "subset_costs": ["--threads", "1"],
    "machine_fraction": ["--threads", "1"],
    "memory": [],  # prac-lth run digits-smoke, 1 and 2 rounds of 1 epoch (it sets its own threads)
    "orchestration": ["--threads", "1"],  # digits-smoke, 1-epoch rounds, through the flow (temporary Prefect server) and alone
    "parallel": [],  # digits-smoke prac,lt seed 0, 1 round of 1 epoch, one pair: the engine one after another and 2 at once
    "host_memory": ["--threads", "1"],  # fresh processes, each arm once, one batch of 128 images, 1 epoch
    "rss_trace": [],  # digits-smoke, 2 rounds, in-process (the test run's OMP_NUM_THREADS=1)
    "retrain_alongside": [],  # digits-smoke, 2 rounds of 1 epoch, one pair: in turn and alongside, engine alone
    "panel_hours": [],  # arithmetic on a measured rate: no training
    # stacked (K tickets at once): its smoke run, --quick --threads 1, is step 5 of gpu_check.sh --cpu-smoke
    # gpu_share (1 and 2 processes sharing the device): its smoke run, --device cpu --quick, is step 4 of
    # gpu_check.sh --cpu-smoke (test_gpu_check_runs_its_steps_on_the_cpu)
    # inference (dense, masked-dense and the exported sparse module per sparsity): its --quick runs are in-process
    # in tests/test_bench_inference.py
    # fleet (a comparison over a pool of 1 and of 2 workers): its smoke run uses the stack of tests/test_scale_out.py
}


@pytest.mark.parametrize("name", sorted(QUICK_ARGS))
def test_benchmark_quick_run(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(PREFECT_HOME=str(migrated_prefect_home(tmp_path / "prefect-home")), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--quick", *QUICK_ARGS[name]],
                          capture_output=True, text=True, timeout=900, cwd=BENCH.parent, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert RATIO.search(last), f"last line holds no ratio: {last!r}"


def test_gpu_check_runs_its_steps_on_the_cpu(tmp_path):
    """bench/gpu_check.sh --cpu-smoke: the GPU check's own steps (test suite selection, data files, one
    experiment per method through the CLI, the throughput benchmark with 2 and 8 workers, the sharing benchmark) run on
    the CPU."""
    out = tmp_path / "check"
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--cpu-smoke", str(out)], capture_output=True,
                          text=True, timeout=900, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "gpu_check.log").read_text()
    assert proc.stdout == log  # everything printed is in the log too
    for line in ("=== 1. GPU test suite", "=== 2. cifar10-resnet20", "=== 3. throughput on cpu",
                 "=== 4. experiments sharing the cpu", "=== 5. tickets stacked on the cpu",
                 "=== 6. runtime.compile on cpu", "=== done"):
        assert line in log
    for method in ("prac", "lt", "random"):
        assert re.search(rf"^{method}: \d+ s$", log, re.MULTILINE)
    assert (out / "cifar" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert "baseline, 2 workers img/s" in log and "baseline, 8 workers img/s" in log and "reference loop img/s" in log
    assert "ours eager img/s" in log and "ours float32 img/s" in log
    assert re.search(r"^\d at once: [\d,]+ img/s, \d+\.\d+x 1 at once", log, re.MULTILINE)  # bench/gpu_share.py (the best)
    assert re.search(r"^ResNet-20, CIFAR-shaped: \d+\.\d+x one ticket's images/s with K=\d+", log, re.MULTILINE)  # stacked
