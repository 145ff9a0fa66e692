"""Benchmark 12: inference of a ticket on the CPU: dense, masked-dense and the exported sparse module, per sparsity.

    .venv/bin/python bench/inference.py [--quick] [--threads 2] [--models lenet300,conv4] [--batches 1,256]
        [--every N] [--rounds 0,7,14] [--measure-time S] [--run RUN_FOLDER] [--out table.md|table.csv]

Per ticket (one per IMP round of the model's preset, bench/inference_tickets.py) and batch size, four forms of the
same network timed in one process, each the median of torch.utils.benchmark's blocks (prac.export.layer_timing):
  dense         the network with every weight (the baseline every ratio is against, measured in the same run)
  masked-dense  the ticket as training leaves it: zeros in the weights, dense kernels
  export        the module `prac-lth export --batch B` would write: each layer CSR where choose_formats measured
                it more than 10 % faster than dense at this batch size, dense elsewhere (force=None)
  all-CSR       every layer that has a CSR kernel forced CSR
Ratios are dense / form (above 1: faster than dense). The inputs are random Fashion-MNIST-shaped tensors and, without
--run, the weights untrained: times depend on the shapes and on where the zeros are, not on the values. The sparse
forms' predictions are checked against masked-dense on AGREEMENT_SAMPLES inputs. Target (issue 41): at >= 90 %
sparsity the exported LeNet-300-100 ticket at least 2x faster than dense at batch 1; peer: PR #51647's figures.
Exit status 1 when a sparse form disagrees with masked-dense, or (full run with LeNet) the target is missed.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

import common
from inference_tickets import PRESETS, Ticket, imp_tickets, preset_rounds, run_context, run_rounds, run_tickets
from prac.export.export_run import choose_formats
from prac.export.layer_timing import measure
from prac.export.sparse_module import CSR, DENSE, module_of, sparsify
from prac.imp.ticket import layer_sparsity

DEFAULT_MODELS = ("lenet300", "conv4")
DEFAULT_BATCHES = (1, 256)
EVERY = {"lenet300": 1, "conv2": 2, "conv4": 4}  # every Nth round: Conv-4's CSR convolutions are slow to time
QUICK_EVERY = 7
DEFAULT_MEASURE_TIME = 0.1  # seconds per measurement: the full default run stays under about 8 minutes
QUICK_MEASURE_TIME = 0.01
AGREEMENT_SAMPLES = 64
TARGET = (0.90, 2.0)  # (sparsity from which, speed-up over dense) of the exported LeNet-300-100 at batch 1
# pytorch/pytorch PR #51647 (DLMC magnitude-pruning matrices, CPU, 1 thread): torch's sparse@sparse matmul against
# dense@dense, 104.7 -> 53.7 ms at 90 % and 104.3 -> 25.3 ms at 95 % sparsity.
PEER = {0.90: 104.7 / 53.7, 0.95: 104.3 / 25.3}
FORMS = ("dense", "masked-dense", "export", "all-CSR")
# torch warns once that its CSR layout is beta: known, and nothing the reader of the table can act on
CSR_BETA_WARNING = "Sparse CSR tensor support is in beta"


@dataclass(frozen=True)
class Row:
    model: str
    round: int
    sparsity: float
    batch: int
    weights: str
    median: dict[str, float]  # form -> seconds per forward pass
    iqr: dict[str, float]
    csr_layers: list[str]  # the layers the export holds in CSR (its choice at this batch size)
    layers: int  # prunable layers in the network
    agreement: float  # the fewest of the sparse forms' predictions equal to masked-dense's, as a fraction
    max_diff: float  # the largest |logit difference| of a sparse form against masked-dense
    layer_dense: dict[str, float]  # layer -> seconds, timed alone by choose_formats (dense)
    layer_csr: dict[str, float]  # layer -> seconds as CSR (layers with a CSR kernel)

    def ratio(self, form: str) -> float:
        return self.median["dense"] / self.median[form]

    def ceiling(self) -> float:
        """How much faster than dense the network could get if its prunable layers took no time at all: the rest
        (activations, pooling, flattening, the calls themselves) is what any per-layer sparse kernel leaves."""
        rest = self.median["dense"] - sum(self.layer_dense.values())
        return self.median["dense"] / rest if rest > 0 else float("inf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="every 7th round, short measurements: a smoke test")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every measurement (default 2)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated, of " + ",".join(PRESETS))
    parser.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="comma-separated batch sizes")
    parser.add_argument("--every", type=int, default=None, help="every Nth round (default: per model, see EVERY)")
    parser.add_argument("--rounds", default=None, help="comma-separated rounds (instead of --every)")
    parser.add_argument("--measure-time", type=float, default=None,
                        help=f"seconds each measurement runs at least (default {DEFAULT_MEASURE_TIME})")
    parser.add_argument("--run", type=Path, default=None, help="a run folder: its rounds' masks (and trained "
                                                               "tickets) instead of pruning fresh networks")
    parser.add_argument("--out", type=Path, default=None, help="write the table here: CSV for .csv, else Markdown")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batches.split(",") if b.strip()]
        args.round_list = None if args.rounds is None else [int(r) for r in args.rounds.split(",") if r.strip()]
    except ValueError:
        parser.error("--batches and --rounds take comma-separated integers")
    args.model_names = [m for m in args.models.split(",") if m]
    if unknown := [m for m in args.model_names if m not in PRESETS]:
        parser.error(f"unknown models {unknown} (known: {', '.join(PRESETS)})")
    if args.threads < 1 or not args.batch_sizes or min(args.batch_sizes) < 1 or (args.every or 1) < 1:
        parser.error("--threads, --batches and --every must be positive")
    if args.measure_time is None:
        args.measure_time = QUICK_MEASURE_TIME if args.quick else DEFAULT_MEASURE_TIME
    args.device = "cpu"  # common.start describes it; the CSR kernels timed here are the CPU's (MKL)
    return args


def chosen_rounds(available: list[int], every: int, explicit: list[int] | None) -> list[int]:
    """Every `every`th of `available` from the first, the last always; or the rounds asked for."""
    if explicit is not None:
        return [r for r in explicit if r in available]
    picked = available[::every]
    return picked + ([available[-1]] if available and available[-1] not in picked else [])


def tickets(args: argparse.Namespace):
    if args.run is not None:
        ctx = run_context(args.run)
        yield from run_tickets(ctx, chosen_rounds(run_rounds(ctx), args.every or 1, args.round_list))
        return
    for model in args.model_names:
        every = args.every or (QUICK_EVERY if args.quick else EVERY[model])
        yield from imp_tickets(model, chosen_rounds(list(range(preset_rounds(model))), every, args.round_list))


@torch.no_grad()
def agreement(reference: torch.nn.Module, others: list[torch.nn.Module], inputs: torch.Tensor) -> tuple[float, float]:
    """The lowest fraction of argmax predictions equal to the reference's, and the largest |logit difference|."""
    expected = reference(inputs)
    fractions, diffs = [], []
    for other in others:
        got = other(inputs)
        fractions.append(float((got.argmax(1) == expected.argmax(1)).float().mean()))
        diffs.append(float((got - expected).abs().max()))
    return min(fractions), max(diffs)


