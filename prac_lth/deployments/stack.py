"""The scaled-out stack on one machine, for real: PostgreSQL, an MLflow tracking server on it (artifacts served by the
server), a Prefect server on it, a process work pool with N workers, and prefect.yaml's deployments on that pool;
the topology of docker/compose.yaml, without containers. Everything binds to 127.0.0.1 on free ports and keeps its
state in one folder; every PID started is recorded there and `down` stops them by PID.

    python -m prac_lth.deployments.stack up FOLDER [--workers 2]   # prints the two URLs clients need
    eval "$(python -m prac_lth.deployments.stack env FOLDER)"      # PREFECT_API_URL, MLFLOW_TRACKING_URI
    prefect deployment run prac-lth/digits -p seed=1
    python -m prac_lth.deployments.stack down FOLDER

FOLDER holds postgres/ (the cluster), mlflow-artifacts/, prefect/ (PREFECT_HOME), runs/ (PRAC_OUTPUT_DIR of the
workers), logs/ and stack.json (ports and PIDs). `up` again on the same folder restarts the stack on its data.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from prac_lth.deployments import postgres, processes
from prac_lth.outages import CLIENT_DEFAULTS

PROJECT = Path(__file__).resolve().parents[2]  # the checkout: prefect.yaml, and prac_lth/flows/
PREFECT_YAML = PROJECT / "prefect.yaml"
# The environment variable prefect.yaml's pull step takes the project's folder from (docker: /app).
PROJECT_DIR_ENV = "PRAC_PROJECT_DIR"
DATABASES = {"mlflow": "mlflow", "prefect": "prefect"}
START_TIMEOUT_S = 300.0


def work_pool(prefect_yaml: Path = PREFECT_YAML) -> str:
    """The one work pool prefect.yaml's deployments go to."""
    pools = {d["work_pool"]["name"] for d in yaml.safe_load(prefect_yaml.read_text())["deployments"]}
    if len(pools) != 1:
        raise ValueError(f"{prefect_yaml}: expected one work pool, found {sorted(pools)}")
    return pools.pop()


# MLflow's server starts a job runner with 4 consumer processes for its GenAI jobs, which prac-lth never submits:
# off, the server is one process group of uvicorn workers (less memory, a faster start and stop).
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def mlflow_server_command(backend_store_uri: str, artifacts: str, port: int, host: str = "127.0.0.1",
                          workers: int = 2) -> list[str]:
    return ["mlflow", "server", "--backend-store-uri", backend_store_uri, "--serve-artifacts",
            "--artifacts-destination", artifacts, "--host", host, "--port", str(port), "--workers", str(workers)]


def prefect_server_command(port: int, host: str = "127.0.0.1") -> list[str]:
    return ["prefect", "server", "start", "--host", host, "--port", str(port), "--analytics-off"]


def worker_command(pool: str, name: str) -> list[str]:
    # One flow run at a time per worker (one per GPU); `prac-lth-compare -p parallel=N` runs N inside one.
    return ["prefect", "worker", "start", "--pool", pool, "--type", "process", "--name", name, "--limit", "1"]


def setup_commands(pool: str) -> list[list[str]]:
    """The process work pool, prefect.yaml's deployments on it (run in the project's folder), and the automation
    that marks a flow run Crashed when its worker dies (prac_lth/deployments/zombies.py)."""
    return [["prefect", "work-pool", "create", "--type", "process", "--overwrite", pool],
            ["prefect", "deploy", "--all", "--no-prompt"],
            ["python", "-m", "prac_lth.deployments.zombies"]]


def _python(command: list[str]) -> list[str]:
    """A tool (or `python …`) of this interpreter's environment, found without PATH."""
    return [sys.executable, *command[1:]] if command[0] == "python" else [sys.executable, "-m", *command]


