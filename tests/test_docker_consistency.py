"""docker/compose.yaml and docker/Dockerfile describe the topology tests/test_scale_out.py runs for real with
prac_lth/deployments/stack.py; Docker is not needed here. Every command they run is the stack's (built by the same functions),
every flag exists in the installed MLflow and Prefect, every environment variable is one the project or a tool
reads, ports and URLs agree between services, the image holds every package the project installs, no credential
is written in either file."""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import prefect
import prefect.settings
import yaml
from mlflow.server.security_utils import is_allowed_host_header
from prefect.utilities.importtools import import_object
from prefect.utilities.templating import apply_values

from prac_lth.deployments import postgres, stack

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|AUTH", re.I)
REQUIRED_FROM_ENV = re.compile(r"^\$\{(\w+):\?[^}]*\}$")
# Variables of tools that read them without a registry to look them up in: CPython, pip, the postgres image's
# entry point (the values of the last are checked against the URLs below).
DOCUMENTED = {"PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def _interpolate(value: str) -> str:
    """Compose's interpolation: ${VAR:-default} gives the default, ${VAR:?message} a placeholder."""
    value = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", value)
    return re.sub(r"\$\{(\w+):\?[^}]*\}", r"<\1>", value)


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "docker" / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


DOCKERFILE = _dockerfile()


def _instructions(name: str) -> list[str]:
    return [args for instruction, args in DOCKERFILE if instruction == name]


def _image_env() -> dict[str, str]:
    env = {}
    for args in _instructions("ENV"):
        env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def _command(service: str) -> list[str]:
    return shlex.split(_interpolate(SERVICES[service]["command"]))


def _env(service: str) -> dict[str, str]:
    return {key: _interpolate(str(value)) for key, value in SERVICES[service].get("environment", {}).items()}


def _option(tokens: list[str], flag: str) -> str:
    return tokens[tokens.index(flag) + 1]


def _workers() -> list[str]:
    return [name for name, service in SERVICES.items() if str(service.get("command", "")).startswith("prefect worker")]


def _published(service: str) -> dict[int, tuple[str, int]]:
    """container port -> (host address, host port)."""
    published = {}
    for spec in SERVICES[service].get("ports", []):
        address, host_port, container_port = spec.split(":")
        published[int(container_port)] = (address, int(host_port))
    return published


def _mount_targets(service: str) -> dict[str, str]:
    """container path -> source (a named volume or a host path)."""
    return {_interpolate(v).split(":")[1]: _interpolate(v).split(":")[0] for v in SERVICES[service].get("volumes", [])}


@functools.cache
def _flags(*command: str) -> frozenset[str]:
    """The long options `command --help` lists (in the installed tool; fails if the subcommand does not exist)."""
    done = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert done.returncode == 0, done.stdout + done.stderr
    return frozenset(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", done.stdout))


def _assert_flags_exist(tokens: list[str], subcommand_length: int) -> None:
    flags = _flags(*tokens[:subcommand_length])
    used = [token for token in tokens if token.startswith("--")]
    assert used and set(used) <= flags, f"{' '.join(tokens[:subcommand_length])}: no such option {set(used) - flags}"


def _prefect_reads(name: str, value: str, monkeypatch) -> str:
    """The setting variable `name` sets in the installed Prefect (failing if Prefect has no such variable), checked
    by reading `value` back through it; returns the setting's path."""
    setting = getattr(prefect.settings, name)  # AttributeError: "... is not a Prefect setting"
    monkeypatch.setenv(name, value)
    read = setting.value_from(prefect.settings.Settings())
    read = read.get_secret_value() if hasattr(read, "get_secret_value") else read
    assert str(read).lower() == value.lower(), (name, value, read)
    return setting.accessor


def test_the_compose_topology_is_the_stacks():
    workers = _workers()
    assert {"postgres", "mlflow", "prefect-server"} <= set(SERVICES) and len(workers) >= 2  # the CI stack runs two
    gpus = []
    for name in workers:
        (device,) = SERVICES[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
        assert len(device["device_ids"]) == 1, f"{name}: one worker per GPU"
        gpus += device["device_ids"]
    assert len(set(gpus)) == len(gpus), f"two workers reserve one GPU: {gpus}"
    for name, service in SERVICES.items():
        if name != "postgres":
            assert service["image"] == SERVICES["mlflow"]["image"]
            assert service["build"]["dockerfile"] == "docker/Dockerfile"
            assert (ROOT / "docker" / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_no_credentials_in_the_files():
    raw = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]
    for name, service in raw.items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_FROM_ENV.match(str(value)), f"{name}: {key} must come from the environment (${{VAR:?}})"
        text = json.dumps(service)
        assert not re.search(r"://[^/@\s\"]+:[^/@\s\"]+@", text), f"{name}: a password in a URL"
    for instruction in ("ENV", "ARG"):
        for args in _instructions(instruction):
            assert not SECRET_NAME.search(args), f"Dockerfile {instruction} {args}: no credentials in the image"
    # Both the server's password and the clients' come from the one variable
    passwords = {value for name in SERVICES for key, value in _env(name).items() if SECRET_NAME.search(key)}
    assert passwords == {"<POSTGRES_PASSWORD>"}


def test_the_mlflow_server_is_the_stacks(monkeypatch):
    tokens = _command("mlflow")
    backend, artifacts, port = _option(tokens, "--backend-store-uri"), _option(tokens, "--artifacts-destination"), \
        int(_option(tokens, "--port"))
    expected = stack.mlflow_server_command(backend, artifacts, port, host="0.0.0.0",
                                           workers=int(_option(tokens, "--workers")))
    assert tokens[:len(expected)] == expected
    _assert_flags_exist(tokens, 2)
    url = urlsplit(backend)
    assert url.scheme == urlsplit(postgres.url(5432, "x")).scheme  # the driver the stack uses (psycopg2)
    assert (url.hostname, url.port, url.password) == ("postgres", 5432, None)
    assert url.username == _env("postgres")["POSTGRES_USER"]
    assert url.path.lstrip("/") == stack.DATABASES["mlflow"] == _env("postgres")["POSTGRES_DB"]
    assert _mount_targets("mlflow")[artifacts] in COMPOSE["volumes"]  # the served artifacts outlive the container
    # Workers send Host: mlflow:5000; a browser on this host 127.0.0.1:<published>: both pass MLflow's host check
    allowed = _option(tokens, "--allowed-hosts").split(",")
    hosts = {urlsplit(_env(w)["MLFLOW_TRACKING_URI"]).netloc for w in _workers()}
    address, host_port = _published("mlflow")[port]
    hosts |= {f"127.0.0.1:{host_port}", f"localhost:{host_port}"}
    assert all(is_allowed_host_header(allowed, host) for host in hosts), (allowed, hosts)
    assert not is_allowed_host_header(allowed, "attacker.example:5000")
    assert _env("mlflow").keys() == {"PGPASSWORD", *stack.MLFLOW_SERVER_ENV}
    assert {k: _env("mlflow")[k] for k in stack.MLFLOW_SERVER_ENV} == stack.MLFLOW_SERVER_ENV


def test_the_prefect_server_is_the_stacks(monkeypatch):
    tokens = _command("prefect-server")
    port = int(_option(tokens, "--port"))
    assert tokens == stack.prefect_server_command(port, host="0.0.0.0")
    _assert_flags_exist(tokens, 3)
    env = _env("prefect-server")
    (database_var,) = [key for key in env if key.startswith("PREFECT_") and "DATABASE" in key]
    assert _prefect_reads(database_var, env[database_var], monkeypatch) == "server.database.connection_url"
    url = urlsplit(env[database_var])
    assert url.scheme == urlsplit(postgres.url(5432, "x", driver="postgresql+asyncpg")).scheme
    assert (url.hostname, url.port, url.password) == ("postgres", 5432, None)
    assert url.username == _env("postgres")["POSTGRES_USER"]
    initdb = "".join(p.read_text() for p in (ROOT / "docker" / "initdb").iterdir())
    created = re.findall(r"CREATE DATABASE (\w+)", initdb)
    assert url.path.lstrip("/") == stack.DATABASES["prefect"] and created == [stack.DATABASES["prefect"]]
    assert _mount_targets("postgres")["/docker-entrypoint-initdb.d"] == "./initdb"
    address, host_port = _published("prefect-server")[port]
    ui_api = env["PREFECT_SERVER_UI_API_URL"]
    assert _prefect_reads("PREFECT_SERVER_UI_API_URL", ui_api, monkeypatch) == "server.ui.api_url"
    assert ui_api == f"http://{address}:{host_port}/api"


def test_servers_publish_on_loopback_only_and_check_their_own_port():
    for name, flag in (("mlflow", "--port"), ("prefect-server", "--port")):
        port = int(_option(_command(name), flag))
        assert list(_published(name)) == [port] and _published(name)[port][0] == "127.0.0.1", name
        health = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/" in health, name
    for name in SERVICES:
        if name not in ("mlflow", "prefect-server"):
            assert not SERVICES[name].get("ports"), f"{name} publishes a port"


def test_workers_run_the_stacks_worker_on_prefect_yamls_pool(monkeypatch):
    pool = stack.work_pool()
    assert {d["work_pool"]["name"] for d in PREFECT_YAML["deployments"]} == {pool}
    mlflow_port = int(_option(_command("mlflow"), "--port"))
    prefect_port = int(_option(_command("prefect-server"), "--port"))
    image_env = _image_env()
    for name in _workers():
        tokens = _command(name)
        assert tokens == stack.worker_command(pool, _option(tokens, "--name")), name
        _assert_flags_exist(tokens, 3)
        env = {**image_env, **_env(name)}
        local = stack.Stack(Path("/x"), pool, ports={"postgres": 1, "mlflow": 2, "prefect": 3})  # the stack's workers
        assert set(local.client_env()) | set(local.worker_env(Path("/x"))) <= set(env), name
        assert urlsplit(env["PREFECT_API_URL"])[1:3] == (f"prefect-server:{prefect_port}", "/api")
        assert urlsplit(env["MLFLOW_TRACKING_URI"]).netloc == f"mlflow:{mlflow_port}"
        _prefect_reads("PREFECT_API_URL", env["PREFECT_API_URL"], monkeypatch)
        mounts = _mount_targets(name)
        assert mounts[env["PRAC_OUTPUT_DIR"]] in COMPOSE["volumes"], "outputs on the volume every worker shares"
        assert env["PRAC_DATA_DIR"] in mounts
    assert len({_mount_targets(name)[image_env["PRAC_OUTPUT_DIR"]] for name in _workers()}) == 1


def test_the_deploy_service_sets_up_the_pool_and_deployments_as_the_stack_does(monkeypatch):
    shell, flag, script = SERVICES["deploy"]["command"]
    commands = [shlex.split(command) for command in script.split("&&")]
    assert (shell, flag) == ("sh", "-c") and commands == stack.setup_commands(stack.work_pool())
    _assert_flags_exist(commands[0], 3)
    _assert_flags_exist(commands[1], 2)
    assert "working_dir" not in SERVICES["deploy"]  # the image's WORKDIR, where prefect.yaml is (checked below)
    assert len({_env(name)["PREFECT_API_URL"] for name in ["deploy", *_workers()]}) == 1
    assert SERVICES["deploy"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_every_environment_variable_is_read_by_someone(monkeypatch):
    names = set(_image_env()) | {key for name in SERVICES for key in _env(name)}
    project_text = "\n".join(p.read_text() for package in _packages() for p in (ROOT / package).rglob("*.py"))
    project_text += (ROOT / "prefect.yaml").read_text()
    import asyncpg.connect_utils
    import mlflow.environment_variables as mlflow_variables

    libpq = next((Path(importlib.metadata.distribution("psycopg2-binary").locate_file("")) / "psycopg2_binary.libs")
                 .glob("libpq*"))
    for name in sorted(names):
        if name.startswith("PREFECT_"):
            getattr(prefect.settings, name)
        elif name.startswith("MLFLOW_"):
            assert any(getattr(v, "name", None) == name for v in vars(mlflow_variables).values()), name
        elif name.startswith("PRAC_"):
            assert f'"{name}"' in project_text or f"${name}" in project_text, name
        elif name.startswith("PG"):  # libpq's (MLflow's psycopg2) and asyncpg's (Prefect's driver)
            assert name.encode() in libpq.read_bytes() and name in inspect.getsource(asyncpg.connect_utils), name
        else:
            assert name in DOCUMENTED, f"{name}: nobody reads it"
    # The project variables do what the workers need: the flows' defaults come from them
    from prac.settings.config import RuntimeConfig

    monkeypatch.setenv("PRAC_OUTPUT_DIR", "/runs")
    monkeypatch.setenv("PRAC_DATA_DIR", "/data")
    assert (RuntimeConfig().output_dir, RuntimeConfig().data_dir) == ("/runs", "/data")


def _packages() -> list[str]:
    """The top-level packages pyproject.toml installs (setuptools' find: its include patterns, folders with an
    __init__.py)."""
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(path.name for path in ROOT.iterdir()
                  if (path / "__init__.py").is_file() and any(fnmatch(path.name, pattern) for pattern in include))


def test_the_image_holds_what_the_project_installs():
    workdir = _instructions("WORKDIR")[-1]
    copied = {}
    for args in _instructions("COPY"):
        *sources, destination = shlex.split(args)
        for source in sources:
            target = destination if not destination.endswith("/") and len(sources) == 1 else f"{destination}{source}"
            copied[source] = str(Path(workdir) / target.removeprefix("./")) if not target.startswith("/") else target
    packages = _packages()
    assert set(packages) == {"prac", "prac_lth"}  # one namespace: nothing generic at the top level
    for needed in [*packages, "pyproject.toml", PYPROJECT["project"]["readme"], "prefect.yaml", "constraints.txt"]:
        assert copied.get(needed) == f"{workdir}/{needed}", f"the Dockerfile does not COPY {needed} to {workdir}"
    installs = [args for args in _instructions("RUN") if "pip install" in args]
    assert installs and all("-c constraints.txt" in args for args in installs), "versions CI tests: constraints.txt"
    (extra,) = re.findall(r"\.\[(\w+)\]", " ".join(installs))
    assert "psycopg2-binary" in PYPROJECT["project"]["optional-dependencies"][extra]  # MLflow's driver, above
    assert re.search(r"^psycopg2-binary==", (ROOT / "constraints.txt").read_text(), re.M)
    assert f"prac-lth[{extra}]" in PYPROJECT["project"]["optional-dependencies"]["test"]  # CI installs it too
    # prefect.yaml's pull step enters the folder the project was copied to
    assert _image_env()[stack.PROJECT_DIR_ENV] == workdir


def test_the_image_command_is_the_stacks_worker():
    command = json.loads(_instructions("CMD")[-1])
    expected = stack.worker_command(stack.work_pool(), "name")
    named = expected.index("--name")
    assert command == expected[:named] + expected[named + 2:]
    _assert_flags_exist(command, 3)
    scripts = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="console_scripts")}
    for tool in ("prefect", "mlflow"):  # the executables the commands start, installed by the image's pip install
        module, _, function = scripts[tool].partition(":")
        assert callable(getattr(importlib.import_module(module), function)), tool


def test_prefect_yaml_runs_in_the_images_project_and_its_entrypoints_load(monkeypatch, tmp_path):
    assert PREFECT_YAML["prefect-version"] == prefect.__version__  # constraints.txt's, the image's
    (step,) = PREFECT_YAML["pull"]
    # The pull step as a worker's flow run runs it (prefect.deployments.steps.core.run_step: its inputs templated
    # with the process's environment, then the step called): the folder comes from the worker's environment (/app
    # in the image, the checkout for the stack's workers), not from the file
    assert "/app" not in json.dumps(step)
    ((function, inputs),) = step.items()
    monkeypatch.chdir(ROOT)  # restored afterwards
    for folder in (tmp_path / "app", tmp_path / "checkout"):
        folder.mkdir()
        monkeypatch.setenv(stack.PROJECT_DIR_ENV, str(folder))
        assert import_object(function)(**apply_values(inputs, os.environ)) == {"directory": str(folder)}
        assert Path.cwd() == folder
    assert _image_env()[stack.PROJECT_DIR_ENV] == _instructions("WORKDIR")[-1]
    flows = set()
    for deployment in PREFECT_YAML["deployments"]:
        path, function = deployment["entrypoint"].split(":")
        assert (ROOT / path).is_file()
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), function)
        assert isinstance(flow, prefect.Flow)
        assert set(deployment["parameters"]) <= set(inspect.signature(flow.fn).parameters), deployment
        flows.add(f"{flow.name}/{deployment['name']}")
    assert "prac-lth/digits" in flows  # what the stack test runs


