"""How fast a trained ticket answers one sample on this CPU: the ticket as training leaves it (dense layers holding
zeros) and as `prac-lth export --batch 1` would write it (each layer CSR where that measured faster at batch 1,
prac.export.export_run.choose_formats), both timed whole, side by side, on `threads` threads.

What a comparison reports beside each method's recommended ticket (prac.reporting.best_tickets). Measured once
per ticket file and process: the CLI's table, the comparison's MLflow metrics and its summary all show the same
figures. Inputs are random (a time depends on the shapes and where the zeros are, not on the values). A ticket
that cannot be rebuilt here (a comparison over a pool whose data lives on the workers only) is not measured: NaN,
with the one line that says why."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from prac.errors import UserError, one_line
from prac.export.export_run import choose_formats
from prac.export.layer_timing import measure
from prac.export.sparse_module import CSR, sparsify
from prac.imp.ticket import layer_sparsity, load_ticket, ticket_context
from prac.settings.config import ExperimentConfig

LATENCY_BATCH = 1  # the latency of one request; a large batch's throughput is `prac-lth export`'s table
LATENCY_THREADS = 2  # the cores of a small inference machine (and of the machines here)
LATENCY_MEASURE_TIME = 0.05  # seconds per measurement: a comparison times every method's ticket


@dataclass(frozen=True)
class TicketLatency:
    dense_us: float  # median µs per sample: the ticket's own dense layers
    sparse_us: float  # the exported module's
    sparse_layers: int  # how many of its prunable layers the export holds in CSR
    layers: int
    threads: int
    batch: int
    note: str = ""  # why it was not measured (the times NaN); empty when it was


def latency_threads() -> int:
    """LATENCY_THREADS, or fewer where the process was limited to fewer by OMP_NUM_THREADS (a user's choice, and
    the test suite's: two threads on cores another process keeps busy wait on each other many times over)."""
    try:
        limit = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return LATENCY_THREADS
    return max(1, min(LATENCY_THREADS, limit))


def ticket_latency(config: ExperimentConfig, round_index: int, file: Path, sha256: str,
                   threads: int | None = None) -> TicketLatency:
    """The latency of the experiment's (`config`'s) trained ticket of round `round_index` on `threads` threads
    (default latency_threads()); its file and sha256 key the once-per-process measurement: a re-trained ticket is
    measured again."""
    threads = latency_threads() if threads is None else threads
    key = (str(file), sha256, threads)
    if key not in _MEASURED:
        _MEASURED[key] = _measure(config, round_index, threads)
    return _MEASURED[key]


_MEASURED: dict[tuple[str, str, int], TicketLatency] = {}


def _measure(config: ExperimentConfig, round_index: int, threads: int) -> TicketLatency:
    previous = torch.get_num_threads()  # building the context sets the run's own thread count
    try:
        try:
            ctx = ticket_context(config)
            ticket = load_ticket(ctx, round_index, trained=True)
        except UserError as error:  # its data is not on this machine, its files are damaged: said, not fatal
            return TicketLatency(math.nan, math.nan, 0, 0, threads, LATENCY_BATCH, one_line(error, 300))
        torch.set_num_threads(threads)
        generator = torch.Generator().manual_seed(0)
        sample = torch.randn(LATENCY_BATCH, *ctx.data.image_shape, generator=generator)
        layers = layer_sparsity(ticket)
        choices = choose_formats(ticket, layers, sample, [LATENCY_BATCH], LATENCY_BATCH, threads,
                                 LATENCY_MEASURE_TIME, None)
        formats = {choice.layer: choice.format for choice in choices}
        sparse = sparsify(ticket, formats)
        dense_time = measure(lambda: ticket(sample), threads, LATENCY_MEASURE_TIME)
        sparse_time = measure(lambda: sparse(sample), threads, LATENCY_MEASURE_TIME)
        return TicketLatency(dense_us=dense_time.median * 1e6, sparse_us=sparse_time.median * 1e6,
                             sparse_layers=sum(layout == CSR for layout in formats.values()), layers=len(formats),
                             threads=threads, batch=LATENCY_BATCH)
    finally:
        torch.set_num_threads(previous)
