"""`prac-lth export`: one retrained round's ticket taken out of its run folder, in three forms, each checked.

Into the output folder (default `<run folder>/export/round_RR/`):
  ticket_trained.safetensors  the compact trained ticket (the round's file, copied; prac.artifacts.sparse_state)
  model.json                  what it is: the model, its input and normalisation, round, sparsity, accuracy, files
  ticket.onnx                 the ticket as ONNX (dense shapes, zeros kept, batch dynamic), checked with onnx.checker
                              and run with onnxruntime on the run's test split
  sparse_module.safetensors   the ticket with a CSR weight wherever that measured faster on this CPU at the chosen
                              batch size, dense elsewhere (prac.export.sparse_module; load_sparse_module reads it)
Every measurement runs with torch (and onnxruntime) on `threads` threads; the thread count the caller had is restored
after. The predictions of the ONNX file and of the sparse module (as loaded back from its file) are compared with
the PyTorch ticket's, in float32, on every sample of the test split (prac.export.agreement).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Sequence

import torch
from safetensors.torch import save as save_safetensors
from torch import nn

from prac.errors import UserError
from prac.export.agreement import Agreement, agreement
from prac.export.layer_timing import Timing, layer_input_shapes, machine_load, measure
from prac.export.onnx_export import (INPUT, OUTPUT, OnnxCheck, check_onnx, export_onnx, onnx_logits,
                                     onnx_session, require_export_extra)
from prac.export.sparse_module import (CSR, DENSE, load_sparse_module, module_of, save_sparse_module,
                                       sparse_layer, sparsify)
from prac.export.ticket_card import copy_ticket, model_card, model_spec, ticket_record, write_card
from prac.imp.context import ExperimentContext
from prac.imp.ticket import LayerSparsity, Source, layer_sparsity, load_ticket, ticket_context, total_sparsity
from prac.layout.run_paths import run_paths
from prac.run_layout import round_folder
from prac.training.evaluate import EVAL_BATCH, logits

ONNX_FILE = "ticket.onnx"
SPARSE_FILE = "sparse_module.safetensors"
DEFAULT_THREADS = 2
DEFAULT_BATCH = 256  # the batch size formats are chosen for: throughput of offline inference (--batch 1: latency)
TABLE_BATCHES = (1, 256)  # every layer and the network are timed at these (and at the chosen batch)
DEFAULT_MEASURE_TIME = 0.5  # seconds each measurement runs at least (blocked_autorange's min_run_time)
# A layer turns sparse only where its CSR kernel's median beats the dense layer's by more than this fraction: a
# closer call is within the run-to-run spread of a shared CPU, and the dense layer is the simpler of two equals.
SPARSE_MARGIN = 0.10
Force = Literal["sparse", "dense"] | None


@dataclass(frozen=True)
class LayerChoice:
    """One prunable weight: its sparsity, the layout the sparse module holds it in and why, its timings."""

    layer: str  # the parameter's name (features.conv2.weight)
    type: str  # conv, linear, output (prac.training.masks.layer_types)
    sparsity: float
    format: str  # dense or csr
    why: str
    dense: dict[int, Timing]  # batch size -> the dense layer's time
    sparse: dict[int, Timing]  # batch size -> its CSR counterpart's time (empty: no sparse kernel for this layer)


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    round: int
    sparsity: float  # of the ticket's prunable weights, counted from its zeros
    batch: int  # the batch size the formats were chosen for
    threads: int
    measure_time: float
    layers: list[LayerChoice]
    sizes: dict[str, int]  # bytes: dense float32 state dict, and each file written
    latency: dict[int, dict[str, Timing]]  # batch -> {dense, sparse, onnx}: the whole network
    onnx_check: OnnxCheck
    onnx: Agreement  # the ONNX file (onnxruntime) against the PyTorch ticket on the test split
    sparse: Agreement  # the sparse module, loaded back from its file, against the PyTorch ticket
    test_acc: float  # the PyTorch ticket's accuracy on the test split, float32
    ticket_test_acc: float | None  # what the round's ticket.json records, measured in the run's precision
    precision: str  # the run's precision (float32 or bfloat16 autocast): why the two accuracies may differ
    files: dict[str, Path]
    load: tuple[float, int] | None  # (1-minute load average, CPUs) as the timings ended (layer_timing.machine_load)


def export_ticket(source: Source, round_index: int | None = None, sparsity: float | None = None,
                  out: str | Path | None = None, threads: int = DEFAULT_THREADS, batch: int = DEFAULT_BATCH,
                  measure_time: float = DEFAULT_MEASURE_TIME, force: Force = None,
                  batches: Sequence[int] = TABLE_BATCHES) -> ExportResult:
    """Export round `round_index`'s trained ticket (or, given `sparsity`, that of the retrained round whose
    sparsity is nearest it) of the run at `source`. `force` (tests): every layer sparse (where a kernel exists) or
    dense, whatever the timings say; `batches`: the batch sizes timed besides `batch` (tests: small ones, as a
    CSR convolution at batch 256 takes seconds). Bad input is a UserError (one line)."""
    if (round_index is None) == (sparsity is None):
        raise UserError("export: give the round (--round R) or a sparsity (--sparsity S), one of the two")
    if sparsity is not None and not 0.0 <= sparsity <= 1.0:  # NaN too
        raise UserError(f"--sparsity must be between 0 and 1, got {sparsity}")
    for flag, value in (("--threads", threads), ("--batch", batch)):
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if not measure_time > 0:
        raise UserError(f"--measure-time must be a positive number of seconds, got {measure_time}")
    if force not in (None, "sparse", "dense"):
        raise ValueError(f"export_ticket: force must be None, 'sparse' or 'dense', got {force!r}")
    require_export_extra()  # before the run's data is loaded: a missing extra is said first, in one line
    previous_threads = torch.get_num_threads()  # building the context sets the run's own
    try:
        ctx = ticket_context(source)
        chosen = round_index if sparsity is None else nearest_round(ctx, sparsity)
        check_has_ticket(ctx, chosen)
        ticket = load_ticket(ctx, chosen, trained=True)  # a round out of range, not retrained, damaged: one line
        folder = Path(out) if out is not None else default_folder(ctx, chosen)
        if folder.exists() and not folder.is_dir():
            raise UserError(f"--out {folder}: exists and is not a folder")
        torch.set_num_threads(threads)
        return _export(ctx, chosen, ticket, folder, threads, batch, sorted({*batches, batch}), measure_time, force)
    finally:
        torch.set_num_threads(previous_threads)


def default_folder(ctx: ExperimentContext, round_index: int) -> Path:
    root = run_paths(ctx.config).root
    return root / "export" / round_folder(root, round_index).name


def retrained_rounds(ctx: ExperimentContext) -> list[int]:
    """The rounds of the run whose trained ticket is on disk (their ticket.json written)."""
    paths = run_paths(ctx.config)
    return [r for r in range(ctx.config.prune.rounds) if (paths.round(r) / "ticket.json").is_file()]


def check_has_ticket(ctx: ExperimentContext, round_index: int) -> None:
    """A round of the run without a trained ticket, said as the export's user needs it: which rounds have one.
    (A round out of range, or a ticket.json whose weights are lost, load_ticket says itself.)"""
    if 0 <= round_index < ctx.config.prune.rounds and round_index not in (rounds := retrained_rounds(ctx)):
        have = ", ".join(map(str, rounds)) or "none"
        raise UserError(f"round {round_index}: no trained ticket in {run_paths(ctx.config).root} (not retrained, "
                        f"runtime.evaluate_tickets={ctx.config.runtime.evaluate_tickets}, or its retrain has not "
                        f"finished); rounds that have one: {have}")


def nearest_round(ctx: ExperimentContext, sparsity: float) -> int:
    """The retrained round whose mask's sparsity is nearest `sparsity` (the earlier of two as near)."""
    rounds = retrained_rounds(ctx)
    if not rounds:
        raise UserError(f"{run_paths(ctx.config).root}: no round has a trained ticket (runtime.evaluate_tickets="
                        f"{ctx.config.runtime.evaluate_tickets}, or its retrains have not finished)")
    sparsities = ctx.round_sparsities()
    return min(rounds, key=lambda r: (abs(sparsities[r] - sparsity), r))


