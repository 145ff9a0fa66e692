"""Tables printed at the end of a run or a comparison."""
from __future__ import annotations

from typing import Any, Iterable

from rich.console import Console
from rich.table import Table

from prac.config import ExperimentConfig
from prac.fingerprint import fingerprint
from prac.round_record import RoundRecord
from prac.run_paths import run_paths

COLUMNS = [
    ("round", "round", "{}"),
    ("sparsity", "sparsity", "{:.3f}"),
    ("PrAC set", "train_set_size", "{}"),
    ("epochs", "epochs_run", "{}"),
    ("iterations", "train_iterations", "{}"),
    ("cumulative", "cumulative_iterations", "{}"),
    ("test acc", "test_acc", "{:.4f}"),
    ("ticket acc", "ticket_test_acc", "{:.4f}"),
    ("next set", "prac_set_size", "{}"),
    ("CET", "cet_size", "{}"),
    ("CEP", "cep_size", "{}"),
]


def _console() -> Console:
    return Console(width=max(Console().width, 140))  # a pipe gets 80 columns: too narrow


def rounds_table(title: str, rows: Iterable[dict[str, Any]], leading: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, caption="sparsity: of the mask the round produced; PrAC set/epochs/iterations/test "
                                       "acc: the round's training (under the previous mask); ticket acc: that mask "
                                       "retrained on D0")
    for header in leading:
        table.add_column(header)
    for header, _, _ in COLUMNS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*[str(row[h]) for h in leading], *[fmt.format(row[field]) for _, field, fmt in COLUMNS])
    return table


def print_rounds(config: ExperimentConfig, records: list[RoundRecord]) -> None:
    console = _console()
    title = f"{config.preset} · {config.method} · seed {config.seed} · {fingerprint(config)}"
    console.print(rounds_table(title, (vars(r) for r in records)))
    console.print(f"schedule scaling: {config.prac.schedule_scaling}; outputs in {run_paths(config).root}")


def print_comparison(rows: list[dict[str, Any]]) -> None:
    _console().print(rounds_table("comparison", rows, leading=("method", "seed")))
