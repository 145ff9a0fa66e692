"""The pipeline end to end, as a user runs it: `prac-lth` in subprocesses, real Prefect (local mode:
each flow run starts a temporary server; a real server for the deployment test) and a real MLflow
sqlite store. Every workspace has its own PREFECT_HOME, tracking store and output folder.

Kill and resume, re-run from cache, the MLflow contract (docs/design.md §3), fail-fast on an unreachable
tracking server, served deployments, and the comparison flow."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from prac_lth.deployments.processes import free_port
from prac_lth.tasks.dataset_inputs import indices_digest
from prac.artifacts import read_mask, read_prac_set
from tests.prefect_homes import migrated_prefect_home
from tests.test_environment import _ephemeral_range

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PRAC_LTH = str(BIN / "prac-lth")
PREFECT = str(BIN / "prefect")
PRESET = "digits-smoke"
EXPERIMENT = f"prac-lth/{PRESET}"
ROUNDS = 3
# A smaller batch makes each epoch of round 1 several times longer, so the kill test lands
# mid-round with a wide margin (an epoch is ~0.1 s at the preset's batch of 64).
PRAC_ARGS = ["run", PRESET, "--method", "prac", "--seed", "0", "--verbose", "--set", f"prune.rounds={ROUNDS}",
             "--set", "runtime.evaluate_tickets=none", "--set", "train.batch_size=16"]
ROUND_METRICS = ("sparsity", "train_iterations", "cumulative_iterations", "epochs_run", "prac_set_size",
                 "prac_set_fraction", "cet_size", "cep_size", "best_val_acc", "test_acc")
STAGES = ("train-round", "prune", "select-cet", "select-cep")
RUN_TIMEOUT_S = 400


# --------------------------------------------------------------------------------------------------
# Workspaces and processes


def _kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the process group `proc` leads (it was started with start_new_session=True), so a
    temporary Prefect server it started goes too."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Workspace:
    root: Path
    files: dict[str, bytes] | None = None  # round_NN/{mask,prac_set}.parquet after its first run

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        env.update(PREFECT_HOME=str(migrated_prefect_home(self.root / "prefect-home")), MLFLOW_TRACKING_URI=self.tracking_uri,
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONWARNINGS="ignore",
                   # One torch thread: with two on these 2-core machines, a run is 4-7x slower
                   # whenever another process is busy (OpenMP threads spin waiting for each other).
                   OMP_NUM_THREADS="1")
        env.update(extra)
        return env

    def popen(self, command: list[str], env: dict[str, str] | None = None, log: Path | None = None
              ) -> subprocess.Popen:
        """Start a process (its own process group) with stdout+stderr to a pipe, or to `log` for
        long-lived ones that nobody reads while they run (a full pipe would block them)."""
        out = subprocess.PIPE if log is None else open(log, "w")  # noqa: SIM115 - the child holds it
        try:
            return subprocess.Popen(command, cwd=self.root, env=env or self.env(), start_new_session=True,
                                    stdout=out, stderr=subprocess.STDOUT, text=True)
        finally:
            if log is not None:
                out.close()

    def run(self, *args: str, timeout: float = RUN_TIMEOUT_S, env: dict[str, str] | None = None,
            output_dir: bool = True, command: str = PRAC_LTH) -> subprocess.CompletedProcess:
        """Run a command to completion; stdout and stderr kept apart."""
        argv = [command, *args, *(["--output-dir", str(self.out)] if output_dir else [])]
        proc = subprocess.Popen(argv, cwd=self.root, env=env or self.env(), start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            pytest.fail(f"{argv} ran past {timeout} s\n{stdout}\n{stderr}")
        finally:
            _kill_group(proc)  # leftovers (a temporary Prefect server), if any
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    def run_ok(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-6000:]}"
        return result

    # Files of the experiment
    def run_dir(self) -> Path:
        """out/<preset>/<fingerprint>: the one arm folder (round0-* is the shared round 0)."""
        folders = [p for p in (self.out / PRESET).iterdir() if p.is_dir() and not p.name.startswith("round0-")]
        assert len(folders) == 1, folders
        return folders[0]

    def round_files(self) -> dict[str, bytes]:
        root = self.run_dir()
        return {f"{p.parent.name}/{p.name}": p.read_bytes()
                for name in ("mask.parquet", "prac_set.parquet") for p in sorted(root.glob(f"round_*/{name}"))}

    # MLflow
    def client(self) -> mlflow.MlflowClient:
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri)

    def experiment(self):
        experiment = self.client().get_experiment_by_name(EXPERIMENT)
        assert experiment is not None, f"no MLflow experiment {EXPERIMENT}"
        return experiment

    def runs(self, kind: str):
        return self.client().search_runs([self.experiment().experiment_id],
                                         filter_string=f"tags.`prac.kind` = '{kind}'")

    def parent_run(self, method: str = "prac"):
        runs = [r for r in self.runs("experiment") if r.data.tags.get("prac.method") == method]
        assert len(runs) == 1, f"expected one {method} parent run, got {len(runs)}"
        return runs[0]

    def steps(self, run_id: str, key: str) -> list[int]:
        return sorted(m.step for m in self.client().get_metric_history(run_id, key))


def make_workspace(tmp_path_factory, name: str) -> Workspace:
    root = tmp_path_factory.mktemp(name)
    return Workspace(root)


def assert_one_value_per_round(ws: Workspace, run_id: str, rounds: int, keys=ROUND_METRICS) -> None:
    for key in keys:
        assert ws.steps(run_id, key) == list(range(rounds)), f"metric {key}: steps {ws.steps(run_id, key)}"


def task_states(output: str) -> dict[str, str]:
    """Task run name -> the state it finished in, from Prefect's log lines."""
    return dict(re.findall(r"Task run '([\w-]+)' - Finished in state (\w+)", output))


