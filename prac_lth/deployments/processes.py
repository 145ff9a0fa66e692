"""Background processes of the local stack: started in their own process group with a log file, found and
stopped again by their PID (the group's id), waited for over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens on it at 127.0.0.1, else a port the kernel says is free."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is free
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def start(argv: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> int:
    """Start `argv` detached from this process (a new session, so its group id is its PID and it outlives a
    `stack up` that exits), stdout and stderr appended to `log`; returns the PID."""
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=cwd, start_new_session=True)
    return process.pid


def _reap(pid: int) -> None:
    try:  # a child of this process that exited stays a zombie until waited for
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process, None when there is none (or only a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (None if fields[0] in "ZX" else (fields[0], int(fields[2])))


def identity(pid: int) -> str | None:
    """What tells this process from a later one given the same PID: the boot and its start time (None: gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if fields[0] in "ZX" else f"{boot}:{fields[19]}"


def alive(pid: int) -> bool:
    _reap(pid)
    return _stat(pid) is not None


def group(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (the children a server or worker started, with it)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pgid:
            members.append(int(entry.name))
    return members


def _signal(pid: int, sig: int, leader_only: bool) -> None:
    try:
        if leader_only:
            os.kill(pid, sig)
        else:
            os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) or group(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop(pid: int, sig: int = signal.SIGTERM, timeout: float = 30.0, leader_only: bool = False) -> None:
    """Send `sig` to the process group `pid` leads (to `pid` alone with `leader_only`: a server that stops its
    own children), SIGKILL the group when anything of it is left after `timeout` seconds."""
    _signal(pid, sig, leader_only)
    if _gone_within(pid, timeout):
        return
    _signal(pid, signal.SIGKILL, False)
    if not _gone_within(pid, 10.0):
        raise RuntimeError(f"process {pid} (or its group) did not stop after SIGKILL")


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_http(url: str, pid: int, log: Path, timeout: float) -> None:
    """Until `url` answers 200; fails early, with the log's tail, when process `pid` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if not alive(pid):
            raise RuntimeError(f"process {pid} exited before {url} answered; {log}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s; {log}:\n{log_tail(log)}")
        time.sleep(0.5)
