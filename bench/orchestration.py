"""Benchmark 5: wall time of one experiment through the Prefect flow with MLflow logging, against the
engine alone (`--engine-only`, the same steps in-process), paired A/B in one run; and the cached re-run.

    .venv/bin/python bench/orchestration.py [--preset fashion-lenet] [--rounds 3] [--repeats 2] [--threads N]
                                            [--server] [--quick]

As a user's runs do, every run of one invocation shares one Prefect home and one MLflow store (SQLite);
their creation (database migrations, once per machine) is timed apart, by a first flow run of
digits-smoke on the fresh stores. Each pair then runs the experiment into fresh output folders. By
default each flow run starts Prefect's temporary server in its process (what `prac-lth run` does with
no PREFECT_API_URL); with --server the runs use one `prefect server start` (as deployments do), started
before the timing.
Last line: the overhead ratio flow/engine (median of the pairs). Exits non-zero if a run fails or the
flow's masks differ from the engine's (orchestration must not change the science)."""
from __future__ import annotations

import argparse
import contextlib
import filecmp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from process_stats import run_measured
from quick_runs import QUICK_ROUNDS, set_args

CLI = str(Path(sys.executable).parent / "prac-lth")
PREFECT = str(Path(sys.executable).parent / "prefect")


class Stores:
    """One Prefect home and MLflow store for every run of the invocation; output folders under it."""

    def __init__(self, root: Path, threads: int | None):
        self.root, self.runs = root, 0
        self.env = {"PREFECT_HOME": str(root / "prefect"), "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    **({"OMP_NUM_THREADS": str(threads)} if threads else {})}

    def new_output(self) -> Path:
        self.runs += 1
        return self.root / f"out-{self.runs}"

    def run(self, preset: str, overrides: list[str], output: Path, engine: bool) -> float:
        command = [CLI, "run", preset, "--output-dir", str(output), *set_args(overrides)]
        return run_measured(command + (["--engine-only"] if engine else []), env=self.env, cwd=str(self.root)).wall_s


@contextlib.contextmanager
def prefect_server(stores: Stores) -> Iterator[None]:
    """A `prefect server start` on a free port for the runs of `stores` (PREFECT_API_URL set for them)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(stores.root / "server.log", "w")
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env={**os.environ, **stores.env}, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(600):
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{api}/health", timeout=1).status == 200:
                    break
            if server.poll() is not None:
                raise SystemExit(f"prefect server exited: {(stores.root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        stores.env["PREFECT_API_URL"] = api
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def masks(output: Path) -> list[Path]:
    return sorted(output.glob("*/*/round_*/mask.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="fashion-lenet")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both arms (default: unset)")
    parser.add_argument("--server", action="store_true", help="flows use one running `prefect server start`")
    parser.add_argument("--quick", action="store_true", help="digits-smoke, 2 rounds of 1 epoch, 1 pair")
    args = parser.parse_args()
    preset, rounds, repeats = ("digits-smoke", 2, 1) if args.quick else (args.preset, args.rounds, args.repeats)
    # a smoke run: 1-epoch rounds and ticket retrains; the runs (and their Prefect servers) are what it checks
    short = QUICK_ROUNDS if args.quick else []
    overrides = [f"prune.rounds={rounds}", *short]
    flow_s, engine_s, cached_s = [], [], []
    with tempfile.TemporaryDirectory() as root, contextlib.ExitStack() as stack:
        stores = Stores(Path(root), args.threads)
        if args.server:
            stack.enter_context(prefect_server(stores))
        first = stores.run("digits-smoke", ["prune.rounds=1", *short], stores.new_output(), engine=False)
        for _ in range(repeats):
            flow_out, engine_out = stores.new_output(), stores.new_output()
            flow_s.append(stores.run(preset, overrides, flow_out, engine=False))
            engine_s.append(stores.run(preset, overrides, engine_out, engine=True))
            cached_s.append(stores.run(preset, overrides, flow_out, engine=False))
            same = [filecmp.cmp(x, y, shallow=False) for x, y in zip(masks(flow_out), masks(engine_out))]
            if len(same) != rounds or not all(same):
                print(f"masks differ between the flow and the engine: {same}")
                return 1
    ratios = [f / e for f, e in zip(flow_s, engine_s)]
    server = "one running prefect server" if args.server else "a temporary Prefect server per flow run"
    print(f"{preset}, {rounds} rounds, {repeats} pair(s), OMP_NUM_THREADS={args.threads or 'unset'}, {server}")
    print(f"first flow run (digits-smoke, 1 round) on fresh stores: {first:.1f} s")
    print(f"engine alone      median {statistics.median(engine_s):7.1f} s   {[round(s, 1) for s in engine_s]}")
    print(f"flow + MLflow     median {statistics.median(flow_s):7.1f} s   {[round(s, 1) for s in flow_s]}")
    print(f"cached re-run     median {statistics.median(cached_s):7.1f} s   {[round(s, 1) for s in cached_s]}")
    print(f"overhead (flow - engine) median {statistics.median(f - e for f, e in zip(flow_s, engine_s)):.1f} s")
    print(f"flow/engine wall ratio {statistics.median(ratios):.3f}x ({preset}, {rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
