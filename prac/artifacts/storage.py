"""Writes that fail for want of room or permission (disk full, quota, read-only, access denied): one line that
names the file, its folder and the free space there, instead of the writer's traceback (torch.save, pyarrow,
SQLite and MLflow each word it their own way, some without saying the disk is full)."""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from prac.errors import StorageError, UserError

# What the user can fix and then run the same command again (it resumes from what was written).
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_MAKE_WRITABLE = "make it writable or choose another folder (--output-dir)"
_ADVICE = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space or raise the quota",
           errno.EROFS: "choose a writable folder (--output-dir)", errno.EACCES: _MAKE_WRITABLE,
           errno.EPERM: _MAKE_WRITABLE}


def storage_cause(exc: BaseException) -> OSError | None:
    """The OSError of the storage kind behind `exc` (itself, or its cause or context: torch.save's RuntimeError
    carries the file's ENOSPC as its context), or None. SQLite's "database or disk is full" counts as ENOSPC."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)  # SQLAlchemy keeps the driver's as .orig
    return None


def free_space(folder: Path) -> str:
    """The free space of the file system holding `folder` (or its nearest existing parent), e.g. '48.0 kB'."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "unknown"
    if free < 1000:
        return f"{free:.0f} B"
    for unit in ("kB", "MB", "GB"):
        free /= 1000
        if free < 1000 or unit == "GB":
            break
    return f"{free:.1f} {unit}"


def storage_error(path: str | os.PathLike[str] | None, cause: OSError) -> StorageError:
    """The one-line error for `cause` met while writing `path` (None: the file is the OSError's own, if any)."""
    target = Path(path) if path is not None else Path(cause.filename) if cause.filename else None
    reason = os.strerror(cause.errno).lower() if cause.errno else str(cause)
    advice = _ADVICE.get(cause.errno, "fix it")
    if target is None:
        return StorageError(f"a write failed: {reason}; {advice} and run the same command again (it resumes)")
    return StorageError(f"cannot write {target.name} in {target.parent}: {reason} ({free_space(target.parent)} free "
                        f"there when it failed); {advice} and run the same command again (it resumes)")


@contextlib.contextmanager
def storage_errors_in_one_line() -> Iterator[None]:
    """A failed write anywhere below (MLflow's store and artifacts, Prefect's results: files that are not ours)
    as a StorageError: the CLI prints it as one line (exit 2), a flow run fails with it as its message."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        if (cause := storage_cause(exc)) is None:
            raise
        raise storage_error(None, cause) from exc


F = TypeVar("F", bound=Callable)


def storage_errors_as_user_errors(function: F) -> F:
    """`storage_errors_in_one_line` around a function (a flow: its signature stays the function's)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with storage_errors_in_one_line():
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
