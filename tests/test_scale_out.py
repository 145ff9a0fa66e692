"""The scaled-out stack, for real, on loopback (prac_lth/deployments/stack.py, the topology of docker/compose.yaml):
PostgreSQL, an MLflow tracking server on it serving the artifacts, a Prefect server on it, two process workers on
the work pool prefect.yaml names, prefect.yaml's deployments registered with `prefect deploy --all`. Two seeds go in as
`prefect deployment run prac-lth/digits`, run on the workers, and come back from the MLflow server through its
client: metrics per round, one parent run per seed, the Parquet artifacts. Then `down` stops every PID.

PostgreSQL (Debian's `postgresql`) is not on every machine: without it the test is skipped, unless
PRAC_REQUIRE_POSTGRES=1 (CI sets it) makes that a failure."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from prac_lth.deployments import postgres, processes, stack as stack_module
from prac.artifacts import read_mask, read_prac_set

pytestmark = [pytest.mark.slow, pytest.mark.needs("postgresql")]

SEEDS = (1, 2)
WORKERS = 3  # one takes a comparison's flow run, the two others its experiments
ROUNDS = 2
OVERRIDES = [f"prune.rounds={ROUNDS}", "runtime.evaluate_tickets=none"]
RUN_TIMEOUT_S = 600  # both flow runs, from submission to a final state (about 30 s here)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
PER_ROUND = ("sparsity", "test_acc", "best_val_acc", "prac_set_size", "train_iterations", "cumulative_iterations")
# One round whose training (100 epochs, no early stop: ~25 s on 2 idle cores) is long enough that a cancel or a kill
# (a few seconds) lands in it; the interrupted experiment then resumes from its epoch checkpoint.
LONG_ROUND_0 = ["prune.rounds=1", "train.epochs=100", "prac.early_stop=false", "runtime.evaluate_tickets=none"]


def _flow_run(api: str, run_id: str) -> dict:
    with urllib.request.urlopen(f"{api}/flow_runs/{run_id}", timeout=10) as response:
        return json.load(response)


def _deployment_run(stack: stack_module.Stack, seed: int, overrides: list[str] = OVERRIDES, *options: str) -> str:
    """`prefect deployment run` as a user types it; returns the flow run's id."""
    command = [sys.executable, "-m", "prefect", "deployment", "run", "prac-lth/digits", "-p", "preset=digits-smoke",
               "-p", f"seed={seed}", "-p", f"overrides={json.dumps(overrides)}", *options]
    done = subprocess.run(command, env=stack.env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)


def _worker_logs(stack: stack_module.Stack) -> dict[str, str]:
    return {name: stack.log(name).read_text(errors="replace") for name in stack.pids if "-worker-" in name}


def _ran_on(logs: dict[str, str], run_id: str) -> list[str]:
    """The workers that ran a flow run. Both workers may reach for one run: the one whose submission the server
    aborted did not run it."""
    return [name for name, log in logs.items() if f"submitting flow run '{run_id}'" in log
            and f"Aborted submission of flow run '{run_id}'" not in log]


