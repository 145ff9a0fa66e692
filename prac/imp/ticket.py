"""The ticket a user takes away, as a plain `nn.Module` on the CPU, and its per-layer sparsity counted from its
zeros. By default round r's mask applied to the weights the experiment's tickets start from (θ_rewind of the shared
round 0; a fresh initialisation for random-reinit), untrained; `trained=True`: the ticket as its retrain left it,
the best-validation weights its `ticket_test_acc` is of (rounds whose ticket was retrained only:
runtime.evaluate_tickets).

    from prac.imp.ticket import load_ticket, layer_sparsity
    ticket = load_ticket("prac-runs/digits/<fingerprint>", 7)                # or its ExperimentConfig
    trained = load_ticket("prac-runs/digits/<fingerprint>", 7, trained=True)

The model's class and sizes come from the experiment's config and dataset (loaded on the CPU for its
shape and classes); the weights from the run's files, verified on read: `round_NN/mask.parquet` and round 0's
`train.pt`, or, trained, `round_NN/ticket.json` and the weights file it records (prac.imp.trained_ticket), whose
mask must be the round's.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from prac.artifacts import atomic_write, read_mask
from prac.settings.config import ExperimentConfig
from prac.imp.context import ExperimentContext, build_context
from prac.imp.imp_loop import ticket_rounds
from prac.imp.trained_ticket import read_trained
from prac.errors import ArtifactError, UserError, one_line
from prac.training.masks import Mask, layer_types, prunable_parameters
from prac.models import build_model
from prac.hardware.placement import to_cpu
from prac.training.round_file import load_round
from prac.training.round_types import StateDict
from prac.layout.run_paths import run_paths
from prac.imp.stages import ticket_start_state as stage_ticket_start_state
from prac.training.train import load_start_state

SPARSITY_FILE = "ticket_sparsity.json"
# Where a ticket is read from: a run folder, its config, or the stages' context (data already loaded).
Source = str | Path | ExperimentConfig | ExperimentContext


@dataclass(frozen=True)
class LayerSparsity:
    layer: str  # the parameter's name, as in mask.parquet
    type: str  # conv, linear (hidden) or output (prac.training.masks.layer_types)
    numel: int
    zeros: int
    sparsity: float


def load_ticket(source: Source, round_index: int, trained: bool = False) -> nn.Module:
    """Round `round_index`'s ticket of an experiment (its run folder, config or context): m ⊙ θ_start, or with
    `trained` the retrained ticket's best-validation weights; the project's model class, eval mode, on the CPU."""
    ctx = ticket_context(source)
    model, mask = new_cpu_model(ctx), ticket_mask(ctx, round_index)
    check_mask_fits(model, mask, run_paths(ctx.config).round(round_index) / "mask.parquet", ctx.config)
    if trained:
        return build_trained_ticket(ctx, round_index, model, mask)
    return build_ticket(model, ticket_start_state(ctx), mask)


def build_trained_ticket(ctx: ExperimentContext, round_index: int, model: nn.Module, mask: Mask) -> nn.Module:
    """`model` holding the round's trained ticket: the weights its ticket.json records, their mask the round's."""
    ticket = run_paths(ctx.config).round(round_index) / "ticket.json"
    if not ticket.is_file():
        if round_index not in ticket_rounds(ctx.config, ctx.round_sparsities()):
            raise UserError(f"round {round_index}: its ticket was not retrained (runtime.evaluate_tickets="
                            f"{ctx.config.runtime.evaluate_tickets}), so it has no trained weights; load_ticket "
                            f"without trained=True gives its untrained start")
        raise ArtifactError(f"ticket file {ticket}: not found (has round {round_index}'s retrain finished?)")
    state = read_trained(ticket, mask)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # tensors other than the model's: another architecture's weights
        raise ArtifactError(f"trained weights of {ticket}: they do not fit {type(model).__name__} "
                            f"({one_line(error, 300)})") from None
    return model.eval()


def check_mask_fits(model: nn.Module, mask: Mask, path: Path, config: ExperimentConfig) -> None:
    """The mask names exactly the model's prunable weights, each in its shape (a mask of another architecture
    or layer set is refused, naming the file)."""
    prunable = prunable_parameters(model)
    expected = {name: tuple(p.shape) for name, p in prunable.items()}
    found = {name: tuple(t.shape) for name, t in mask.items()}
    if found.keys() != expected.keys():
        other = sorted(found.keys() ^ expected.keys())
        raise ArtifactError(f"mask file {path}: its layers are not the prunable weights of {config.model.name} "
                            f"(differ in {', '.join(other[:4])}{', ...' if len(other) > 4 else ''})")
    for name, shape in expected.items():
        if found[name] != shape:
            raise ArtifactError(f"mask file {path}: layer {name} has shape {list(found[name])}, "
                                f"{config.model.name}'s weight {list(shape)}")


def build_ticket(model: nn.Module, start_state: StateDict, mask: Mask) -> nn.Module:
    return load_start_state(model, start_state, mask).eval()


def ticket_start_state(ctx: ExperimentContext) -> StateDict:
    """The weights every ticket of the experiment starts from, on the CPU: the rule the retrain stage
    follows (prac.imp.stages.ticket_start_state: θ_rewind of round 0, or the method's fresh initialisation)."""
    path = run_paths(ctx.config).shared_round0 / "train.pt"
    rewind = load_round(path).rewind_state
    if rewind is None:
        raise ArtifactError(f"round 0 file {path}: holds no rewind point")
    return to_cpu(stage_ticket_start_state(ctx, rewind))


def ticket_start_name(ctx: ExperimentContext) -> str:
    return f"theta_{ctx.method.ticket_start.name}"  # theta_rewind or theta_reinit


def ticket_mask(ctx: ExperimentContext, round_index: int) -> Mask:
    """The mask round `round_index` produced (CPU bool tensors), checked against the experiment."""
    config = ctx.config
    if not 0 <= round_index < config.prune.rounds:
        raise UserError(f"round {round_index}: the experiment has rounds 0..{config.prune.rounds - 1}")
    path = run_paths(config).round(round_index) / "mask.parquet"
    if not path.is_file():
        raise ArtifactError(f"mask file {path}: not found (has round {round_index} finished?)")
    return read_mask(path, expected_fingerprint=ctx.fingerprint).mask


def new_cpu_model(ctx: ExperimentContext) -> nn.Module:
    """A fresh CPU module of the project's model class (not ctx.new_model(): that one lives on the training
    device and, with runtime.compile, is the experiment's one compiled module). Its initial weights are
    overwritten, so drawing them must not move the caller's global RNG."""
    channels, size, _ = ctx.data.image_shape
    with torch.random.fork_rng(devices=[]):
        return build_model(ctx.config.model.name, in_channels=channels, num_classes=ctx.data.num_classes,
                           image_size=size, width=ctx.config.model.width)


def ticket_context(source: Source) -> ExperimentContext:
    if isinstance(source, ExperimentContext):
        return source
    config = source if isinstance(source, ExperimentConfig) else _config_of_run_folder(Path(source))
    runtime = config.runtime.model_copy(update={"device": "cpu", "compile": False, "download": False})
    return build_context(config.model_copy(update={"runtime": runtime}))


def _config_of_run_folder(folder: Path) -> ExperimentConfig:
    """The config of `<output_dir>/<preset>/<fingerprint>`, its output_dir pointing where the folder is
    now (a run folder may be read from another working directory, or after being moved)."""
    path = folder / "config.json"
    if not path.is_file():
        raise ArtifactError(f"{folder}: not a run folder (no config.json)")
    try:
        stored = json.loads(path.read_text())
        # what config.json holds besides the config: the names the run was found by (prac.imp.imp_steps.prepare_run)
        fields = {k: v for k, v in stored.items() if k not in ("fingerprint", "round0_fingerprint", "code_version",
                                                               "data_digest")}
        fields["runtime"] = {**fields.get("runtime", {}), "output_dir": str(folder.resolve().parent.parent)}
        config = ExperimentConfig.model_validate(fields)
    except (OSError, ValueError, AttributeError, TypeError) as error:  # pydantic's ValidationError is a ValueError
        raise ArtifactError(f"{path}: not a run's config ({one_line(error, 300)})") from None
    if run_paths(config).root != folder.resolve():
        raise ArtifactError(f"{folder}: its config.json describes the run {run_paths(config).root.name}, "
                            f"not this folder")
    return config


def layer_sparsity(model: nn.Module) -> list[LayerSparsity]:
    """Per prunable tensor (every conv and linear weight, prac.training.masks), its layer type and its weights
    that are exactly zero: measured on the model, whatever mask or rate it was meant to have."""
    types = layer_types(model)
    rows = []
    for name, weight in prunable_parameters(model).items():
        zeros = int((weight.detach() == 0).sum())
        rows.append(LayerSparsity(name, types[name], weight.numel(), zeros, zeros / weight.numel()))
    return rows


def total_sparsity(layers: list[LayerSparsity]) -> float:
    return sum(row.zeros for row in layers) / sum(row.numel for row in layers)


def sparsity_report(ctx: ExperimentContext, round_index: int, layers: list[LayerSparsity]) -> dict:
    """What round_NN/ticket_sparsity.json holds."""
    return {"fingerprint": ctx.fingerprint, "round": round_index,
            "ticket": f"mask applied to {ticket_start_name(ctx)}",
            "numel": sum(row.numel for row in layers), "zeros": sum(row.zeros for row in layers),
            "sparsity": total_sparsity(layers), "layers": [asdict(row) for row in layers]}


def write_sparsity_report(ctx: ExperimentContext, round_index: int, layers: list[LayerSparsity]) -> Path:
    """round_NN/ticket_sparsity.json, written atomically; left untouched when it already says the same
    (a re-run from cache rewrites no stage file)."""
    path = run_paths(ctx.config).round(round_index) / SPARSITY_FILE
    text = json.dumps(sparsity_report(ctx, round_index, layers), indent=2)
    if not (path.is_file() and path.read_text() == text):
        with atomic_write(path) as tmp:
            tmp.write_text(text)
    return path


def report_ticket(ctx: ExperimentContext, round_index: int) -> tuple[nn.Module, list[LayerSparsity]]:
    """The round's ticket and its per-layer sparsity, the report written beside the round's files."""
    ticket = load_ticket(ctx, round_index)
    layers = layer_sparsity(ticket)
    write_sparsity_report(ctx, round_index, layers)
    return ticket, layers
