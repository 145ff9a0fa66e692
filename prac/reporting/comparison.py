"""What a comparison of methods over seeds concludes: per method and sparsity the ticket's test accuracy
as mean ± std over seeds, the matched sparsity (the paper's definition) and the iterations saved up to it.

Rows are per-round records (RoundRecord fields) with `method` and `seed` added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pandas as pd

REFERENCE = "lt"
TYPE_SPARSITIES = ("conv_sparsity", "linear_sparsity", "output_sparsity")


def per_sparsity(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per method and round: the ticket's accuracy over seeds (std with ddof=1; 0 for one seed)
    and the means of what the round cost and selected."""
    frame = pd.DataFrame(list(rows))
    grouped = frame.groupby(["method", "round"], sort=True)
    table = grouped.agg(
        sparsity=("sparsity", "mean"), seeds=("seed", "nunique"),
        ticket_mean=("ticket_test_acc", "mean"), ticket_std=("ticket_test_acc", "std"),
        test_mean=("test_acc", "mean"), test_std=("test_acc", "std"), train_iterations=("train_iterations", "mean"),
        cumulative_iterations=("cumulative_iterations", "mean"), epochs_run=("epochs_run", "mean"),
        train_set_size=("train_set_size", "mean"), prac_set_size=("prac_set_size", "mean"),
        prac_set_fraction=("prac_set_fraction", "mean"), cet_size=("cet_size", "mean"),
        cep_size=("cep_size", "mean"), early_stopped=("early_stopped", "sum"),
        extra_forward_passes=("extra_forward_passes", "mean"),
        # each layer type's sparsity (RoundRecord), where the rows have it: rows recorded before lack it
        **{name: (name, "mean") for name in TYPE_SPARSITIES if name in frame},
    ).reset_index()
    table[["ticket_std", "test_std"]] = table[["ticket_std", "test_std"]].fillna(0.0)
    table["cumulative_extra_forward_passes"] = table.groupby("method")["extra_forward_passes"].cumsum()
    return table


def _dense_row(table: pd.DataFrame) -> pd.Series | None:
    round0 = table[table["round"] == 0]
    full = round0[round0["method"] == REFERENCE]
    return (full if len(full) else round0).iloc[0] if len(round0) else None


def dense_accuracy(table: pd.DataFrame) -> float:
    """Round 0's best-validation dense model (shared by the arms; the full-data arms trained it in full)."""
    row = _dense_row(table)
    return float(row["test_mean"]) if row is not None else math.nan


def dense_matched_sparsity(table: pd.DataFrame, method: str) -> float:
    """The highest sparsity at which `method`'s ticket is within one std (over seeds) of the dense network
    or above it: a lottery ticket by its original definition. nan when none is."""
    row = _dense_row(table)
    if row is None:
        return math.nan
    rows = table[(table["method"] == method) & (table["ticket_mean"] >= row["test_mean"] - row["test_std"])]
    return float(rows["sparsity"].max()) if len(rows) else math.nan


@dataclass(frozen=True)
class Match:
    """How `method` compares with the reference (lt) up to the matched sparsity."""

    method: str
    matched_round: int | None
    matched_sparsity: float  # nan: matched nowhere
    iterations: float  # mean over seeds, rounds 0..matched_round
    reference_iterations: float
    iteration_saving: float  # 1 - iterations / reference_iterations
    iteration_saving_without_round0: float  # the same with each method's own round 0 left out
    extra_forward_passes: float
    reference_extra_forward_passes: float
    matched_through: float = math.nan  # the highest sparsity up to which every round matched (nan: not round 0)