def _export(ctx: ExperimentContext, round_index: int, ticket: nn.Module, folder: Path, threads: int, batch: int,
            batches: list[int], measure_time: float, force: Force) -> ExportResult:
    data = replace(ctx.data, autocast=None)  # float32 throughout: what the ONNX file and the sparse module compute
    split = data.test

    def test_batches():
        return (data.prepare(split.images[start:start + EVAL_BATCH], None, False)
                for start in range(0, len(split), EVAL_BATCH))

    layers = layer_sparsity(ticket)
    files = {"ticket": copy_ticket(ctx, round_index, folder)}
    reference = logits(ticket, split, data, False)
    test_acc = float((reference.argmax(dim=1) == split.labels).float().mean())

    files["onnx"] = export_onnx(ticket, data.image_shape, folder / ONNX_FILE)
    onnx_check = check_onnx(files["onnx"])
    session = onnx_session(files["onnx"], threads)
    onnx_agreement = agreement(reference, onnx_logits(session, test_batches()))

    sample = data.prepare(split.images[:1], None, False)
    choices = choose_formats(ticket, layers, sample, batches, batch, threads, measure_time, force)
    formats = {choice.layer: choice.format for choice in choices}
    files["sparse_module"] = save_sparse_module(folder / SPARSE_FILE, sparsify(ticket, formats), formats,
                                                model_spec(ctx))
    sparse_model = load_sparse_module(files["sparse_module"])  # what a user loads is what is measured
    sparse_agreement = agreement(reference, logits(sparse_model, split, data, False))

    latency = {}
    for size in batches:
        inputs = data.prepare(split.images[torch.arange(size) % len(split)], None, False)
        feed = {INPUT: inputs.numpy()}
        latency[size] = {"dense": measure(lambda: ticket(inputs), threads, measure_time),
                         "sparse": measure(lambda: sparse_model(inputs), threads, measure_time),
                         "onnx": measure(lambda: session.run([OUTPUT], feed), threads, measure_time)}

    sparsity = total_sparsity(layers)
    record = ticket_record(ctx, round_index)
    names = {kind: path.name for kind, path in files.items()}
    card = model_card(ctx, round_index, sparsity, names, extra={
        "sparse_module": {"formats": formats, "chosen_for_batch": batch, "threads": threads},
        "checks": {"test_samples": len(split), "test_acc_float32": test_acc,
                   "onnx_agreement": onnx_agreement.fraction, "sparse_module_agreement": sparse_agreement.fraction,
                   "onnx_opset": onnx_check.opset}})
    files["card"] = write_card(folder, card)
    sizes = {"dense_state": len(save_safetensors({k: v.contiguous() for k, v in ticket.state_dict().items()})),
             **{kind: path.stat().st_size for kind, path in files.items()}}
    return ExportResult(folder=folder, round=round_index, sparsity=sparsity, batch=batch, threads=threads,
                        measure_time=measure_time, layers=choices, sizes=sizes, latency=latency,
                        onnx_check=onnx_check, onnx=onnx_agreement, sparse=sparse_agreement, test_acc=test_acc,
                        ticket_test_acc=record.get("ticket_test_acc"), files=files,
                        precision=str(ctx.data.autocast or torch.float32).removeprefix("torch."),
                        load=machine_load())


