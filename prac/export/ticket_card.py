"""What an exported ticket is, for whoever loads it without the run folder: the compact trained ticket copied out of
its round folder, and `model.json` beside it (the model, its input and normalisation, the round, sparsity and
accuracy, the files)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prac.artifacts.atomic import atomic_write
from prac.errors import ArtifactError
from prac.imp.context import ExperimentContext
from prac.imp.trained_ticket import TRAINED_FILE, trained_of
from prac.layout.run_paths import run_paths

CARD_FILE = "model.json"
TICKET_FILE = TRAINED_FILE  # the same name as in the round folder: the same file, byte for byte


def model_spec(ctx: ExperimentContext) -> dict[str, object]:
    """prac.models.build_model's arguments that rebuild the experiment's network."""
    channels, size, _ = ctx.data.image_shape
    return {"name": ctx.config.model.name, "in_channels": channels, "num_classes": ctx.data.num_classes,
            "image_size": size, "width": ctx.config.model.width}


def ticket_record(ctx: ExperimentContext, round_index: int) -> dict:
    """The round's ticket.json (its accuracy, where its trained weights are)."""
    path = run_paths(ctx.config).round(round_index) / "ticket.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ArtifactError(f"ticket file {path}: cannot be read ({error})") from None


def copy_ticket(ctx: ExperimentContext, round_index: int, folder: Path) -> Path:
    """The round's trained ticket file, copied into `folder` once its bytes match the checksum ticket.json records."""
    ticket = run_paths(ctx.config).round(round_index) / "ticket.json"
    source, sha256 = trained_of(ticket)
    data = source.read_bytes() if source.is_file() else None
    if data is None or hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactError(f"sparse state file {source}: missing, or its checksum differs from the one {ticket.name} "
                            f"records")
    target = folder / TICKET_FILE
    with atomic_write(target) as tmp:
        tmp.write_bytes(data)
    return target


def model_card(ctx: ExperimentContext, round_index: int, sparsity: float, files: dict[str, str],
               extra: dict | None = None) -> dict:
    """What model.json holds: the model and how to feed it, the ticket it is, the files beside it."""
    channels, height, width = ctx.data.image_shape
    config = ctx.config
    return {
        "model": model_spec(ctx),
        "input": {"shape": ["batch", channels, height, width], "dtype": "float32", "layout": "NCHW",
                  "normalisation": "(pixel / 255 - mean) / std, per channel",
                  "mean": [float(v) for v in ctx.data.mean.flatten()],
                  "std": [float(v) for v in ctx.data.std.flatten()]},
        "classes": ctx.data.num_classes,
        "dataset": config.data.dataset,
        "experiment": {"preset": config.preset, "method": config.method, "seed": config.seed,
                       "fingerprint": ctx.fingerprint},
        "round": round_index,
        "sparsity": sparsity,
        "ticket_test_acc": ticket_record(ctx, round_index).get("ticket_test_acc"),
        "files": files,
        **(extra or {}),
    }


def write_card(folder: Path, card: dict) -> Path:
    path = folder / CARD_FILE
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
    return path
