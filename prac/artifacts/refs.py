"""References to artifact files: what stages pass each other (a path and its checksum, never tensors)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypedDict

from prac.errors import ArtifactError


class ArtifactRef(TypedDict):
    path: str
    sha256: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_ref(path: Path) -> ArtifactRef:
    return {"path": str(path), "sha256": file_sha256(path)}


def checked_path(ref: ArtifactRef) -> Path:
    """The referenced file, verified: a missing or changed file is an error naming it."""
    path = Path(ref["path"])
    if not path.is_file():
        raise ArtifactError(f"artifact {path}: file not found")
    if file_sha256(path) != ref["sha256"]:
        raise ArtifactError(f"artifact {path}: checksum differs from the one recorded when it was written")
    return path
