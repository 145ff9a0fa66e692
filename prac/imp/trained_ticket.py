"""A retrained ticket's weights, kept beside its ticket.json: round_NN/TRAINED_FILE holds the best-validation weights
the ticket's accuracy is of, under the round's mask, as a sparse state file (prac.artifacts.sparse_state). It is
written before ticket.json, which records its name and sha256: a ticket.json exists only once its weights are on
disk, and the two are verified together (a cached retrain whose weights were lost or damaged runs again)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from prac.artifacts import read_sparse_state, write_sparse_state
from prac.artifacts.refs import ArtifactRef, checked_path, file_sha256
from prac.errors import ArtifactError, one_line
from prac.training.masks import Mask
from prac.training.round_types import StateDict

TRAINED_FILE = "ticket_trained.safetensors"


def write_trained(folder: Path, state: StateDict, mask: Mask) -> dict[str, str]:
    """The ticket's trained weights (any device) as the round folder's TRAINED_FILE; what ticket.json records."""
    return {"file": TRAINED_FILE, "sha256": write_sparse_state(folder / TRAINED_FILE, state, mask)}


def trained_of(ticket: Path) -> tuple[Path, str]:
    """(the trained weights' file, its sha256) that `ticket` (a ticket.json) records."""
    try:
        record = json.loads(ticket.read_text()).get("trained")
    except (OSError, ValueError, AttributeError) as error:
        raise ArtifactError(f"ticket file {ticket}: cannot be read ({one_line(error, 200)})") from None
    if not (isinstance(record, dict) and isinstance(record.get("file"), str) and isinstance(record.get("sha256"), str)
            and Path(record["file"]).name == record["file"]):
        raise ArtifactError(f"ticket file {ticket}: records no trained weights (written by older code: retrain "
                            f"it again)")
    return ticket.parent / record["file"], record["sha256"]


def checked_ticket(ref: ArtifactRef) -> Path:
    """The referenced ticket.json, verified with the trained weights it records: a missing or changed file of
    either is an ArtifactError naming it."""
    ticket = checked_path(ref)
    path, sha256 = trained_of(ticket)
    if not path.is_file():
        raise ArtifactError(f"artifact {path}: file not found")
    if file_sha256(path) != sha256:
        raise ArtifactError(f"artifact {path}: checksum differs from the one {ticket.name} records")
    return ticket


def read_trained(ticket: Path, mask: Mask) -> StateDict:
    """The trained weights `ticket` records (CPU tensors), read and verified: the file's checksum, the file itself,
    and that its mask is the round's `mask`."""
    path, sha256 = trained_of(ticket)
    stored = read_sparse_state(path, expected_sha256=sha256, recorded_by=ticket.name)
    if stored.mask.keys() != mask.keys() or not all(torch.equal(stored.mask[k], mask[k].cpu()) for k in mask):
        raise ArtifactError(f"sparse state file {path}: its mask is not the round's mask.parquet")
    return stored.state