@dataclass
class Stack:
    folder: Path
    pool: str
    workers: int = 2
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)  # name -> PID, in the order started
    identities: dict[str, str] = field(default_factory=dict)  # name -> processes.identity (a PID can be reused)

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prefect']}/api"

    def client_env(self) -> dict[str, str]:
        """What a client (or a worker) of this stack needs."""
        return {"PREFECT_API_URL": self.prefect_api_url, "MLFLOW_TRACKING_URI": self.mlflow_url}

    def log(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    def save(self) -> None:
        state = {**asdict(self), "folder": str(self.folder)}
        (self.folder / "stack.json").write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "Stack":
        state = json.loads((Path(folder) / "stack.json").read_text())
        return cls(**{**state, "folder": Path(state["folder"])})

    def record(self, name: str, pid: int) -> None:
        self.pids[name], self.identities[name] = pid, processes.identity(pid) or ""
        self.save()

    def running(self) -> dict[str, int]:
        """The recorded processes still running (not others that got their PIDs since)."""
        return {name: pid for name, pid in self.pids.items()
                if processes.alive(pid) and processes.identity(pid) == self.identities.get(name)}

    def worker_env(self, output_dir: Path) -> dict[str, str]:
        """What a worker adds to env(): where flow runs write, and the project prefect.yaml's pull step enters."""
        return {"PRAC_OUTPUT_DIR": str(Path(output_dir).resolve()), PROJECT_DIR_ENV: str(PROJECT)}

    def env(self) -> dict[str, str]:
        """The environment of every process but PostgreSQL: this one's, with Prefect's home in the folder and its
        client's retries of a server whose database is away (prac_lth/outages.py) unless this one's says otherwise."""
        return {**CLIENT_DEFAULTS, **os.environ, **self.client_env(), "PREFECT_HOME": str(self.folder / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
        """Start a server or worker (in the folder, with env() and `env`) and record its PID."""
        pid = processes.start(_python(command), self.log(name), {**self.env(), **(env or {})}, self.folder)
        self.record(name, pid)
        return pid


def _registered_workers(stack: Stack) -> set[str]:
    request = urllib.request.Request(f"{stack.prefect_api_url}/work_pools/{stack.pool}/workers/filter",
                                     data=b"{}", headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return {worker["name"] for worker in json.load(response)}


def _run_tool(stack: Stack, name: str, command: list[str], cwd: Path | None = None) -> None:
    """Run a setup command to its end (output appended to the log `name`)."""
    with open(stack.log(name), "ab") as log:
        try:
            done = subprocess.run(_python(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  env=stack.env(), cwd=cwd or stack.folder, timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{' '.join(command)} did not finish in {START_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}); {stack.log(name)}:\n"
                           f"{processes.log_tail(stack.log(name))}")


def up(folder: Path, workers: int = 2, output_dir: Path | None = None) -> Stack:
    """Bring the stack up in `folder` (created if missing) and return it once the workers poll the pool and the
    deployments are registered. On any failure, stops what it started and raises."""
    folder = Path(folder).resolve()
    if postgres.bin_dir() is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    if (folder / "stack.json").exists() and (running := Stack.load(folder).running()):
        raise RuntimeError(f"the stack in {folder} is up ({running}); `down` it first")
    old = Stack.load(folder).ports if (folder / "stack.json").exists() else {}
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    stack = Stack(folder, work_pool(), workers)
    for name in ("postgres", "mlflow", "prefect"):  # the same ports as last time where still free
        stack.ports[name] = processes.free_port(old.get(name))
    try:
        _start(stack, output_dir or folder / "runs")
    except BaseException:
        down(folder)
        raise
    return stack


def _start(stack: Stack, output_dir: Path) -> None:
    _start_postgres(stack)
    mlflow = _start_servers(stack)
    _start_workers(stack, output_dir)
    processes.wait_http(f"{stack.mlflow_url}/health", mlflow, stack.log("mlflow"), START_TIMEOUT_S)


def _start_postgres(stack: Stack) -> None:
    data, log = stack.folder / "postgres", stack.log("postgres")
    postgres.init(data)
    stack.record("postgres", postgres.start(data, log, stack.ports["postgres"]))
    postgres.create_databases(stack.ports["postgres"], list(DATABASES.values()))


def _start_servers(stack: Stack) -> int:
    """Start MLflow's and Prefect's servers, wait for Prefect's; returns MLflow's PID (to wait for later)."""
    database = stack.ports["postgres"]
    mlflow = stack.start("mlflow", mlflow_server_command(postgres.url(database, DATABASES["mlflow"]),
                                                         str(stack.folder / "mlflow-artifacts"), stack.ports["mlflow"]),
                         MLFLOW_SERVER_ENV)
    prefect = stack.start("prefect-server", prefect_server_command(stack.ports["prefect"]), {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres.url(database, DATABASES["prefect"],
                                                               driver="postgresql+asyncpg")})
    processes.wait_http(f"{stack.prefect_api_url}/health", prefect, stack.log("prefect-server"), START_TIMEOUT_S)
    return mlflow


def _start_workers(stack: Stack, output_dir: Path) -> None:
    """The pool, its workers and prefect.yaml's deployments on it; returns once every worker polls the pool."""
    create_pool, deploy, zombies = setup_commands(stack.pool)
    _run_tool(stack, "setup", create_pool)
    names = [f"{stack.folder.name}-worker-{i}" for i in range(1, stack.workers + 1)]
    for name in names:
        stack.start(name, worker_command(stack.pool, name), stack.worker_env(output_dir))
    _run_tool(stack, "setup", deploy, cwd=PROJECT)
    _run_tool(stack, "setup", zombies, cwd=PROJECT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not set(names) <= _registered_workers(stack):
        if dead := [name for name in names if not processes.alive(stack.pids[name])]:
            log = stack.log(dead[0])
            raise RuntimeError(f"worker {dead[0]} exited; {log}:\n{processes.log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not all poll pool {stack.pool} within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.5)


def down(folder: Path) -> list[int]:
    """Stop every process the stack in `folder` started, by PID, the last started first; returns those PIDs."""
    folder = Path(folder).resolve()
    if not (folder / "stack.json").exists():
        return []
    stack = Stack.load(folder)
    stopped, errors, running = [], [], stack.running()
    for name, pid in reversed(stack.pids.items()):
        if name not in running and not (name != "postgres" and processes.group(pid)):
            continue  # gone, with all it started (its PID may be another process's by now)
        try:
            if name == "postgres":
                postgres.stop(pid)
            else:
                processes.stop(pid)
            stopped.append(pid)
        except RuntimeError as exc:  # stop the others all the same
            errors.append(f"{name}: {exc}")
    stack.pids = {name: pid for name, pid in stack.pids.items() if name in running and pid not in stopped}
    stack.identities = {name: stack.identities[name] for name in stack.pids}
    stack.save()
    if errors:
        raise RuntimeError("; ".join(errors))
    return stopped


def _exports(stack: Stack) -> str:
    return "\n".join(f"export {key}={value}" for key, value in stack.client_env().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prac_lth.deployments.stack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the stack in FOLDER (created if missing)")
    start.add_argument("--workers", type=int, default=2, help="process workers on the pool (default 2)")
    start.add_argument("--output-dir", type=Path, help="the workers' PRAC_OUTPUT_DIR (default FOLDER/runs)")
    commands.add_parser("down", help="stop every process the stack started")
    commands.add_parser("env", help="print the exports a client needs (eval \"$(... env FOLDER)\")")
    commands.add_parser("status", help="the stack's processes and URLs")
    for command in commands.choices.values():
        command.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "up":
        try:
            stack = up(args.folder, args.workers, args.output_dir)
        except RuntimeError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 1
        print(f"MLflow {stack.mlflow_url} · Prefect {stack.prefect_api_url} · pool {stack.pool} "
              f"({stack.workers} workers) · PIDs in {stack.folder / 'stack.json'}")
        print(_exports(stack))
    elif args.command == "down":
        print(f"stopped {down(args.folder)}")
    elif args.command == "env":
        print(_exports(Stack.load(args.folder)))
    else:
        stack = Stack.load(args.folder)
        running = stack.running()
        for name, pid in stack.pids.items():
            print(f"{name:24} {pid:>8}  {'running' if name in running else 'gone'}")
        print(_exports(stack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
