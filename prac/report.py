"""The per-round table printed at the end of a run."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from prac.experiment import ExperimentResult

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


def rounds_table(result: ExperimentResult) -> Table:
    config = result.config
    table = Table(title=f"{config.preset} · {config.method} · seed {config.seed} · {result.fingerprint}",
                  caption="sparsity: of the mask the round produced; PrAC set/epochs/iterations/test acc: the round's "
                          "training (under the previous mask); ticket acc: that mask retrained on D0")
    for header, _, _ in COLUMNS:
        table.add_column(header, justify="right")
    for record in result.rounds:
        table.add_row(*[fmt.format(getattr(record, field)) for _, field, fmt in COLUMNS])
    return table


def print_rounds(result: ExperimentResult, console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 140))  # a pipe gets 80 columns: too narrow
    console.print(rounds_table(result))
    console.print(f"schedule scaling: {result.config.prac.schedule_scaling}; outputs in {result.output_dir}")