def epoch_lines(output: str, task_run: str) -> list[tuple[int, int]]:
    return [(int(k), int(e)) for k, e in re.findall(rf"Task run '{task_run}' - epoch (\d+)/(\d+)", output)]


def file_stamps(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------------
# Shared runs


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Workspace:
    """One uninterrupted prac run (3 rounds): the reference of the kill test, the MLflow contract."""
    ws = make_workspace(tmp_path_factory, "reference")
    ws.run_ok(*PRAC_ARGS)
    ws.files = ws.round_files()
    return ws


@pytest.fixture(scope="module")
def rerun(reference: Workspace):
    """The same command again in the reference workspace: (stamps before, stamps after, its output)."""
    before = file_stamps(reference.out)
    summaries = {p: p.read_bytes() for p in reference.run_dir().rglob("round*.json")}
    result = reference.run_ok(*PRAC_ARGS)
    return before, file_stamps(reference.out), result, summaries


@pytest.fixture(scope="module")
def lt_all(tmp_path_factory) -> Workspace:
    ws = make_workspace(tmp_path_factory, "lt-all")
    ws.run_ok("run", PRESET, "--method", "lt", "--seed", "0", "--set", f"prune.rounds={ROUNDS}",
              "--set", "runtime.evaluate_tickets=all")
    return ws


# --------------------------------------------------------------------------------------------------
# 1. Kill and resume


def test_killed_run_resumes_mid_round_and_ends_identical(reference, tmp_path_factory):
    ws = make_workspace(tmp_path_factory, "killed")
    proc = ws.popen([PRAC_LTH, *PRAC_ARGS, "--output-dir", str(ws.out)])
    watchdog = threading.Timer(RUN_TIMEOUT_S, _kill_group, args=(proc,))
    watchdog.start()
    seen, kill_line = [], None
    try:
        for line in proc.stdout:
            seen.append(line)
            if re.search(r"Task run 'train-round-r01' - epoch 2/\d+", line):
                _kill_group(proc)  # SIGKILL: no cleanup at all, like a lost machine
                kill_line = line
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        _kill_group(proc)
        proc.stdout.close()
    first_output = "".join(seen)
    assert kill_line is not None, f"never saw epoch 2 of round 1:\n{first_output[-6000:]}"
    total_epochs = int(re.search(r"epoch 2/(\d+)", kill_line).group(1))
    assert total_epochs > 2, "round 1 must have epochs left after epoch 2 for a mid-round kill"

    round1 = ws.run_dir() / "round_01"
    assert (round1 / "train.ckpt").exists(), "the epoch checkpoint of round 1 should be there after the kill"
    assert not (round1 / "train.pt").exists(), "round 1 finished before the kill: not a mid-round kill"
    assert (ws.run_dir() / "round_00" / "mask.parquet").exists()

    result = ws.run_ok(*PRAC_ARGS)
    output = result.stdout + result.stderr

    # Stages finished before the kill come back from the cache; the interrupted round resumes.
    states = task_states(output)
    for name in ("prepare-run", "dense-predictions", "train-round-r00", "select-cet-r00", "prune-r00",
                 "select-cep-r00"):
        matches = [s for task, s in states.items() if task == name or task.startswith(name + "-")]
        assert matches == ["Cached"], f"{name}: {matches}\n{output[-6000:]}"
    assert states.get("train-round-r01") == "Completed", states
    resumed = re.search(r"Task run 'train-round-r01' - resumed from (\S+) after epoch (\d+)/(\d+)", output)
    assert resumed, f"no resume line for round 1:\n{output[-6000:]}"
    assert Path(resumed.group(1)) == round1 / "train.ckpt"
    done, total = int(resumed.group(2)), int(resumed.group(3))
    assert 2 <= done < total == total_epochs, resumed.group(0)
    assert [k for k, _ in epoch_lines(output, "train-round-r01")] == list(range(done + 1, total + 1)), \
        "the resumed round must go on from the checkpoint, not start again"
    assert epoch_lines(output, "train-round-r00") == [], "round 0 must not train again"

    # Bit-identical to the uninterrupted run.
    assert ws.run_dir().name == reference.run_dir().name
    files = ws.round_files()
    assert sorted(files) == sorted(reference.files) and len(files) == 2 * ROUNDS, sorted(files)
    for name, data in files.items():
        assert data == reference.files[name], f"{name} differs from the uninterrupted run"

    # MLflow: one parent run, one value per round and metric, finished.
    parent = ws.parent_run()
    assert len(ws.runs("experiment")) == 1
    assert ws.client().get_run(parent.info.run_id).info.status == "FINISHED"
    assert_one_value_per_round(ws, parent.info.run_id, ROUNDS)


# --------------------------------------------------------------------------------------------------
# 2. Re-running a finished experiment


def test_rerun_completes_from_cache_without_training(reference, rerun):
    before, after, result, summaries = rerun
    output = result.stdout + result.stderr
    states = task_states(output)
    for r in range(ROUNDS):
        for stage in STAGES:
            assert states.get(f"{stage}-r{r:02d}") == "Cached", (f"{stage}-r{r:02d}", states)
    assert not re.search(r" - epoch \d+/\d+", output), "an epoch was trained on re-run"
    assert "resumed from" not in output
    # Stage outputs are untouched; the round summaries (round.json, rounds.json) may be rewritten,
    # but with the same content.
    stage_files = {k: v for k, v in before.items() if not k.endswith(("round.json", "rounds.json"))}
    assert stage_files, "no files before the re-run?"
    changed = [k for k, v in stage_files.items() if after.get(k) != v]
    assert not changed, f"files rewritten by a cached re-run: {changed}"
    assert set(after) == set(before), set(after) ^ set(before)
    for path, data in summaries.items():
        assert path.read_bytes() == data, f"{path} changed on re-run"
    assert reference.round_files() == reference.files

    parent = reference.parent_run()
    assert len(reference.runs("experiment")) == 1
    assert reference.client().get_run(parent.info.run_id).info.status == "FINISHED"
    assert_one_value_per_round(reference, parent.info.run_id, ROUNDS)
    children = reference.runs("round")
    assert len(children) == ROUNDS, "a re-run must find its round runs again, not add new ones"
    for child in children:
        history = reference.client().get_metric_history(child.info.run_id, "train_loss")
        steps = [m.step for m in history]
        assert len(steps) == len(set(steps)), f"per-epoch values logged twice in {child.info.run_name}"



def test_local_server_listens_on_a_port_the_kernel_chose(rerun):
    """Prefect alone draws its temporary server's port from 8000-8999 and binds it seconds later; two runs
    starting together could share one (prac_lth/environment.py). The CLI asks the kernel instead."""
    output = rerun[2].stderr
    found = re.search(r"(?:Starting|Stopping) temporary server on http://127\.0\.0\.1:(\d+)", output)
    assert found, output[-3000:]
    assert int(found.group(1)) in _ephemeral_range(), (found.group(0), _ephemeral_range())

# --------------------------------------------------------------------------------------------------
# 3. The MLflow contract


def test_mlflow_contract(reference, tmp_path):
    ws, client = reference, reference.client()
    experiment = ws.experiment()
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"

    parent = ws.parent_run()
    tags, params = parent.data.tags, parent.data.params
    assert tags["prac.method"] == "prac" and tags["prac.seed"] == "0"
    assert tags["prac.fingerprint"] == ws.run_dir().name
    assert params["train.lr"] == "0.05" and params["prune.rate"] == "0.2"
    assert params["prune.rounds"] == str(ROUNDS) and params["train.batch_size"] == "16"
    assert params["method"] == "prac" and params["data.dataset"] == "digits"
    assert_one_value_per_round(ws, parent.info.run_id, ROUNDS)
    history = {key: {m.step: m.value for m in client.get_metric_history(parent.info.run_id, key)}
               for key in ("sparsity", "epochs_run")}
    # digits-smoke's Conv-2 at its LTH rates (conv 10 %, hidden linear 20 %, output 10 %): 18.9 % of all weights
    assert history["sparsity"][0] == pytest.approx(0.189, abs=0.001)
    assert history["sparsity"][0] < history["sparsity"][1] < history["sparsity"][2]

    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(int(c.data.tags["prac.round"]) for c in children) == list(range(ROUNDS))
    for child in children:
        r = int(child.data.tags["prac.round"])
        epochs = int(history["epochs_run"][r])
        for key in ("train_loss", "train_acc", "val_acc", "lr"):
            steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
            assert sorted(steps) == list(range(epochs)), (r, key, steps)

    for r in range(ROUNDS):
        listed = {f.path for f in client.list_artifacts(parent.info.run_id, f"round_{r:02d}")}
        assert {f"round_{r:02d}/mask.parquet", f"round_{r:02d}/prac_set.parquet"} <= listed, listed
    local = Path(client.download_artifacts(parent.info.run_id, "round_00", str(tmp_path)))
    mask = read_mask(local / "mask.parquet", expected_fingerprint=tags["prac.fingerprint"])
    prac_set = read_prac_set(local / "prac_set.parquet", expected_fingerprint=tags["prac.fingerprint"])
    assert mask.mask and len(prac_set.prac_set.index) > 0
    assert (local / "mask.parquet").read_bytes() == reference.files["round_00/mask.parquet"]
    assert (local / "prac_set.parquet").read_bytes() == reference.files["round_00/prac_set.parquet"]

    # Each round's training samples as the run's dataset input, once each; the digest names the set of samples
    inputs = sorted(parent.inputs.dataset_inputs, key=lambda i: i.dataset.name)
    assert [i.dataset.name for i in inputs] == [f"round_{r:02d}" for r in range(ROUNDS)]
    digests = []
    for r, logged in enumerate(inputs):
        prac_set = read_prac_set(ws.run_dir() / f"round_{r:02d}" / "prac_set.parquet").prac_set
        trained = prac_set.index[prac_set.trained]
        assert logged.dataset.digest == indices_digest(trained[::-1]), r  # any order, one digest
        assert json.loads(logged.dataset.profile)["num_rows"] == len(trained)
        assert {t.key: t.value for t in logged.tags}["mlflow.data.context"] == "train"
        digests.append(logged.dataset.digest)
    assert digests[0] == indices_digest(prac_set.index)  # round 0 trained on all of D0


def test_lt_with_every_ticket_evaluated_logs_one_ticket_accuracy_per_round(lt_all):
    parent = lt_all.parent_run("lt")
    assert parent.data.tags["prac.method"] == "lt"
    assert lt_all.steps(parent.info.run_id, "ticket_test_acc") == list(range(ROUNDS))
    assert lt_all.steps(parent.info.run_id, "ticket_best_val_acc") == list(range(ROUNDS))
    assert_one_value_per_round(lt_all, parent.info.run_id, ROUNDS)
    assert lt_all.client().get_run(parent.info.run_id).info.status == "FINISHED"
    # every round's trained ticket a model, once, with the accuracy its ticket.json records: rounds 0 and 1 logged
    # when the next round has trained (their tickets known late), round 2 when its retrain ended
    models = lt_all.client().search_logged_models([parent.info.experiment_id],
                                                  filter_string=f"source_run_id = '{parent.info.run_id}'")
    trained = {m.name: m for m in models if m.tags["prac.kind"] == "trained-ticket"}
    assert sorted(trained) == [f"ticket-r{r:02d}" for r in range(ROUNDS)]
    assert sorted(m.name for m in models if m.tags["prac.kind"] == "ticket-init") == [
        f"ticket-init-r{r:02d}" for r in range(ROUNDS)]
    for r in range(ROUNDS):
        recorded = json.loads((lt_all.run_dir() / f"round_{r:02d}" / "ticket.json").read_text())
        assert {m.key: m.value for m in trained[f"ticket-r{r:02d}"].metrics
                if m.key not in ("sparsity", "ticket_bytes")} == {
            k: recorded[k] for k in ("ticket_test_acc", "ticket_best_val_acc")}


# --------------------------------------------------------------------------------------------------
# 4. Unreachable tracking server


def test_unreachable_tracking_server_fails_fast_with_one_line(tmp_path_factory):
    ws = make_workspace(tmp_path_factory, "unreachable")
    started = time.monotonic()
    result = ws.run("run", PRESET, "--set", "prune.rounds=3", timeout=120,
                    env=ws.env(MLFLOW_TRACKING_URI="http://127.0.0.1:9"))
    elapsed = time.monotonic() - started
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("prac-lth: error:"), result.stderr
    assert "127.0.0.1:9" in lines[0]
    assert elapsed < 60, f"took {elapsed:.0f} s to give up"  # generous: the machine may be loaded
    assert not list(ws.root.rglob("round_00")), "nothing may be trained"
    assert not list(ws.root.rglob("train.pt"))


# --------------------------------------------------------------------------------------------------
# 5. Served deployments


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, json.loads(response.read() or b"null")


def _post(url: str, payload: dict, timeout: float = 10.0):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_for(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what}: process ended with {proc.returncode}:\n{log.read_text()[-6000:]}")
        try:  # the status alone: health bodies differ (Prefect's is JSON, MLflow's the text OK)
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{what}: {url} not ready after {timeout} s")


def _stop(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc)  # leftovers of the group
    proc.wait(timeout=30)


def test_served_deployment_end_to_end(tmp_path_factory):
    ws = make_workspace(tmp_path_factory, "deployment")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    client_env = ws.env(PREFECT_API_URL=api, PREFECT_RUNNER_POLL_FREQUENCY="1")
    server = serve = None
    server_log, serve_log = ws.root / "server.log", ws.root / "serve.log"
    try:
        server = ws.popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], log=server_log)
        _wait_for(f"{api}/health", server, server_log, "prefect server")
        serve = ws.popen([PRAC_LTH, "serve"], env=client_env, log=serve_log)
        _wait_for(f"{api}/deployments/name/prac-lth/digits", serve, serve_log, "prac-lth serve")

        params = {"preset": PRESET, "method": "prac",
                  "overrides": ["prune.rounds=2", "runtime.evaluate_tickets=none", f"runtime.output_dir={ws.out}"]}
        result = ws.run("deployment", "run", "prac-lth/digits", "--params", json.dumps(params), "--watch",
                        "--watch-timeout", str(RUN_TIMEOUT_S - 60), command=PREFECT, env=client_env,
                        output_dir=False)
        assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        assert "Completed" in result.stdout

        parent = ws.parent_run()
        assert ws.client().get_run(parent.info.run_id).info.status == "FINISHED"
        assert_one_value_per_round(ws, parent.info.run_id, 2)
        local = Path(ws.client().download_artifacts(parent.info.run_id, "round_01", str(ws.root / "download")))
        read_mask(local / "mask.parquet", expected_fingerprint=parent.data.tags["prac.fingerprint"])
        read_prac_set(local / "prac_set.parquet", expected_fingerprint=parent.data.tags["prac.fingerprint"])
        assert (ws.out / PRESET / parent.data.tags["prac.fingerprint"] / "round_01" / "mask.parquet").exists()

        # prac-lth-compare/digits, two experiments at once: as processes of the serving worker, reporting to
        # the same server; the comparison run logged, each experiment one parent run.
        params = {"preset": PRESET, "methods": ["prac", "lt"], "seeds": [1], "parallel": 2,
                  "overrides": ["prune.rounds=2", "runtime.evaluate_tickets=last", f"runtime.output_dir={ws.out}"]}
        result = ws.run("deployment", "run", "prac-lth-compare/digits", "--params", json.dumps(params), "--watch",
                        "--watch-timeout", str(RUN_TIMEOUT_S - 60), command=PREFECT, env=client_env,
                        output_dir=False)
        assert result.returncode == 0 and "Completed" in result.stdout, f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        (comparison,) = ws.runs("comparison")
        assert comparison.info.status == "FINISHED" and comparison.data.params["seeds"] == "1"
        seeds = [r.data.tags["prac.seed"] for r in ws.runs("experiment") if r.data.tags["prac.seed"] == "1"]
        assert sorted(seeds) == ["1", "1"]
        flow_names = {f["id"]: f["name"] for f in _post(f"{api}/flows/filter", {})}
        runs = [flow_names[r["flow_id"]] for r in _post(f"{api}/flow_runs/filter", {})]
        assert runs.count("prac-lth-compare") == 1 and runs.count("prac-lth") == 3  # the subflows on this server

        # A preset of another dataset on prac-lth/digits: the flow refuses it, naming the mismatch.
        result = ws.run("deployment", "run", "prac-lth/digits", "--params", json.dumps({"preset": "fashion-lenet"}),
                        "--watch", "--watch-timeout", "240", command=PREFECT, env=client_env, output_dir=False)
        assert result.returncode != 0 and "Failed" in result.stdout, result.stdout[-4000:]
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", result.stdout).group(1)
        state = _get(f"{api}/flow_runs/{flow_run_id}")[1]["state"]
        assert state["type"] == "FAILED"
        for fragment in ("fashion-lenet", "fashion-mnist", "digits"):
            assert fragment in state["message"], state["message"]
    finally:
        _stop(serve)  # the serving process first: stopping the server first leaves it hung
        _stop(server)
    # The first (good) run logged no traceback in the serving process.
    serve_output = serve_log.read_text()
    assert "Traceback" not in serve_output.split("fashion-lenet")[0], serve_output[-6000:]
