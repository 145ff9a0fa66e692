"""One flow run at a time per experiment folder.

Two processes running the same experiment (one preset, method, seed and settings: one fingerprint) share its
folder, its cached stages and its MLflow parent run. Side by side they overwrite each other's checkpoints and
results (seen: "checksum differs from the one recorded when it was written", the run failing) and may both
create the parent run. The flow takes an exclusive ``flock`` on ``<output>/<preset>/.<fingerprint>.lock`` before
it looks its parent run up and holds it until it ends: a second process waits, saying so once, then finds
every stage cached and completes without training. The kernel drops a killed holder's lock; the file stays,
empty and never written (its time stamps do not change).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prac.settings.config import ExperimentConfig
from prac.layout.run_paths import run_paths


def lock_path(config: ExperimentConfig) -> Path:
    root = run_paths(config).root
    return root.parent / f".{root.name}.lock"


class ExperimentLock:
    """Held from creation until ``release`` (or until the object is collected, or the process ends)."""

    def __init__(self, path: Path, log: Callable[[str], None]):
        self.path = path
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            self._file = None
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a")  # noqa: SIM115 - held open while locked; appending writes nothing
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another process is running this experiment (it holds {path}): waiting for it to end")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        except BaseException:
            self._file.close()
            raise

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file drops the lock
            self._file = None

    def __enter__(self) -> "ExperimentLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def experiment_lock(config: ExperimentConfig, log: Callable[[str], None]) -> ExperimentLock:
    """Wait until no other process runs ``config``'s experiment, then hold it (``release`` when done)."""
    return ExperimentLock(lock_path(config), log)
