"""The paired comparison as users read it: per reference a table of per-seed differences with their interval,
p-values and verdict (the terminal), the same as Markdown (the Prefect summary artifact), and each method's
non-inferiority to lt. Input: prac.reporting.paired.paired_table."""
from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from prac.reporting import paired

def _points(value: float, signed: bool = True) -> str:
    return "–" if value != value else (f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}")


def _p(value: float) -> str:
    return "–" if value != value else (f"{value:.3f}" if value >= 0.001 else "<0.001")


def interval_text(row: Any) -> str:
    return "–" if row.ci_low != row.ci_low else f"[{_points(row.ci_low)}, {_points(row.ci_high)}]"


def paired_tables(table: pd.DataFrame) -> list[Table]:
    """One table per reference (lt, then prac): per sparsity and method, the paired difference of ticket accuracy
    over seeds with its 95 % interval, the tests' p-values and the verdict."""
    out = []
    for reference, rows in table.groupby("reference", sort=False):
        seeds = int(rows["seeds"].max())
        shown = Table(title=f"paired over seeds: ticket accuracy − {reference}'s (points), same seed; "
                            f"95 % interval (Student t), p of the paired t-test and of Wilcoxon's signed-rank test "
                            f"(from {paired.WILCOXON_FROM} seeds; here {seeds})")
        for header in ("sparsity", "method", "difference", "95 % interval", "p (t)", "p (Wilcoxon)", "verdict"):
            shown.add_column(header, justify="left" if header in ("method", "verdict") else "right")
        for row in rows.sort_values(["round", "method"]).itertuples():
            shown.add_row(f"{100 * row.sparsity:.1f} %", row.method, _points(row.mean_difference), interval_text(row),
                          _p(row.t_p), _p(row.wilcoxon_p), row.verdict)
        out.append(shown)
    return out


def noninferior_line(method: str, sparsity: float, margin: float, seeds: int) -> str:
    if seeds < 2:
        return f"{method} vs lt: one seed: a paired interval needs two (--seeds 0,1 or more)"
    where = f"up to {100 * sparsity:.1f} % sparsity" if sparsity == sparsity else "at no sparsity"
    return (f"{method} vs lt, paired over {seeds} seeds: 95 % interval above −{100 * margin:.2f} points "
            f"(non-inferior) {where}")


def print_paired(table: pd.DataFrame, console: Console | None = None, margin: float = paired.DEFAULT_MARGIN) -> None:
    """The paired tables, then each method's non-inferiority to lt at `margin` (a fraction)."""
    console = console or Console(width=max(Console().width, 140))
    if table.empty:
        return
    for shown in paired_tables(table):
        console.print(shown)
    seeds = paired.max_seeds(table)
    for method, through in paired.noninferiority(table, margin).items():
        console.print(noninferior_line(method, through, margin, seeds), soft_wrap=True)


def paired_markdown(table: pd.DataFrame, margin: float = paired.DEFAULT_MARGIN) -> list[str]:
    """The paired tables and the non-inferiority lines as Markdown lines (none without a paired round)."""
    if table.empty:
        return []
    seeds = paired.max_seeds(table)
    lines = ["", f"## Paired over {seeds} seed(s)", "",
             "Per seed, the ticket's test accuracy minus the reference's (the methods of a seed share round 0, the "
             "split and the rewind weights); mean, 95 % interval (Student t), p of the paired t-test and of "
             f"Wilcoxon's signed-rank test (from {paired.WILCOXON_FROM} seeds)."]
    for reference, rows in table.groupby("reference", sort=False):
        lines += ["", f"### against {reference}", "",
                  "| sparsity | method | difference (points) | 95 % interval | p (t) | p (Wilcoxon) | verdict |",
                  "|---:|---|---:|---|---:|---:|---|"]
        for row in rows.sort_values(["round", "method"]).itertuples():
            lines.append(f"| {100 * row.sparsity:.1f} % | {row.method} | {_points(row.mean_difference)} | "
                         f"{interval_text(row)} | {_p(row.t_p)} | {_p(row.wilcoxon_p)} | {row.verdict} |")
    lines.append("")
    lines += [f"- {noninferior_line(m, s, margin, seeds)}" for m, s in paired.noninferiority(table, margin).items()]
    return lines