def _post(api: str, path: str, body: dict):
    request = urllib.request.Request(f"{api}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _read_flow_runs(api: str, body: dict) -> list[dict]:
    return _post(api, "/flow_runs/filter", body)


@pytest.fixture(scope="module")
def ran():
    """The stack up in a fresh folder, both seeds' flow runs finished; everything stopped afterwards, pass or fail."""
    # Not pytest's tmp_path: under root the server runs as `postgres`, who cannot enter pytest's 0700 folders.
    folder = Path(tempfile.mkdtemp(prefix="prac-stack-"))
    folder.chmod(0o755)
    started = time.monotonic()
    try:
        # Workers ask for work every 2 s instead of 10: the second run goes to the idle worker, and sooner.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")
            env.setenv("OMP_NUM_THREADS", "1")  # one torch thread per flow run: three workers on two cores
            # A heartbeat every 30 s (Prefect's least; 180 by default): a dead worker's run Crashed after 90 s
            env.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
            # A flow run Pending for 60 s without starting is Crashed (600 s by default); a worker here starts one
            # in seconds, or in tens of seconds on a loaded machine
            env.setenv("PRAC_PENDING_S", "60")
            env.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")  # MLflow's; runs of seconds get samples
            # An experiment waits for a free worker to take its retrain as long as the test may take (the retrain
            # test expects them on other workers, however slow the machine), not 30 s
            env.setenv("PRAC_RETRAIN_WAIT_S", str(RUN_TIMEOUT_S))
            stack = stack_module.up(folder / "stack", workers=WORKERS)
        up_s = time.monotonic() - started
        run_ids = {seed: _deployment_run(stack, seed) for seed in SEEDS}
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while (runs := {seed: _flow_run(stack.prefect_api_url, rid) for seed, rid in run_ids.items()}) and \
                not all(run["state_type"] in FINAL for run in runs.values()):
            assert time.monotonic() < deadline, f"flow runs not finished in {RUN_TIMEOUT_S} s: " + \
                str({seed: run["state_type"] for seed, run in runs.items()})
            time.sleep(1)
        print(f"\nstack up in {up_s:.0f} s; both seeds ran in {time.monotonic() - started - up_s:.0f} s")
        yield stack, runs
    finally:
        stack_module.down(folder / "stack")
        shutil.rmtree(folder, ignore_errors=True)


def test_both_seeds_complete_on_the_workers(ran):
    stack, runs = ran
    logs = _worker_logs(stack)
    assert len(logs) == WORKERS
    for seed, run in runs.items():
        assert run["state_type"] == "COMPLETED", (seed, run["state"], {n: log[-3000:] for n, log in logs.items()})
        assert run["work_pool_name"] == stack.pool == stack_module.work_pool()
        assert run["parameters"]["seed"] == seed
    # Each worker takes one flow run at a time (--limit 1), so the two runs went to two workers.
    ran_on = {seed: _ran_on(logs, run["id"]) for seed, run in runs.items()}
    assert sorted(len(names) for names in ran_on.values()) == [1, 1], ran_on
    assert ran_on[SEEDS[0]] != ran_on[SEEDS[1]], ran_on


def test_metrics_and_artifacts_come_back_from_the_mlflow_server(ran, tmp_path):
    stack, _ = ran
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name("prac-lth/digits-smoke")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # uploaded through the server
    parents = [run for run in client.search_runs([experiment.experiment_id],
                                                  filter_string="tags.`prac.kind` = 'experiment'")
               if run.data.tags["prac.seed"] in {str(s) for s in SEEDS}]  # (the cancellation test's seed aside)
    assert sorted(run.data.tags["prac.seed"] for run in parents) == [str(s) for s in SEEDS]  # one parent per seed
    for run in parents:
        assert run.info.status == "FINISHED"
        run_id, fingerprint = run.info.run_id, run.data.tags["prac.fingerprint"]
        for metric in PER_ROUND:
            assert sorted(m.step for m in client.get_metric_history(run_id, metric)) == list(range(ROUNDS)), metric
        # MLflow's system metrics, under the name of the worker that ran it
        worker = run.data.tags["prac.worker"]
        assert worker.startswith("stack-worker-"), worker
        steps = [m.step for m in client.get_metric_history(run_id, f"system/{worker}/cpu_utilization_percentage")]
        assert steps and len(steps) == len(set(steps)), steps
        for r in range(ROUNDS):
            into = tmp_path / run_id / f"round_{r:02d}"
            into.mkdir(parents=True)
            mask = client.download_artifacts(run_id, f"round_{r:02d}/mask.parquet", str(into))
            prac_set = client.download_artifacts(run_id, f"round_{r:02d}/prac_set.parquet", str(into))
            table = pq.read_table(mask)
            assert table.num_rows > 0 and {"layer", "bits"} <= set(table.column_names)
            assert pq.read_table(prac_set).num_rows > 0
            # Checksums and fingerprint verified; the very bytes the worker wrote under its PRAC_OUTPUT_DIR (the
            # stack's folder), kept by the server
            assert read_mask(mask, expected_fingerprint=fingerprint).round == r
            assert read_prac_set(prac_set, expected_fingerprint=fingerprint).round == r
            written = stack.folder / "runs" / "digits-smoke" / fingerprint / f"round_{r:02d}" / "mask.parquet"
            assert Path(mask).read_bytes() == written.read_bytes()
            served = stack.folder / "mlflow-artifacts" / experiment.experiment_id / run_id / "artifacts"
            assert (served / f"round_{r:02d}" / "prac_set.parquet").read_bytes() == Path(prac_set).read_bytes()


def _query(stack: stack_module.Stack, database: str, sql: str) -> list[str]:
    command = [str(postgres.bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(stack.ports["postgres"]),
               "-U", postgres.SUPERUSER, "-d", database, "-tAc", sql]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.split()


def test_both_servers_keep_their_state_in_postgresql(ran):
    stack, runs = ran
    names = _query(stack, stack_module.DATABASES["mlflow"], "SELECT name FROM experiments")
    assert "prac-lth/digits-smoke" in names
    flow_runs = _query(stack, stack_module.DATABASES["prefect"], "SELECT id FROM flow_run")
    assert {run["id"] for run in runs.values()} <= set(flow_runs)
    assert not list((stack.folder / "prefect").glob("*.db"))  # no SQLite fallback


def _wait_final(stack: stack_module.Stack, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (run := _flow_run(stack.prefect_api_url, run_id))["state_type"] not in FINAL:
        assert time.monotonic() < deadline, f"flow run {run_id} still {run['state_type']} after {RUN_TIMEOUT_S} s"
        time.sleep(1)
    return run


def _round0_training(stack: stack_module.Stack, seed: int) -> bool:
    """Whether the seed's shared round 0 is training (its epoch checkpoint is there; another seed's is not looked
    at: one stopped earlier may have left its own)."""
    for config in (stack.folder / "runs" / "digits-smoke").glob("*/config.json"):
        written = json.loads(config.read_text())
        if written["seed"] == seed:
            return (config.parent.parent / f"round0-{written['round0_fingerprint']}" / "train.ckpt").exists()
    return False


def _compare_run(stack: stack_module.Stack, methods: list[str], seeds: list[int],
                 overrides: list[str] = OVERRIDES) -> str:
    """`prefect deployment run prac-lth-compare/digits` as a user types it; returns the flow run's id."""
    command = [sys.executable, "-m", "prefect", "deployment", "run", "prac-lth-compare/digits",
               "-p", "preset=digits-smoke", "-p", f"methods={json.dumps(methods)}", "-p", f"seeds={json.dumps(seeds)}",
               "-p", f"overrides={json.dumps(overrides)}"]
    done = subprocess.run(command, env=stack.env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)


def test_a_comparison_spreads_its_experiments_over_the_pool_and_reattaches_when_run_again(ran, tmp_path):
    """The compare deployment on the pool: each experiment a flow run of prac-lth/digits, named for what it is, on
    whichever worker is free; run again, it finds those flow runs (idempotency keys) instead of starting others."""
    stack, _ = ran
    methods, seeds = ["prac", "lt"], [4, 5]
    names = sorted(f"{m}-seed{s}" for m in methods for s in seeds)
    compare_run = _compare_run(stack, methods, seeds)
    logs = lambda: {n: log[-3000:] for n, log in _worker_logs(stack).items()}  # noqa: E731
    assert _wait_final(stack, compare_run)["state_type"] == "COMPLETED", logs()

    def experiments() -> list[dict]:
        runs = _read_flow_runs(stack.prefect_api_url, {"flow_runs": {"name": {"any_": names}}})
        return sorted(runs, key=lambda run: run["name"])

    runs = experiments()
    assert [run["name"] for run in runs] == names  # each once, named for what it is
    assert all(run["state_type"] == "COMPLETED" and run["parent_task_run_id"] for run in runs)  # linked subflows
    workers = {name: _ran_on(_worker_logs(stack), run["id"]) for name, run in zip(names, runs)}
    assert all(len(ran_on) == 1 for ran_on in workers.values()), workers
    assert len({ran_on[0] for ran_on in workers.values()}) >= 2, workers  # spread over the pool
    compare_worker = _ran_on(_worker_logs(stack), compare_run)
    assert compare_worker and all(ran_on != compare_worker for ran_on in workers.values()), (compare_worker, workers)
    # The comparison run in MLflow records where each experiment ran, as its parent run does
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name("prac-lth/digits-smoke")
    (comparison,) = client.search_runs([experiment.experiment_id], filter_string="tags.`prac.kind` = 'comparison'")
    where = pd.read_parquet(client.download_artifacts(comparison.info.run_id, "experiments.parquet", str(tmp_path)))
    recorded = {f"{m}-seed{s}": w for m, s, w in zip(where["method"], where["seed"], where["worker"])}
    assert recorded == {name: ran_on[0] for name, ran_on in workers.items()}
    for run_id in where["run_id"]:
        assert client.get_run(run_id).data.tags["prac.worker"] in recorded.values()

    # Run again: it re-attaches to the four finished flow runs and starts no other
    assert _wait_final(stack, _compare_run(stack, methods, seeds))["state_type"] == "COMPLETED", logs()
    assert [run["id"] for run in experiments()] == [run["id"] for run in runs]

    # The masks and PrAC sets of a local comparison by the engine alone, byte for byte
    from prac_lth.cli import main
    sets = [arg for item in OVERRIDES for arg in ("--set", item)]
    assert main(["compare", "digits-smoke", "--engine-only", "--methods", ",".join(methods), "--seeds",
                 ",".join(map(str, seeds)), *sets, "--output-dir", str(tmp_path)]) == 0
    local, pooled = tmp_path / "digits-smoke", stack.folder / "runs" / "digits-smoke"
    fingerprints = [p.name for p in local.iterdir() if p.is_dir() and not p.name.startswith("round0-")]
    assert len(fingerprints) == len(names)
    for fingerprint in fingerprints:
        for r in range(ROUNDS):
            for name in ("mask.parquet", "prac_set.parquet"):
                path = Path(fingerprint) / f"round_{r:02d}" / name
                assert (pooled / path).read_bytes() == (local / path).read_bytes(), path


def _descendants(pid: int) -> list[int]:
    """`pid` and every process it started, however deep (a worker starts its flow runs in groups of their own)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


@pytest.fixture(scope="module")
def a_worker_killed(ran):
    """The first half of the worker-killed test below, up to the kill: a flow run stranded Pending, and a comparison
    whose experiment's worker (worker and flow run) is SIGKILLed as it trains. Prefect's automation marks that flow
    run Crashed only three missed heartbeats later (~90 s: 30 s is Prefect's least heartbeat), so the cancellation
    test, which asks for this, runs meanwhile on the worker left free, instead of after that wait."""
    stack, _ = ran
    seed, overrides = 6, LONG_ROUND_0
    # Scheduled an hour ahead so that no live worker takes it, then Pending as a worker that took it makes it
    stranded = _deployment_run(stack, 60, OVERRIDES, "--start-in", "in 1 hour")
    _post(stack.prefect_api_url, f"/flow_runs/{stranded}/set_state", {"state": {"type": "PENDING"}, "force": True})
    pending = _flow_run(stack.prefect_api_url, stranded)["state_type"]
    compare_run = _compare_run(stack, ["prac"], [seed], overrides)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not ((runs := _read_flow_runs(stack.prefect_api_url, {"flow_runs": {"name": {"any_": [f"prac-seed{seed}"]}}}))
               and (worker := _ran_on(_worker_logs(stack), runs[0]["id"])) and _round0_training(stack, seed)):
        assert time.monotonic() < deadline, "the experiment never started training"
        time.sleep(0.2)
    (name,) = worker
    for pid in _descendants(stack.pids[name]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    return {"seed": seed, "stranded": stranded, "pending": pending, "compare_run": compare_run,
            "experiment_run": runs[0]["id"], "worker": name}


def test_a_cancelled_flow_run_marks_its_mlflow_run_killed_and_the_next_run_resumes(ran, a_worker_killed, tmp_path):
    # a_worker_killed: a worker was killed just now; this runs on the one left free while the automation waits
    stack, _ = ran
    seed, rounds, overrides = 3, 1, LONG_ROUND_0
    flow_run = _deployment_run(stack, seed, overrides)
    out, deadline = stack.folder / "runs" / "digits-smoke", time.monotonic() + RUN_TIMEOUT_S
    while not _round0_training(stack, seed):
        assert _flow_run(stack.prefect_api_url, flow_run)["state_type"] not in FINAL, "ended before its cancel"
        assert time.monotonic() < deadline, "round 0 never started"
        time.sleep(0.1)
    cancel = subprocess.run([sys.executable, "-m", "prefect", "flow-run", "cancel", flow_run], env=stack.env(),
                            capture_output=True, text=True, timeout=120)  # as a user types it
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert _wait_final(stack, flow_run)["state_type"] == "CANCELLED"
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name("prac-lth/digits-smoke")
    where = f"tags.`prac.kind` = 'experiment' and tags.`prac.seed` = '{seed}'"
    (killed,) = client.search_runs([experiment.experiment_id], filter_string=where)
    assert killed.info.status == "KILLED"  # not left RUNNING, not FAILED

    assert _wait_final(stack, _deployment_run(stack, seed, overrides))["state_type"] == "COMPLETED"
    (parent,) = client.search_runs([experiment.experiment_id], filter_string=where)
    assert parent.info.run_id == killed.info.run_id and parent.info.status == "FINISHED"
    for metric in PER_ROUND:  # every round once, the cancelled attempt's included
        assert sorted(m.step for m in client.get_metric_history(parent.info.run_id, metric)) == list(range(rounds)), metric
    # the files of an uninterrupted run of the same experiment, by the engine alone
    from prac_lth.cli import main
    sets = [arg for item in overrides for arg in ("--set", item)]
    assert main(["run", "digits-smoke", "--engine-only", "--seed", str(seed), *sets, "--output-dir",
                 str(tmp_path)]) == 0
    fingerprint = parent.data.tags["prac.fingerprint"]
    for r in range(rounds):
        for name in ("mask.parquet", "prac_set.parquet"):
            local = tmp_path / "digits-smoke" / fingerprint / f"round_{r:02d}" / name
            assert (out / fingerprint / f"round_{r:02d}" / name).read_bytes() == local.read_bytes(), (r, name)


def test_a_worker_killed_mid_experiment_and_the_comparison_run_again_resumes_it(ran, a_worker_killed):
    """The machine of the worker running an experiment dies (worker and flow run SIGKILLed): Prefect's automation
    marks the flow run Crashed once its heartbeats stop (prac_lth/deployments/zombies.py), the comparison fails
    saying so; the worker back, the comparison run again resumes that experiment from its cached stages, in its
    one MLflow parent run, every round's values once. And a worker that dies after taking a flow run (Pending)
    but before starting its process: no heartbeat will ever come, and the other automation marks it Crashed."""
    stack, _ = ran
    seed, rounds, overrides = a_worker_killed["seed"], 1, LONG_ROUND_0
    stranded, compare_run, name = a_worker_killed["stranded"], a_worker_killed["compare_run"], a_worker_killed["worker"]
    assert a_worker_killed["pending"] == "PENDING"
    # Crashed by the automation, ~90 s after the last heartbeat
    crashed = _wait_final(stack, a_worker_killed["experiment_run"])
    assert crashed["state_type"] == "CRASHED", crashed["state"]
    never_started = _wait_final(stack, stranded)  # ~60 s after it went Pending
    assert never_started["state_type"] == "CRASHED" and "Pending without starting" in never_started["state"]["message"]
    failed = _wait_final(stack, compare_run)
    assert failed["state_type"] == "FAILED" and "run the comparison again" in failed["state"]["message"], failed["state"]

    stack.start(name, stack_module.worker_command(stack.pool, name), stack.worker_env(stack.folder / "runs"))
    assert _wait_final(stack, _compare_run(stack, ["prac"], [seed], overrides))["state_type"] == "COMPLETED"
    attempts = _read_flow_runs(stack.prefect_api_url, {"flow_runs": {"name": {"any_": [f"prac-seed{seed}"]}}})
    assert sorted(run["state_type"] for run in attempts) == ["COMPLETED", "CRASHED"]
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name("prac-lth/digits-smoke")
    where = f"tags.`prac.kind` = 'experiment' and tags.`prac.seed` = '{seed}'"
    (parent,) = client.search_runs([experiment.experiment_id], filter_string=where)
    assert parent.info.status == "FINISHED"
    for metric in PER_ROUND:
        assert sorted(m.step for m in client.get_metric_history(parent.info.run_id, metric)) == list(range(rounds))


def test_ticket_retrains_go_to_other_workers_as_flow_runs_of_their_own(ran, tmp_path):
    """runtime.retrain_alongside on the pool: each round's retrain is a flow run of prac-lth-retrain/digits, named
    for what it is and linked under the experiment's, that a free worker takes while the experiment's worker goes
    on; the tickets, masks and MLflow values are those of a local run that retrains in turn."""
    stack, _ = ran
    seed, rounds = 7, 2
    in_turn = [f"prune.rounds={rounds}", "runtime.evaluate_tickets=all"]
    experiment = _wait_final(stack, _deployment_run(stack, seed, [*in_turn, "runtime.retrain_alongside=true"]))
    logs = _worker_logs(stack)
    assert experiment["state_type"] == "COMPLETED", {n: log[-3000:] for n, log in logs.items()}
    names = [f"prac-seed{seed}-retrain{r}" for r in range(rounds)]
    retrains = sorted(_read_flow_runs(stack.prefect_api_url, {"flow_runs": {"name": {"any_": names}}}),
                      key=lambda run: run["name"])
    assert [run["name"] for run in retrains] == names  # each once
    assert all(run["state_type"] == "COMPLETED" and run["parent_task_run_id"] for run in retrains), \
        [run["state"] for run in retrains]
    (experiment_worker,) = _ran_on(logs, experiment["id"])
    for run in retrains:  # on another worker than the experiment's
        ran_on = _ran_on(logs, run["id"])
        assert len(ran_on) == 1 and ran_on != [experiment_worker], (run["name"], ran_on, experiment_worker)

    client = MlflowClient(tracking_uri=stack.mlflow_url)
    experiment_id = client.get_experiment_by_name("prac-lth/digits-smoke").experiment_id
    where = f"tags.`prac.kind` = 'experiment' and tags.`prac.seed` = '{seed}'"
    (parent,) = client.search_runs([experiment_id], filter_string=where)
    for metric in (*PER_ROUND, "ticket_test_acc"):  # each round's values once, its ticket's too
        assert sorted(m.step for m in client.get_metric_history(parent.info.run_id, metric)) == list(range(rounds))
    from prac_lth.cli import main
    sets = [arg for item in in_turn for arg in ("--set", item)]
    assert main(["run", "digits-smoke", "--engine-only", "--seed", str(seed), *sets, "--output-dir",
                 str(tmp_path)]) == 0
    fingerprint = parent.data.tags["prac.fingerprint"]
    pooled, local = stack.folder / "runs" / "digits-smoke" / fingerprint, tmp_path / "digits-smoke" / fingerprint
    for r in range(rounds):
        for name in ("mask.parquet", "prac_set.parquet", "ticket.json"):
            path = Path(f"round_{r:02d}") / name
            assert (pooled / path).read_bytes() == (local / path).read_bytes(), path
    assert (pooled / "rounds.json").read_bytes() == (local / "rounds.json").read_bytes()


def test_the_fleet_benchmark_runs_on_the_stack(ran):
    """bench/fleet.py --quick on this stack (the smoke run tests/test_bench_smoke.py gives the other benchmarks):
    one comparison over 1 worker and over 2, the same masks, its ratio last; the workers left as they were."""
    stack, _ = ran
    bench = Path(__file__).resolve().parent.parent / "bench" / "fleet.py"
    done = subprocess.run([sys.executable, str(bench), "--quick", "--stack", str(stack.folder)], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"^\| 0 \| [\d.]+ \| [\d.]+ \| [\d.]+x \| True \|$", done.stdout, re.M), done.stdout
    assert re.search(r"^1 worker / 2 workers: [\d.]+x", done.stdout.strip().splitlines()[-1]), done.stdout
    assert set(stack_module.Stack.load(stack.folder).running()) >= {f"stack-worker-{i}" for i in range(1, WORKERS + 1)}


# PostgreSQL away under a comparison that runs on the pool from the command line, as an operator meets it
OUTAGE_S = 10  # a restart: the servers answer 500 and 503 meanwhile; Prefect's client rides out about 62 s of it


def _cli_compare(stack: stack_module.Stack, methods: list[str], seeds: list[int], env: dict[str, str] | None = None):
    """`prac-lth compare --pool` in a process of its own, as a user types it (its output in files)."""
    sets = [arg for item in OVERRIDES for arg in ("--set", item)]
    command = [sys.executable, "-m", "prac_lth.cli", "compare", "digits-smoke", "--pool", stack.pool, "--methods",
               ",".join(methods), "--seeds", ",".join(map(str, seeds)), *sets, "--output-dir", str(stack.folder / "runs")]
    out = stack.folder / f"compare-{'-'.join(map(str, seeds))}.{len(list(stack.folder.glob('compare-*.err')))}"
    with open(f"{out}.out", "w") as stdout, open(f"{out}.err", "w") as stderr:
        process = subprocess.Popen(command, env={**stack.env(), **(env or {})}, stdout=stdout, stderr=stderr)
    return process, Path(f"{out}.err")


def _stop_postgres_once_training(stack: stack_module.Stack, seed: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not _round0_training(stack, seed):
        assert process.poll() is None, "the comparison ended before its experiments trained"
        assert time.monotonic() < deadline, "round 0 never started"
        time.sleep(0.2)
    postgres.stop(stack_module.Stack.load(stack.folder).pids["postgres"])


def _start_postgres(stack: stack_module.Stack) -> None:
    # recorded in the stack's file as it is now (the fleet benchmark restarts workers), not in the fixture's copy
    current = stack_module.Stack.load(stack.folder)
    current.record("postgres", postgres.start(stack.folder / "postgres", stack.log("postgres"), stack.ports["postgres"]))


def _as_an_uninterrupted_run(stack: stack_module.Stack, methods: list[str], seeds: list[int], tmp_path: Path) -> None:
    """One MLflow parent run per experiment with every round's values once, and the masks and PrAC sets of a local
    comparison by the engine alone, byte for byte."""
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    experiment_id = client.get_experiment_by_name("prac-lth/digits-smoke").experiment_id
    fingerprints = []
    for method in methods:
        for seed in seeds:
            where = f"tags.`prac.kind` = 'experiment' and tags.`prac.seed` = '{seed}' and tags.`prac.method` = '{method}'"
            (parent,) = client.search_runs([experiment_id], filter_string=where)
            assert parent.info.status == "FINISHED", (method, seed)
            for metric in PER_ROUND:
                steps = sorted(m.step for m in client.get_metric_history(parent.info.run_id, metric))
                assert steps == list(range(ROUNDS)), (method, seed, metric, steps)
            fingerprints.append(parent.data.tags["prac.fingerprint"])
    from prac_lth.cli import main
    sets = [arg for item in OVERRIDES for arg in ("--set", item)]
    assert main(["compare", "digits-smoke", "--engine-only", "--methods", ",".join(methods), "--seeds",
                 ",".join(map(str, seeds)), *sets, "--output-dir", str(tmp_path)]) == 0
    for fingerprint in fingerprints:
        for r in range(ROUNDS):
            for name in ("mask.parquet", "prac_set.parquet"):
                path = Path(fingerprint) / f"round_{r:02d}" / name
                pooled, local = stack.folder / "runs" / "digits-smoke" / path, tmp_path / "digits-smoke" / path
                assert pooled.read_bytes() == local.read_bytes(), path


def test_a_database_restart_under_a_comparison_on_the_pool_is_ridden_out(ran, tmp_path):
    """PostgreSQL, behind both servers, stopped (fast shutdown) while the comparison's experiments train and
    started again OUTAGE_S later: the comparison completes, nothing on its terminal but its results, and every
    experiment is as if nothing had happened."""
    stack, _ = ran
    methods, seeds = ["prac"], [10, 11]  # two experiments at once, on two workers
    process, stderr = _cli_compare(stack, methods, seeds)
    try:
        _stop_postgres_once_training(stack, seeds[0], process)
        time.sleep(OUTAGE_S)
    finally:
        _start_postgres(stack)
    assert process.wait(timeout=RUN_TIMEOUT_S) == 0, stderr.read_text()[-5000:]
    assert "Traceback" not in stderr.read_text() and "Error logging to API" not in stderr.read_text()
    names = sorted(f"{m}-seed{s}" for m in methods for s in seeds)
    runs = _read_flow_runs(stack.prefect_api_url, {"flow_runs": {"name": {"any_": names}}})
    assert sorted(run["name"] for run in runs) == names  # each experiment one flow run: none failed and ran again
    assert all(run["state_type"] == "COMPLETED" for run in runs)
    _as_an_uninterrupted_run(stack, methods, seeds, tmp_path)


def test_a_database_away_longer_than_the_retries_ends_in_one_line_and_the_same_command_resumes(ran, tmp_path):
    """The comparison's own client set to give up after one retry (~2 s; Prefect's setting, ~62 s by default):
    PostgreSQL away longer ends it in one line naming the Prefect server and its database, exit 2; started again,
    the same command completes. (Its experiment on the worker, with the default retries, rode the outage out.)"""
    stack, _ = ran
    methods, seeds = ["prac"], [12]
    process, stderr = _cli_compare(stack, methods, seeds, {"PREFECT_CLIENT_MAX_RETRIES": "1"})
    try:
        _stop_postgres_once_training(stack, seeds[0], process)
        code = process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        _start_postgres(stack)
    text = stderr.read_text()
    assert code == 2 and "Traceback" not in text and "Error logging to API" not in text, text[-5000:]
    line = text.strip().splitlines()[-1]
    assert line.startswith(f"prac-lth: error: the Prefect server at {stack.prefect_api_url} stopped answering ("), line
    assert f"its database is away ({stack.prefect_api_url}/ready: Database is not available)" in line, line
    assert "run the same command again once it answers" in line, line
    process, stderr = _cli_compare(stack, methods, seeds)
    assert process.wait(timeout=RUN_TIMEOUT_S) == 0, stderr.read_text()[-5000:]
    _as_an_uninterrupted_run(stack, methods, seeds, tmp_path)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_down_stops_every_process_by_pid(ran):
    stack, _ = ran
    pids = dict(stack_module.Stack.load(stack.folder).pids)
    assert set(pids) == {"postgres", "mlflow", "prefect-server", *(f"stack-worker-{i}" for i in range(1, WORKERS + 1))}
    assert all(processes.alive(pid) for pid in pids.values())
    assert sorted(stack_module.down(stack.folder)) == sorted(pids.values())
    for name, pid in pids.items():
        assert not processes.alive(pid), name
        assert not processes.group(pid), (name, processes.group(pid))  # uvicorn workers, flow-run processes
    assert not any(_listening(port) for port in stack.ports.values())
    assert not (stack.folder / "postgres" / "postmaster.pid").exists()  # a clean shutdown
    assert stack_module.Stack.load(stack.folder).pids == {}
