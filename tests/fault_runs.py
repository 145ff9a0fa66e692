"""Helpers of tests/test_faults.py: `prac-lth` (and `mlflow server`) in subprocesses, each in its own process group,
with its own PREFECT_HOME, a tracking store and an output folder that several processes may share; what a run
left (masks, PrAC sets, MLflow values) read back for comparison."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pyarrow.parquet as pq
import pytest

from prac.artifacts import read_mask, read_prac_set
from tests.prefect_homes import migrated_prefect_home
# Processes and servers as the pipeline tests handle them: one way to signal, stop and wait for them.
from tests.test_pipeline import _kill_group as kill_group
from tests.test_pipeline import _stop as stop  # noqa: F401 - for test_faults
from tests.test_pipeline import _wait_for

BIN = Path(sys.executable).parent
PRAC_LTH = str(BIN / "prac-lth")
MLFLOW = str(BIN / "mlflow")
PRESET = "digits-smoke"
EXPERIMENT = f"prac-lth/{PRESET}"
ROUND_METRICS = ("sparsity", "train_iterations", "cumulative_iterations", "epochs_run", "prac_set_size",
                 "prac_set_fraction", "cet_size", "cep_size", "best_val_acc", "test_acc")
RUN_TIMEOUT_S = 600  # a run takes ~20 s on 2 idle cores; generous for a loaded machine
# A command typed in a terminal has Ctrl-C (SIGINT) at its default; a background job of a non-interactive shell,
# which is how a test runner may be started, inherits SIGINT ignored (POSIX), and so would every run it starts.
AS_FROM_A_TERMINAL = ["env", "--default-signal=INT"]


def experiment_args(method: str = "prac", seed: int = 0, rounds: int = 2) -> list[str]:
    return ["run", PRESET, "--method", method, "--seed", str(seed), "--set", f"prune.rounds={rounds}",
            "--set", "runtime.evaluate_tickets=none"]


@dataclass
class Space:
    """Where one process runs: its folder (cwd, PREFECT_HOME, logs), and a tracking URI and output folder
    that other spaces may share."""

    root: Path
    tracking_uri: str
    out: Path
    logs: list[Path] = field(default_factory=list)
    new_prefect_home: bool = False  # an empty PREFECT_HOME: Prefect creates its database (tests/prefect_homes.py)

    @classmethod
    def new(cls, root: Path, tracking_uri: str | None = None, out: Path | None = None,
            new_prefect_home: bool = False) -> "Space":
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, tracking_uri or f"sqlite:///{root / 'mlflow.db'}", out or root / "out",
                   new_prefect_home=new_prefect_home)

    @property
    def store(self) -> Path:
        return Path(self.tracking_uri.removeprefix("sqlite:///"))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        home = self.root / "prefect-home"
        env.update(PREFECT_HOME=str(home if self.new_prefect_home else migrated_prefect_home(home)),
                   MLFLOW_TRACKING_URI=self.tracking_uri,
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", **extra)
        return env

    def start(self, args: list[str], name: str, **extra_env: str) -> subprocess.Popen:
        """`prac-lth ARGS --output-dir OUT`, its stdout and stderr to ROOT/NAME.out and .err."""
        out, err = self.root / f"{name}.out", self.root / f"{name}.err"
        self.logs += [out, err]
        env = self.env(**extra_env)
        with open(out, "w") as stdout, open(err, "w") as stderr:
            return subprocess.Popen([*AS_FROM_A_TERMINAL, PRAC_LTH, *args, "--output-dir", str(self.out)], cwd=self.root, env=env,
                                    start_new_session=True, stdout=stdout, stderr=stderr)

    def finish(self, proc: subprocess.Popen, name: str, timeout: float = RUN_TIMEOUT_S) -> tuple[int, str, str]:
        """Wait for a run started as `name`: (exit code, stdout, stderr); the group killed afterwards."""
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.wait()
            pytest.fail(f"{name} in {self.root} ran past {timeout} s:\n{self.read(name)[1][-4000:]}")
        finally:
            kill_group(proc)  # leftovers (a temporary Prefect server), if any
        return (proc.returncode, *self.read(name))

    def read(self, name: str) -> tuple[str, str]:
        return (self.root / f"{name}.out").read_text(), (self.root / f"{name}.err").read_text()

    def run(self, args: list[str], name: str, timeout: float = RUN_TIMEOUT_S) -> tuple[int, str, str]:
        return self.finish(self.start(args, name), name, timeout)

    def run_ok(self, args: list[str], name: str, timeout: float = RUN_TIMEOUT_S) -> str:
        rc, out, err = self.run(args, name, timeout)
        assert rc == 0, f"{name} in {self.root}: exit {rc}\n{out[-2000:]}\n{err[-6000:]}"
        return out + err

    # What the experiments left
    def run_dirs(self) -> dict[str, Path]:
        """fingerprint -> out/<preset>/<fingerprint> (round0-* are the shared rounds 0)."""
        base = self.out / PRESET
        return {p.name: p for p in base.iterdir() if p.is_dir() and not p.name.startswith("round0-")}

    def client(self) -> mlflow.MlflowClient:
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri)


def artifacts(run_dir: Path) -> dict[str, dict[str, list]]:
    """round_NN/mask.parquet and prac_set.parquet of a run folder, verified (checksums, fingerprint), as columns."""
    tables = {}
    for name, read in (("mask.parquet", read_mask), ("prac_set.parquet", read_prac_set)):
        for path in sorted(run_dir.glob(f"round_*/{name}")):
            read(path, expected_fingerprint=run_dir.name)
            tables[f"{path.parent.name}/{name}"] = pq.read_table(path).to_pydict()
    return tables


def parent_runs(client: mlflow.MlflowClient, fingerprint: str) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, f"no MLflow experiment {EXPERIMENT}"
    return client.search_runs([experiment.experiment_id], filter_string=(
        f"tags.`prac.fingerprint` = '{fingerprint}' and tags.`prac.kind` = 'experiment'"))


def round_values(client: mlflow.MlflowClient, run_id: str, keys=ROUND_METRICS) -> dict[str, list[tuple[int, float]]]:
    """metric -> every (step, value) logged on the run, sorted."""
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys}


def check_one_value_per_round(values: dict[str, list[tuple[int, float]]], rounds: int) -> list[str]:
    """What is wrong (a round's value missing or logged twice), as lines; empty when all is well."""
    return [f"{key}: steps {[s for s, _ in pairs]}" for key, pairs in values.items()
            if [s for s, _ in pairs] != list(range(rounds))]


def wait_for_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    _wait_for(url, proc, log, "MLflow server", timeout)
