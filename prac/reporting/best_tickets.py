"""The ticket a comparison recommends for each method, and what a user who takes it away gets.

Its round: the highest sparsity at which the method's ticket still matches its reference, by the comparison's
rule (prac.reporting.comparison): lt's ticket for every other method, the dense network for lt itself (and for
every method of a comparison without lt). Its seed: of that round's seeds, the one whose ticket did best on the
validation split (the test split chooses nothing). What it is on disk: the trained ticket's file (kept values and
a bit mask, prac.artifacts.sparse_state) against the same weights as a dense float32 safetensors file. How fast it
answers one sample on this CPU: dense against the exported sparse module (prac.export.ticket_latency), measured
once per ticket and process.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Iterable

import pandas as pd
from safetensors.torch import save as save_safetensors

from prac.artifacts import read_sparse_state
from prac.export.ticket_latency import TicketLatency, ticket_latency
from prac.imp.trained_ticket import trained_of
from prac.layout.run_paths import run_paths
from prac.reporting import comparison
from prac.settings.config import ExperimentConfig

MATCHES_LT = "matches lt"
MATCHES_DENSE = "matches the dense network"


@dataclass(frozen=True)
class BestRound:
    method: str
    round: int
    sparsity: float
    rule: str  # MATCHES_LT or MATCHES_DENSE


@dataclass(frozen=True)
class BestTicket:
    method: str
    round: int
    sparsity: float
    rule: str
    seed: int
    ticket_test_acc: float
    ticket_best_val_acc: float
    file: str  # the trained ticket's file in its run folder
    file_bytes: int
    dense_bytes: int  # the same weights, dense float32, as one safetensors file
    latency_us: float  # batch 1 on this CPU, the exported sparse module (prac.export.ticket_latency)
    dense_latency_us: float  # the same ticket with its dense layers, measured beside it
    latency_threads: int
    sparse_layers: int  # of its prunable layers, how many the export holds in CSR (the rest: faster dense)
    latency_note: str  # why the latency is NaN (not measured on this machine); empty when measured


def best_rounds(table: pd.DataFrame) -> list[BestRound]:
    """Per method of `table` (prac.reporting.comparison.per_sparsity) its best round; a method whose tickets match
    nowhere has none."""
    found = []
    with_lt = (table["method"] == comparison.REFERENCE).any()
    for method in table["method"].unique():
        if with_lt and method != comparison.REFERENCE:
            m = comparison.match(table, method)
            if m.matched_round is not None:
                found.append(BestRound(method, m.matched_round, m.matched_sparsity, MATCHES_LT))
            continue
        sparsity = comparison.dense_matched_sparsity(table, method)
        if not math.isnan(sparsity):
            own = table[(table["method"] == method) & (table["sparsity"] == sparsity)]
            found.append(BestRound(method, int(own["round"].iloc[0]), sparsity, MATCHES_DENSE))
    return found


def best_tickets(table: pd.DataFrame, configs: Iterable[ExperimentConfig]) -> list[BestTicket]:
    """Each method's best round (best_rounds) with the seed whose ticket validated best there, read from the
    experiments' run folders (`configs`: every method and seed of the comparison)."""
    by_method: dict[str, list[ExperimentConfig]] = {}
    for config in configs:
        by_method.setdefault(config.method, []).append(config)
    tickets = []
    for best in best_rounds(table):
        retrained = [(c, record) for c in by_method.get(best.method, [])
                     if (record := _ticket_record(c, best.round)) is not None]
        if not retrained:
            continue
        config, record = max(retrained, key=lambda pair: (pair[1]["ticket_best_val_acc"], -pair[0].seed))
        path, sha256 = trained_of(run_paths(config).round(best.round) / "ticket.json")
        stored = read_sparse_state(path, expected_sha256=sha256)
        dense = {name: value.float().contiguous() for name, value in stored.state.items()}
        latency: TicketLatency = ticket_latency(config, best.round, path, sha256)
        tickets.append(BestTicket(
            method=best.method, round=best.round, sparsity=best.sparsity, rule=best.rule, seed=config.seed,
            ticket_test_acc=float(record["ticket_test_acc"]),
            ticket_best_val_acc=float(record["ticket_best_val_acc"]), file=str(path),
            file_bytes=path.stat().st_size, dense_bytes=len(save_safetensors(dense)),
            latency_us=latency.sparse_us, dense_latency_us=latency.dense_us, latency_threads=latency.threads,
            sparse_layers=latency.sparse_layers, latency_note=latency.note))
    return tickets


def _ticket_record(config: ExperimentConfig, round_index: int) -> dict | None:
    path = run_paths(config).round(round_index) / "ticket.json"
    return json.loads(path.read_text()) if path.is_file() else None


def tickets_frame(tickets: list[BestTicket]) -> pd.DataFrame:
    """One row per method (logged with the comparison as tickets.parquet)."""
    columns = list(BestTicket.__dataclass_fields__)
    return pd.DataFrame([asdict(t) for t in tickets], columns=columns)