def measure_ticket(ticket: Ticket, batch: int, args: argparse.Namespace, generator: torch.Generator) -> Row:
    inputs = torch.randn(batch, *ticket.image_shape, generator=generator)
    choices = choose_formats(ticket.masked, layer_sparsity(ticket.masked), inputs[:1], [batch], batch,
                             args.threads, args.measure_time, None)
    export = {c.layer: c.format for c in choices}
    every_csr = {c.layer: CSR if c.sparse else DENSE for c in choices}  # c.sparse empty: no CSR kernel
    nets = {"dense": ticket.dense, "masked-dense": ticket.masked, "export": sparsify(ticket.masked, export),
            "all-CSR": sparsify(ticket.masked, every_csr)}
    timings = {form: measure(lambda net=net: net(inputs), args.threads, args.measure_time)
               for form, net in nets.items()}
    check = torch.randn(AGREEMENT_SAMPLES, *ticket.image_shape, generator=generator)
    agree, diff = agreement(ticket.masked, [nets["export"], nets["all-CSR"]], check)
    return Row(ticket.model, ticket.round, ticket.sparsity, batch, ticket.weights,
               {f: t.median for f, t in timings.items()}, {f: t.iqr for f, t in timings.items()},
               [module_of(layer) for layer, layout in export.items() if layout == CSR], len(choices), agree, diff,
               {module_of(c.layer): c.dense[batch].median for c in choices},
               {module_of(c.layer): c.sparse[batch].median for c in choices if c.sparse})


