"""Atomic file writes: a reader sees the old file or the complete new one, never half of one."""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

import torch

from prac.artifacts.storage import storage_cause, storage_error
from prac.errors import ArtifactError, one_line
from prac.hardware.placement import to_cpu


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success fsync it and rename it onto `path`.

    The temporary file lives in the same directory so that `os.replace` is a same-filesystem
    rename (atomic on POSIX). If the body raises, the temporary file is removed and whatever
    was at `path` before is left untouched.
    """
    path = Path(path)
    # pid + random token: concurrent writers (threads, processes) never share a temp file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # data on disk before the rename makes it visible
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        # disk full, read-only...: one line naming the file, with the free space before the partial file goes
        error = storage_error(path, cause) if (cause := storage_cause(exc)) is not None else None
        with contextlib.suppress(OSError):
            tmp.unlink()
        if error is not None:
            raise error from exc
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; best effort, as not every platform can fsync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_torch(path: str | os.PathLike[str], obj: Any) -> None:
    """`torch.save` through `atomic_write`, so a crash mid-save never leaves a corrupt checkpoint. Tensors
    cross to the CPU first (prac.hardware.placement): a file written on a GPU machine reads anywhere."""
    with atomic_write(path) as tmp, open(tmp, "wb") as file:
        torch.save(to_cpu(obj), file)  # a file object: its ENOSPC reaches us (torch's own writer drops the errno)


def load_torch(path: str | os.PathLike[str], *, weights_only: bool = True) -> Any:
    """Load a checkpoint written by `save_torch`, its tensors on the CPU (the caller places them:
    prac.hardware.placement); ArtifactError naming the file if it cannot be read.

    `weights_only=True` (torch's safe loader) accepts tensors, dicts, lists and plain scalars;
    pass False only for trusted files that hold other Python objects.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"checkpoint {path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # torch raises many types for corrupt files; all mean "unreadable"
        raise ArtifactError(f"checkpoint {path}: cannot be read ({one_line(exc)})") from exc
