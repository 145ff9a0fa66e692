"""Faults a production run survives, each end to end with the real CLI in subprocesses (tests/fault_runs.py):

a. SIGKILLs at 6 seeded random moments of an experiment, one in each of 6 slices of its time: 3 of the start-up
   (the MLflow store being created, Prefect's temporary server starting), 3 of the whole run, imports to exit.
   Every run, re-run, ends as an uninterrupted run did.
b. The MLflow tracking server killed in the middle of an experiment: the run stops within seconds with one line
   (exit 2); once the server is back, the same command completes, nothing lost or logged twice.
c. Four experiments at once into one new SQLite store, and one experiment started twice at the same moment:
   all complete, one parent run each, every round's values once (one set of five processes for both tests).
d. The output folder's disk fills mid-experiment (a real 4 MB tmpfs): one line naming the file, its folder and
   the free space, exit 2, no partial file under a final name; given room, the same command completes.
e. Ctrl-C (SIGINT) while round 0 trains, SIGTERM once the resumed run's flow has begun: one line each, exit 130 or
   143, the MLflow parent run KILLED; the same command resumes to the uninterrupted run's files and values, in that
   one parent run. (The CLI is started as from a terminal: a background job's SIGINT is ignored, fault_runs.py.)
   These runs go beside the uninterrupted reference run, loading the machine as a kill trial's neighbour does.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from prac.artifacts import load_torch

from prac_lth.deployments.processes import free_port
from tests.fault_runs import (EXPERIMENT, MLFLOW, RUN_TIMEOUT_S, Space, artifacts, check_one_value_per_round,
                              experiment_args, kill_group, parent_runs, round_values, stop, wait_for_health)

pytestmark = pytest.mark.slow

ROUNDS = 2
ARGS = experiment_args("prac", 0, ROUNDS)
AT_ONCE = 2  # kill trials side by side (2 cores)


@dataclass
class Reference:
    """The uninterrupted run: how long it took, when its store appeared and its flow began (seconds after
    its start; beside another CLI process, as the kill test's trials run), what it left."""

    duration: float
    store_at: float
    flow_at: float
    fingerprint: str
    files: dict
    values: dict
    stopped: Future  # test e.'s runs (_stopped_runs), which ran beside it


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    """The uninterrupted run, timed under the load the kill test's trials (AT_ONCE) run under: beside it, each
    in its own folders, test e.'s three runs one after another (rather than a second copy of it, which only
    loaded the machine; test_one_experiment_started_twice_at_once compares another uninterrupted run with it)."""
    root = tmp_path_factory.mktemp("reference")
    space, stopped_space = Space.new(root / "run"), Space.new(root / "stopped")
    for s in (space, stopped_space):
        s.env()  # PREFECT_HOMEs copied before the clock starts (the first copy builds the template: ~15 s)
    store_at = flow_at = ended = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        start = time.monotonic()
        proc = space.start(ARGS, "run")
        stopped = pool.submit(_stopped_runs, stopped_space)
        try:
            while ended is None and time.monotonic() - start < RUN_TIMEOUT_S:
                now = time.monotonic() - start
                if proc.poll() is not None:
                    ended = now
                if store_at is None and space.store.exists():
                    store_at = now
                if flow_at is None and "Beginning flow run" in (space.root / "run.err").read_text():
                    flow_at = now
                time.sleep(0.05)
        finally:
            rc, out, err = space.finish(proc, "run", timeout=60)
            # the trials start once test e.'s runs are over (the pool's exit waits for them)
    assert rc == 0, f"{space.root}: exit {rc}\n{out[-2000:]}\n{err[-6000:]}"
    assert store_at is not None and flow_at is not None and ended is not None, (store_at, flow_at, ended)
    (fingerprint, run_dir), = space.run_dirs().items()
    (parent,) = parent_runs(space.client(), fingerprint)
    values = round_values(space.client(), parent.info.run_id)
    assert not check_one_value_per_round(values, ROUNDS)
    return Reference(ended, store_at, flow_at, fingerprint, artifacts(run_dir), values, stopped)


# --------------------------------------------------------------------------------------------------
# a. Killed at random moments, re-run

KILLS = 6
EARLY = 3  # of them drawn where the store is created and Prefect's server starts


def stratified(rng: np.random.Generator, start: float, end: float, count: int) -> list[float]:
    """One moment drawn in each of `count` equal slices of [start, end): every phase gets its kill, where as
    many uniform draws leave gaps (20 of them were needed to reach the short phases as often)."""
    edges = np.linspace(start, end, count + 1)
    return [float(m) for m in rng.uniform(edges[:-1], edges[1:])]


@dataclass
class Trial:
    index: int
    moment: float
    phase: str = ""
    problems: list[str] = field(default_factory=list)


def _phase(space: Space, ended: bool) -> str:
    """Where the kill landed, from what the killed run printed and left."""
    err = space.read("killed")[1]
    if ended:
        return "finished before the kill"
    if "round 1:" in err:
        return "after the last round (logging, finishing)"
    if "round 0:" in err:
        return "round 1"
    if "Beginning flow run" in err:
        return "flow start, round 0"
    if list(space.root.glob(f".{space.store.name}.creating-*")):
        return "creating the MLflow store"
    if space.store.exists():
        return "store made, Prefect server / flow starting"
    return "starting (imports, data)"


def _trial(root: Path, reference: Reference, trial: Trial) -> Trial:
    # Its own output folder, store and PREFECT_HOME; the early kills' home empty, so that Prefect's server
    # creates its database as a user's first run does (the others copy one, tests/prefect_homes.py).
    space = Space.new(root / f"kill-{trial.index:02d}", new_prefect_home=trial.index < EARLY)
    proc = space.start(ARGS, "killed")
    try:
        proc.wait(timeout=trial.moment)
        ended = True
    except subprocess.TimeoutExpired:  # the moment came
        kill_group(proc)  # SIGKILL: no cleanup at all, like a lost machine
        ended = False
    proc.wait(timeout=60)
    trial.phase = _phase(space, ended)
    rc, out, err = space.run(ARGS, "resumed")
    where = f"kill {trial.index} at {trial.moment:.1f} s ({trial.phase}), {space.root}"
    if rc != 0:
        trial.problems.append(f"{where}: re-run exit {rc}\n{err[-3000:]}")
        return trial
    if "Traceback" in out + err:
        trial.problems.append(f"{where}: a traceback in the re-run\n{err[-3000:]}")
    dirs = space.run_dirs()
    if list(dirs) != [reference.fingerprint]:
        trial.problems.append(f"{where}: run folders {list(dirs)}")
        return trial
    files = artifacts(dirs[reference.fingerprint])
    if files != reference.files:
        differ = sorted(k for k in set(files) | set(reference.files) if files.get(k) != reference.files.get(k))
        trial.problems.append(f"{where}: masks or PrAC sets differ from the uninterrupted run's: {differ}")
    parents = parent_runs(space.client(), reference.fingerprint)
    if len(parents) != 1:
        trial.problems.append(f"{where}: {len(parents)} parent runs")
        return trial
    if parents[0].info.status != "FINISHED":
        trial.problems.append(f"{where}: parent run {parents[0].info.status}")
    values = round_values(space.client(), parents[0].info.run_id)
    trial.problems += [f"{where}: {line}" for line in check_one_value_per_round(values, ROUNDS)]
    if not trial.problems and values != reference.values:
        trial.problems.append(f"{where}: values differ from the uninterrupted run's: {values} != {reference.values}")
    return trial


def test_killed_at_random_moments_every_rerun_ends_as_the_uninterrupted_run(reference, tmp_path):
    rng = np.random.default_rng(0)
    early = stratified(rng, max(0.0, reference.store_at - 4.0), reference.flow_at, EARLY)
    anywhere = stratified(rng, 0.0, reference.duration, KILLS - EARLY)
    trials = [Trial(i, moment) for i, moment in enumerate([*early, *anywhere])]
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        done = list(pool.map(lambda t: _trial(tmp_path, reference, t), trials))
    phases: dict[str, int] = {}
    for trial in done:
        phases[trial.phase] = phases.get(trial.phase, 0) + 1
    summary = (f"reference {reference.duration:.1f} s (store at {reference.store_at:.1f} s, flow at "
               f"{reference.flow_at:.1f} s); kills by phase: {phases}")
    print(summary)
    problems = [p for trial in done for p in trial.problems]
    assert not problems, summary + "\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------------------
# b. The tracking server gone in the middle of an experiment


def _mlflow_server(root: Path, port: int, space: Space):
    """`mlflow server` on a SQLite backend and a local artifact folder, its log appended to server.log."""
    log = root / "server.log"
    with open(log, "a") as out:
        proc = subprocess.Popen([MLFLOW, "server", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
                                 "--artifacts-destination", str(root / "mlartifacts"), "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"],
                                # no job runner and its 4 consumers (GenAI jobs): 5 fewer processes to start
                                cwd=root, env=space.env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
                                start_new_session=True, stdout=out, stderr=out)
    wait_for_health(f"http://127.0.0.1:{port}/health", proc, log)
    return proc


def test_tracking_server_killed_mid_experiment_stops_in_one_line_and_the_rerun_completes(tmp_path):
    rounds = 3
    args = experiment_args("prac", 0, rounds)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    space = Space.new(tmp_path / "client", tracking_uri=uri)
    server = proc = None
    try:
        server = _mlflow_server(tmp_path, port, space)
        # One retry, no backoff: the one-line stop, not MLflow's waits, is what this run shows (the defaults'
        # ~15 s are tests/test_tracking.py's); the run after it keeps the defaults.
        proc = space.start(args, "cut", MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0")
        err_file = space.root / "cut.err"
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if "Task run 'log-round-r00' - Finished" in err_file.read_text():
                kill_group(server)  # round 0 logged; rounds 1 and 2 to go
                server.wait(timeout=60)
                break
            time.sleep(0.1)
        killed_at = time.monotonic()
        assert server.poll() is not None, f"the run ended before round 0 was logged:\n{err_file.read_text()[-4000:]}"
        rc, out, err = space.finish(proc, "cut", timeout=300)
        stopped_after = time.monotonic() - killed_at
        print(f"the run stopped {stopped_after:.1f} s after its tracking server was killed")
        assert rc == 2, f"exit {rc}\n{out[-2000:]}\n{err[-6000:]}"
        assert "Traceback" not in out + err, err[-6000:]
        errors = [line for line in err.splitlines() if line.startswith("prac-lth: error:")]
        assert len(errors) == 1 and f"MLflow tracking server {uri} stopped answering" in errors[0], err[-3000:]
        # nothing else waits on the dead server (generous here: the machine may be loaded)
        assert stopped_after < 150, f"stopped {stopped_after:.0f} s after the server died"
        assert not list((space.out).rglob("round_02/mask.parquet")), "the run went on without its server"

        server = _mlflow_server(tmp_path, port, space)  # back: same backend store, same port
        space.run_ok(args, "again")
        client = space.client()
        (fingerprint,) = space.run_dirs()
        parents = parent_runs(client, fingerprint)
        assert len(parents) == 1, [p.info.run_id for p in parents]
        parent = parents[0]
        assert client.get_run(parent.info.run_id).info.status == "FINISHED"
        assert not check_one_value_per_round(round_values(client, parent.info.run_id), rounds)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        children = client.search_runs([experiment.experiment_id],
                                      filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        assert sorted(int(c.data.tags["prac.round"]) for c in children) == list(range(rounds))
        models = client.search_logged_models([experiment.experiment_id],
                                             filter_string=f"source_run_id = '{parent.info.run_id}'")
        assert sorted((m.name, str(m.status)) for m in models) == [  # evaluate_tickets=none: no trained ticket
            (f"ticket-init-r{r:02d}", "READY") for r in range(rounds)], [(m.name, m.status) for m in models]
        for r in range(rounds):
            listed = {f.path for f in client.list_artifacts(parent.info.run_id, f"round_{r:02d}")}
            assert {f"round_{r:02d}/mask.parquet", f"round_{r:02d}/prac_set.parquet"} <= listed, listed
    finally:
        if proc is not None:
            kill_group(proc)
        stop(server)


# --------------------------------------------------------------------------------------------------
# c. Several processes into one store and one output folder


def _start_together(tmp_path: Path, experiments: list[tuple[str, int]]) -> list[tuple[Space, int, str, str]]:
    """Start the experiments at once, each with its own PREFECT_HOME, into one new SQLite store and one output
    folder; wait for all: (space, exit code, stdout, stderr) each."""
    shared_uri, shared_out = f"sqlite:///{tmp_path / 'shared.db'}", tmp_path / "out"
    spaces = [Space.new(tmp_path / f"p{i}", tracking_uri=shared_uri, out=shared_out) for i in range(len(experiments))]
    procs = [space.start(experiment_args(method, seed, ROUNDS), "run")
             for space, (method, seed) in zip(spaces, experiments)]
    try:
        return [(space, *space.finish(proc, "run")) for space, proc in zip(spaces, procs)]
    finally:
        for proc in procs:
            kill_group(proc)


FOUR = [("prac", 0), ("lt", 1), ("cet-only", 2), ("prac", 3)]  # four rounds 0: none shared


@pytest.fixture(scope="module")
def together(tmp_path_factory) -> list[tuple[Space, int, str, str]]:
    """Five processes at once into one new store: the four experiments, the first of them started twice (read
    by both tests of c.: one set of runs, not 4 and then 2)."""
    return _start_together(tmp_path_factory.mktemp("together"), [*FOUR, FOUR[0]])


def test_four_experiments_at_once_into_one_new_store(together):
    results = together
    for space, rc, out, err in results:
        assert rc == 0, f"{space.root}: exit {rc}\n{out[-2000:]}\n{err[-6000:]}"
    space = results[0][0]
    client = space.client()
    assert len(client.search_experiments(filter_string=f"name = '{EXPERIMENT}'")) == 1
    dirs = space.run_dirs()
    assert len(dirs) == len(FOUR), list(dirs)
    seen = []
    for fingerprint in dirs:
        parents = parent_runs(client, fingerprint)
        assert len(parents) == 1, (fingerprint, [p.info.run_id for p in parents])
        parent = parents[0]
        assert parent.info.status == "FINISHED"
        assert not check_one_value_per_round(round_values(client, parent.info.run_id), ROUNDS), fingerprint
        seen.append((parent.data.tags["prac.method"], int(parent.data.tags["prac.seed"])))
    assert sorted(seen) == sorted(FOUR)


def _stage_states(output: str) -> dict[str, str]:
    return dict(re.findall(r"Task run '((?:train-round|select-cet|prune|select-cep)-r\d\d)' - Finished in state "
                           r"(\w+)", output))


def test_one_experiment_started_twice_at_once(reference, together):
    """Both complete; one trains, the other waits for it (prac_lth/tasks/experiment_lock.py) and finds every stage
    cached;
    one parent run, the uninterrupted run's files."""
    results = [together[0], together[-1]]  # FOUR[0], twice
    for space, rc, out, err in results:
        assert rc == 0, f"{space.root}: exit {rc}\n{out[-2000:]}\n{err[-6000:]}"
    states = [_stage_states(out + err) for _, _, out, err in results]
    stages = ("train-round", "select-cet", "prune", "select-cep")
    for stage in [f"{stage}-r{r:02d}" for r in range(ROUNDS) for stage in stages]:
        assert sorted(s.get(stage) for s in states) == ["Cached", "Completed"], (stage, states)
    space = results[0][0]
    # one folder each of the four experiments (one parent run each: test_four_experiments_at_once...)
    assert reference.fingerprint in space.run_dirs() and len(space.run_dirs()) == len(FOUR), list(space.run_dirs())
    assert artifacts(space.run_dirs()[reference.fingerprint]) == reference.files
    parents = parent_runs(space.client(), reference.fingerprint)
    assert len(parents) == 1, [p.info.run_id for p in parents]
    assert parents[0].info.status == "FINISHED"
    assert round_values(space.client(), parents[0].info.run_id) == reference.values


# --------------------------------------------------------------------------------------------------
# d. The disk fills


@contextlib.contextmanager
def _tmpfs(path: Path, size: str):
    """A file system of `size` at `path` (root: mount -t tmpfs), unmounted afterwards; skipped where mounting is
    not allowed (tests/test_storage_errors.py fills the disk by simulation there)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_stops_in_one_line_and_the_same_command_resumes(reference, tmp_path):
    # 4 MB: the run's first files fit; round 0's training checkpoint (the run's largest need: over 15 MB with its
    # temporary copy) does not, so the disk fills while round 0 trains.
    with _tmpfs(tmp_path / "small", "4m") as small:
        space = Space.new(tmp_path / "space", out=small / "out")  # the MLflow store beside, on the big disk
        rc, out, err = space.run(ARGS, "full")
        assert rc == 2, f"exit {rc}\n{out[-2000:]}\n{err[-6000:]}"
        assert "Traceback" not in out + err
        errors = [line for line in err.splitlines() if line.startswith("prac-lth: error: ")]
        assert len(errors) == 1, err[-6000:]
        assert re.search(rf"cannot write \S+ in {re.escape(str(small))}/\S+: no space left on device \(\d+(\.\d)? k?B "
                         r"free there when it failed\); free some space and run the same command again", errors[0]), errors[0]
        assert list(small.rglob("split.parquet")), "the run's first stage should have fit: the disk filled mid-run"
        assert not list(small.rglob("*.tmp")), "a partial file was left"
        for path in small.rglob("*.parquet"):  # whatever has a final name is whole
            pq.read_table(path)
        for path in small.rglob("*.json"):
            json.loads(path.read_text())
        for path in small.rglob("*.pt"):
            load_torch(path)

        subprocess.run(["mount", "-o", "remount,size=256m", str(small)], check=True)
        output = space.run_ok(ARGS, "resumed")
        assert re.search(r"Task run 'prepare-run-\w+' - Finished in state Cached", output), output[-4000:]  # kept
        (fingerprint, run_dir), = space.run_dirs().items()
        assert fingerprint == reference.fingerprint
        assert artifacts(run_dir) == reference.files
        parents = parent_runs(space.client(), fingerprint)
        assert len(parents) == 1 and parents[0].info.status == "FINISHED", [p.info for p in parents]
        assert round_values(space.client(), parents[0].info.run_id) == reference.values


# --------------------------------------------------------------------------------------------------
# e. Stopped on purpose


def _stop_when(space: Space, proc, name: str, ready, signum: int) -> tuple[int, str, str]:
    """Signal the CLI's process (as a terminal or a job scheduler does) once `ready()` holds."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not ready():
        assert proc.poll() is None, space.read(name)
        assert time.monotonic() < deadline, f"{name}: never ready to be stopped"
        time.sleep(0.05)
    os.kill(proc.pid, signum)
    return space.finish(proc, name)


def _experiment_parents(space: Space) -> list[tuple[str, str, str]]:
    """(fingerprint, run id, status) of every parent run in the space's store."""
    client = space.client()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`prac.kind` = 'experiment'") \
        if experiment else []
    return [(r.data.tags.get("prac.fingerprint"), r.info.run_id, r.info.status) for r in runs]


def _stopped_runs(space: Space) -> tuple[Space, list]:
    """Ctrl-C while round 0 trains (its first epoch saved); then SIGTERM as soon as the same command's flow has
    begun (round 0's checkpoint exists already; the rest of the run is seconds of work); then a re-run. Run beside
    the reference (the fixture); each stop's (name, line, code, (exit code, stdout, stderr), parent runs then)."""
    in_round_0 = lambda: bool(list(space.out.glob("*/round0-*/train.ckpt")))  # noqa: E731
    flow_begun = lambda: "Beginning flow run" in space.read("terminated")[1]  # noqa: E731
    stops = []
    for name, ready, signum, line, code in (("interrupted", in_round_0, signal.SIGINT, "prac-lth: interrupted", 130),
                                            ("terminated", flow_begun, signal.SIGTERM, "prac-lth: terminated", 143)):
        result = _stop_when(space, space.start(ARGS, name), name, ready, signum)
        stops.append((name, line, code, result, _experiment_parents(space)))
    space.run_ok(ARGS, "resumed")
    return space, stops


def test_stopped_mid_run_is_one_line_marks_the_run_killed_and_resumes(reference):
    """What _stopped_runs did beside the reference: one line and exit code per stop, the one parent run KILLED and
    reopened; the same command resumes to the uninterrupted run's files and values."""
    space, stops = reference.stopped.result()
    parent_id = None
    for name, line, code, (rc, out, err), parents in stops:
        assert rc == code, f"{line}: exit {rc}\n{out[-2000:]}\n{err[-6000:]}"
        assert "Traceback" not in out + err
        assert line in err.splitlines(), err[-3000:]
        (parent,) = [(run_id, status) for fp, run_id, status in parents if fp == reference.fingerprint]  # reopened
        assert parent[1] == "KILLED" and parent_id in (None, parent[0]), (name, parents)
        parent_id = parent[0]

    assert artifacts(space.run_dirs()[reference.fingerprint]) == reference.files
    (again,) = parent_runs(space.client(), reference.fingerprint)
    assert again.info.run_id == parent_id and again.info.status == "FINISHED"
    assert round_values(space.client(), again.info.run_id) == reference.values