def microseconds(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}" if seconds >= 1e-4 else f"{seconds * 1e6:,.1f}"


HEADERS = ["model", "round", "sparsity", "batch", "dense µs", "masked-dense µs (x)", "export µs (x)",
           "export CSR layers", "all-CSR µs (x)", "agreement", "max |Δlogit|"]


def markdown_row(row: Row) -> list[str]:
    def timed(form: str) -> str:
        return f"{microseconds(row.median[form])} ({row.ratio(form):.2f}x)"
    csr = f"{len(row.csr_layers)}/{row.layers}" + (f" ({','.join(row.csr_layers)})" if row.csr_layers else "")
    return [row.model, str(row.round), f"{row.sparsity:.1%}", str(row.batch), microseconds(row.median["dense"]),
            timed("masked-dense"), timed("export"), csr, timed("all-CSR"), f"{row.agreement:.3f}",
            f"{row.max_diff:.1e}"]


def write_table(path: Path, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix != ".csv":
        path.write_text(common.table(HEADERS, [markdown_row(r) for r in rows]) + "\n")
        return
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "round", "sparsity", "batch", "weights"]
                        + [f"{f}_median_s" for f in FORMS] + [f"{f}_iqr_s" for f in FORMS]
                        + [f"{f}_speedup" for f in FORMS[1:]] + ["export_csr_layers", "layers", "agreement",
                                                                 "max_abs_diff", "layer_dense_s", "layer_csr_s",
                                                                 "ceiling"])
        for r in rows:
            writer.writerow([r.model, r.round, f"{r.sparsity:.6f}", r.batch, r.weights]
                            + [f"{r.median[f]:.9f}" for f in FORMS] + [f"{r.iqr[f]:.9f}" for f in FORMS]
                            + [f"{r.ratio(f):.4f}" for f in FORMS[1:]]
                            + [" ".join(r.csr_layers), r.layers, f"{r.agreement:.6f}", f"{r.max_diff:.3e}",
                               _layer_times(r.layer_dense), _layer_times(r.layer_csr), f"{r.ceiling():.3f}"])


def _layer_times(times: dict[str, float]) -> str:
    return " ".join(f"{layer}={seconds:.9f}" for layer, seconds in times.items())


def layer_lines(rows: list[Row]) -> list[str]:
    """Per model and batch, the sparsest ticket's layers alone (dense against CSR), and the network's ceiling."""
    lines = []
    for model, batch in dict.fromkeys((r.model, r.batch) for r in rows):
        row = max((r for r in rows if (r.model, r.batch) == (model, batch)), key=lambda r: r.sparsity)
        layers = ", ".join(f"{layer} {microseconds(dense)} vs {microseconds(row.layer_csr[layer])} "
                           f"({dense / row.layer_csr[layer]:.2f}x)"
                           for layer, dense in row.layer_dense.items() if layer in row.layer_csr)
        lines.append(f"{model}, batch {batch}, {row.sparsity:.1%}: layers alone, dense vs CSR µs: {layers}; "
                     f"with its prunable layers free the network would be at most {row.ceiling():.2f}x dense")
    return lines


def dense_below(rows: list[Row]) -> list[str]:
    """Per model and batch: the sparsities at which the export kept every layer dense, and where it chose CSR."""
    lines = []
    for model, batch in dict.fromkeys((r.model, r.batch) for r in rows):
        group = sorted((r for r in rows if (r.model, r.batch) == (model, batch)), key=lambda r: r.sparsity)
        dense = [r for r in group if not r.csr_layers]
        sparse = [r for r in group if r.csr_layers]
        where = (f"CSR from {sparse[0].sparsity:.1%} ({','.join(sparse[0].csr_layers)})" if sparse
                 else "no layer CSR at any sparsity measured")
        kept = f"every layer dense at {len(dense)} of {len(group)} tickets" + (
            f" (up to {dense[-1].sparsity:.1%})" if dense else "")
        lines.append(f"{model}, batch {batch}: {kept}; {where}")
    return lines


