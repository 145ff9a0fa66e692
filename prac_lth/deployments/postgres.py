"""A PostgreSQL cluster of the stack's own, from Debian's packages (/usr/lib/postgresql/<version>/bin): created in
the stack's folder, listening on 127.0.0.1 only (no Unix socket), trust authentication there, no password
anywhere. The server refuses to run as root, so under root its binaries run as the `postgres` system user, who
then owns the cluster's folder."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from prac_lth.deployments import processes

SUPERUSER = "prac"  # the cluster's bootstrap superuser (initdb -U); trust on loopback, so no password


def bin_dir() -> Path | None:
    """The newest installed server's binaries, None when PostgreSQL is not installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.parent.name)])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _server_user() -> str | None:
    """The system user the server runs as: `postgres` when we are root, else None (ourselves)."""
    return "postgres" if os.geteuid() == 0 else None


def _as_server_user(argv: list[str]) -> list[str]:
    user = _server_user()
    return ["runuser", "-u", user, "--", *argv] if user else argv


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(argv)} did not finish in 180 s") from None
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _give_to_server_user(*paths: Path) -> None:
    if user := _server_user():
        for path in paths:
            shutil.chown(path, user, user)


def init(data: Path) -> None:
    """Create the cluster in `data` unless one is there."""
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    _give_to_server_user(data)
    if _server_user() and subprocess.run(_as_server_user(["test", "-w", str(data)])).returncode != 0:
        raise RuntimeError(f"the postgres user cannot write {data}: a folder above it is closed to other users "
                           "(chmod o+x it, or choose a folder under /tmp)")
    _run(_as_server_user([str(bin_dir() / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                          "--encoding=UTF8", "--no-locale", "--no-instructions"]))


def start(data: Path, log: Path, port: int) -> int:
    """Start the server on 127.0.0.1:`port` (its log appended to `log`); returns the postmaster's PID once it
    accepts connections."""
    log.touch()
    _give_to_server_user(log)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
    _run(_as_server_user([str(bin_dir() / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                          "-w", "-t", "120", "start"]))
    return int((data / "postmaster.pid").read_text().split()[0])


def create_databases(port: int, names: list[str]) -> None:
    """Create the databases that do not exist yet."""
    client = ["-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER]
    existing = set(_run([str(bin_dir() / "psql"), *client, "-d", "postgres", "-tAc",
                         "SELECT datname FROM pg_database"]).split())
    for name in names:
        if name not in existing:
            _run([str(bin_dir() / "createdb"), *client, name])


def stop(pid: int) -> None:
    """Fast shutdown (SIGINT to the postmaster: it ends its sessions and stops its own processes)."""
    processes.stop(pid, signal.SIGINT, timeout=60.0, leader_only=True)


def url(port: int, database: str, driver: str = "postgresql+psycopg2") -> str:
    """SQLAlchemy's URL (SQLAlchemy 2.1's plain `postgresql://` means psycopg 3; MLflow gets psycopg2, Prefect
    asyncpg)."""
    return f"{driver}://{SUPERUSER}@127.0.0.1:{port}/{database}"