def choose_formats(model: nn.Module, layers: list[LayerSparsity], sample: torch.Tensor, batches: list[int],
                   batch: int, threads: int, measure_time: float, force: Force) -> list[LayerChoice]:
    """Per prunable weight: its layer alone, dense and as its CSR counterpart, timed on inputs of the shape it sees
    in the network at each batch size; csr where that is faster at `batch` by more than SPARSE_MARGIN (or `force`)."""
    shapes = layer_input_shapes(model, sample, [module_of(row.layer) for row in layers])
    generator = torch.Generator().manual_seed(0)
    choices = []
    for row in layers:
        name = module_of(row.layer)
        dense_layer = model.get_submodule(name)
        candidate = sparse_layer(dense_layer)
        dense, sparse = {}, {}
        for size in batches:
            inputs = torch.randn(size, *shapes[name][1:], generator=generator)
            dense[size] = measure(lambda layer=dense_layer, x=inputs: layer(x), threads, measure_time)
            if candidate is not None:
                sparse[size] = measure(lambda layer=candidate, x=inputs: layer(x), threads, measure_time)
        layout, why = _decide(candidate is not None, dense[batch], sparse.get(batch), batch, force)
        choices.append(LayerChoice(row.layer, row.type, row.sparsity, layout, why, dense, sparse))
    return choices


def _decide(has_kernel: bool, dense: Timing, sparse: Timing | None, batch: int, force: Force) -> tuple[str, str]:
    if not has_kernel:
        return DENSE, "no sparse kernel for this layer"
    if force is not None:
        return (CSR if force == "sparse" else DENSE), "forced"
    if sparse.median < dense.median * (1 - SPARSE_MARGIN):
        return CSR, f"faster at batch {batch}"
    return DENSE, f"not {SPARSE_MARGIN:.0%} faster at batch {batch}"