def target_check(rows: list[Row]) -> tuple[str, bool | None]:
    """The issue's target on the rows: LeNet-300-100, batch 1, every ticket at >= 90 % sparsity."""
    sparsity, speedup = TARGET
    hit = [r for r in rows if r.model == "lenet300" and r.batch == 1 and r.sparsity >= sparsity]
    if not hit:
        return f"target (LeNet-300-100 >= {speedup}x at batch 1, >= {sparsity:.0%}): no such ticket measured", None
    met = all(r.ratio("export") >= speedup for r in hit)
    figures = ", ".join(f"{r.sparsity:.1%} {r.ratio('export'):.2f}x" for r in hit)
    return (f"target (exported LeNet-300-100 >= {speedup}x dense at batch 1 from {sparsity:.0%}): "
            f"{'met' if met else 'MISSED'} ({figures})"), met


def peer_lines(rows: list[Row], threads: int) -> list[str]:
    """Our LeNet-300-100 batch-1 tickets nearest PR #51647's sparsities, beside its figures."""
    lenet = [r for r in rows if r.model == "lenet300" and r.batch == 1]
    lines = []
    for sparsity, peer in PEER.items():
        if lenet:
            near = min(lenet, key=lambda r: abs(r.sparsity - sparsity))
            lines.append(f"PR #51647 at {sparsity:.0%}: {peer:.2f}x (sparse@sparse, 1 thread); ours at "
                         f"{near.sparsity:.1%}: export {near.ratio('export'):.2f}x, all-CSR "
                         f"{near.ratio('all-CSR'):.2f}x (LeNet-300-100, batch 1, {threads} threads)")
    return lines


def summary_line(rows: list[Row], threads: int) -> str:
    parts = []
    for model in dict.fromkeys(r.model for r in rows):
        last = max((r for r in rows if r.model == model and r.batch == min(x.batch for x in rows)),
                   key=lambda r: r.sparsity)
        parts.append(f"{model} {last.ratio('export'):.2f}x at {last.sparsity:.1%}")
    batch = min(r.batch for r in rows)
    return (f"export speed-up over dense (cpu, {threads} threads, batch {batch}, the sparsest ticket): "
            + ", ".join(parts))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=CSR_BETA_WARNING)
    common.start(args, "Inference on the CPU: dense, masked-dense and the exported sparse module per sparsity")
    print(f"batches {args.batch_sizes}; measure time {args.measure_time} s per measurement (median of blocks); "
          f"inputs random {'' if args.run else 'and weights untrained (times depend on the zeros, not the values)'}"
          .rstrip())
    started, rows = time.perf_counter(), []
    generator = torch.Generator().manual_seed(0)
    for ticket in tickets(args):
        for batch in args.batch_sizes:
            rows.append(measure_ticket(ticket, batch, args, generator))
            print(" | ".join(markdown_row(rows[-1])), flush=True)
    if not rows:
        print("no ticket to measure (no round chosen)", file=sys.stderr)
        return 2
    print()
    print(common.table(HEADERS, [markdown_row(r) for r in rows]))
    print(f"x: dense / form, measured side by side in this run; agreement: the share of predictions equal to "
          f"masked-dense's on {AGREEMENT_SAMPLES} inputs (the lower of export and all-CSR)")
    for line in dense_below(rows) + layer_lines(rows) + peer_lines(rows, args.threads):
        print(line)
    target, met = target_check(rows)
    print(target)
    print(f"{len(rows)} rows in {time.perf_counter() - started:,.0f} s")
    if args.out is not None:
        write_table(args.out, rows)
        print(f"table written to {args.out}")
    failures = [f"{r.model} round {r.round} batch {r.batch}: sparse predictions agree on {r.agreement:.1%}"
                for r in rows if r.agreement < 1.0]
    if met is False and not args.quick and args.run is None:
        failures.append(target)
    return common.finish(failures, summary_line(rows, args.threads))


if __name__ == "__main__":
    sys.exit(main())