def test_every_process_retries_a_prefect_server_whose_database_is_away(monkeypatch, tmp_path):
    """prac_lth/outages.py's client settings reach every process that talks to Prefect: the image's (compose's
    servers, workers and deploy), every flow run's on any worker (prefect.yaml's job variables) and the stack's."""
    from prac_lth.deployments.stack import Stack
    from prac_lth.outages import CLIENT_DEFAULTS

    assert CLIENT_DEFAULTS == {"PREFECT_CLIENT_RETRY_EXTRA_CODES": "500"}
    assert prefect.settings.Settings(client={"retry_extra_codes": "500"}).client.retry_extra_codes == {500}
    assert CLIENT_DEFAULTS.items() <= _image_env().items()
    for deployment in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]:
        assert CLIENT_DEFAULTS.items() <= deployment["work_pool"]["job_variables"]["env"].items(), deployment["name"]
    monkeypatch.delenv("PREFECT_CLIENT_RETRY_EXTRA_CODES", raising=False)
    assert CLIENT_DEFAULTS.items() <= Stack(tmp_path, "gpu", ports={"mlflow": 5000, "prefect": 4200}).env().items()
    monkeypatch.setenv("PREFECT_CLIENT_RETRY_EXTRA_CODES", "500,504")  # an operator's own choice is kept
    assert Stack(tmp_path, "gpu", ports={"mlflow": 5000, "prefect": 4200}).env()["PREFECT_CLIENT_RETRY_EXTRA_CODES"] == "500,504"