def _matched_rounds(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """Rounds with both tickets, marked where the method's mean is within one std (over seeds) of lt's
    (or above it)."""
    both = table[table["method"] == method].merge(table[table["method"] == REFERENCE], on="round",
                                                  suffixes=("", "_ref"))
    both = both.dropna(subset=["ticket_mean", "ticket_mean_ref"])
    both["matched"] = both["ticket_mean"] >= both["ticket_mean_ref"] - both["ticket_std_ref"]
    return both


def curve(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """Per round: sparsity, the ticket's gap to lt (mean − mean), lt's std, matched, and the iteration
    saving summed over rounds 0..r: the trade-off a setting makes at every sparsity."""
    both = _matched_rounds(table, method)
    return pd.DataFrame({
        "round": both["round"], "sparsity": both["sparsity"], "matched": both["matched"],
        "gap": both["ticket_mean"] - both["ticket_mean_ref"], "reference_std": both["ticket_std_ref"],
        "saving": 1.0 - both["cumulative_iterations"] / both["cumulative_iterations_ref"],
    }).reset_index(drop=True)


def match(table: pd.DataFrame, method: str) -> Match:
    """The matched sparsity (the highest sparsity at which `method`'s ticket is within one std of lt's, as
    the paper defines it) and the iteration saving summed over rounds 0..that round."""
    both = _matched_rounds(table, method)
    matched = both[both["matched"]]
    if matched.empty:
        return Match(method, None, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    ordered = both.sort_values("sparsity")
    unmatched_before = (~ordered["matched"]).cumsum() == 0
    through = float(ordered[unmatched_before]["sparsity"].max()) if unmatched_before.any() else math.nan
    row = matched.sort_values("sparsity").iloc[-1]
    round0 = both[both["round"] == 0].iloc[0] if (both["round"] == 0).any() else None
    own0 = float(round0["train_iterations"]) if round0 is not None else 0.0
    ref0 = float(round0["train_iterations_ref"]) if round0 is not None else 0.0
    iterations, reference = float(row["cumulative_iterations"]), float(row["cumulative_iterations_ref"])
    without = (iterations - own0, reference - ref0)
    return Match(
        method=method, matched_round=int(row["round"]), matched_sparsity=float(row["sparsity"]),
        iterations=iterations, reference_iterations=reference,
        iteration_saving=1.0 - iterations / reference,
        iteration_saving_without_round0=(1.0 - without[0] / without[1]) if without[1] > 0 else math.nan,
        extra_forward_passes=float(row["cumulative_extra_forward_passes"]),
        reference_extra_forward_passes=float(row["cumulative_extra_forward_passes_ref"]),
        matched_through=through,
    )


def matches(table: pd.DataFrame) -> list[Match]:
    """Every method against lt (none when lt is not in the comparison)."""
    methods = [m for m in table["method"].unique() if m != REFERENCE]
    return [match(table, m) for m in methods] if (table["method"] == REFERENCE).any() else []


def accuracy_grid(table: pd.DataFrame) -> pd.DataFrame:
    """Sparsity × method, 'mean ± std' in percent: the table a reader compares methods with."""
    text = table.assign(cell=[f"{100 * m:.2f} ± {100 * s:.2f}" if not math.isnan(m) else "–"
                              for m, s in zip(table["ticket_mean"], table["ticket_std"])])
    grid = text.pivot(index="round", columns="method", values="cell")
    sparsity = table.groupby("round")["sparsity"].mean()
    return grid.assign(sparsity=sparsity).set_index("sparsity", append=True)


# The method whose budget the equal-budget methods take (prac.imp.budget), and how far a method meant to cost
# what it costs may stray before a comparison says it is no longer an equal-budget comparison.
BUDGET_REFERENCE = "prac"
BUDGET_TOLERANCE = 0.05


def budgets(table: pd.DataFrame) -> pd.DataFrame:
    """One row per method: its training iterations over all rounds and its last ticket (means over seeds), and
    those iterations over prac's (nan without prac in the comparison)."""
    last = table.sort_values("round").groupby("method", sort=False).tail(1).set_index("method")
    frame = pd.DataFrame({"iterations": last["cumulative_iterations"], "sparsity": last["sparsity"],
                          "ticket_mean": last["ticket_mean"], "ticket_std": last["ticket_std"]})
    reference = frame["iterations"].get(BUDGET_REFERENCE, math.nan)
    frame["of_reference"] = frame["iterations"] / reference
    return frame.loc[sorted(frame.index)].reset_index()


def budget_warnings(table: pd.DataFrame, meant_equal: Callable[[str], bool]) -> list[str]:
    """A line per method meant to cost what prac costs (`meant_equal`: the registry's word) whose iterations
    differ from prac's by more than BUDGET_TOLERANCE: its accuracy is then not compared at equal budget."""
    lines = []
    for row in budgets(table).itertuples():
        if row.method != BUDGET_REFERENCE and meant_equal(row.method) and abs(row.of_reference - 1) > BUDGET_TOLERANCE:
            lines.append(f"warning: {row.method} trained {row.iterations:,.0f} iterations, {100 * row.of_reference:.0f} % "
                         f"of prac's {row.iterations / row.of_reference:,.0f}: not an equal-budget comparison "
                         f"(more than {100 * BUDGET_TOLERANCE:.0f} % apart)")
    return lines
