"""Whether one method's tickets differ from another's beyond seed noise: paired over seeds.

The methods of one seed share round 0, the validation split and the rewind weights, so the seed-to-seed spread
they have in common cancels in their per-seed difference. Per method pair and round where both have a ticket:
the differences of ticket test accuracy seed by seed, their mean, standard error and 95 % interval (Student t),
a paired t-test, Wilcoxon's signed-rank test from WILCOXON_FROM seeds on, and a verdict in words. The interval's
half-width says how large a difference these seeds could resolve.

Rows are per-round records (RoundRecord fields) with `method` and `seed` added; accuracies are fractions.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd
from scipy import stats

from prac.reporting.comparison import REFERENCE

CONFIDENCE = 0.95
DECIMALS = 12
WILCOXON_FROM = 6  # seeds: below, its smallest possible two-sided p (2/2^n) cannot fall under 0.05
DEFAULT_MARGIN = 0.005  # non-inferiority: a ticket at most 0.5 points below the reference's still counts
SECOND_REFERENCE = "prac"  # every method is also set against prac where prac is in the comparison

COLUMNS = ["method", "reference", "round", "sparsity", "seeds", "mean_difference", "std", "standard_error",
           "ci_low", "ci_high", "half_width", "t_p", "wilcoxon_p", "verdict"]


def verdict(ci_low: float, ci_high: float, seeds: int) -> str:
    """'ahead' or 'behind' when the interval excludes 0, else how many seeds did not resolve a difference."""
    if seeds < 2:
        return "one seed: an interval needs two"
    if ci_low > 0:
        return "ahead"
    if ci_high < 0:
        return "behind"
    return f"no difference resolved with {seeds} seeds"


def paired_difference(own: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """The statistics of own − reference, the two arrays aligned seed by seed."""
    # Accuracies are counts over a test set: rounding away the float noise of a subtraction makes equal
    # differences equal (ties for Wilcoxon, no spread for t) rather than a catastrophic cancellation.
    differences = np.round(np.asarray(own, dtype=float) - np.asarray(reference, dtype=float), DECIMALS)
    n = len(differences)
    out = {"seeds": n, "mean_difference": float(differences.mean()), "std": math.nan, "standard_error": math.nan,
           "ci_low": math.nan, "ci_high": math.nan, "half_width": math.nan, "t_p": math.nan, "wilcoxon_p": math.nan}
    if n < 2:
        out["verdict"] = verdict(math.nan, math.nan, n)
        return out
    same = bool(np.all(differences == differences[0]))
    std = 0.0 if same else float(differences.std(ddof=1))
    out.update(std=std, standard_error=std / math.sqrt(n))
    if same:  # every seed the same difference: the interval is that point, and a t statistic is undefined
        low = high = out["mean_difference"] = float(differences[0])
    else:
        test = stats.ttest_1samp(differences, 0.0)  # the paired t-test: ttest_rel's statistic
        interval = test.confidence_interval(CONFIDENCE)
        low, high = float(interval.low), float(interval.high)
        out["t_p"] = float(test.pvalue)
    out.update(ci_low=low, ci_high=high, half_width=(high - low) / 2)
    if n >= WILCOXON_FROM and np.any(differences != 0):
        out["wilcoxon_p"] = float(stats.wilcoxon(differences).pvalue)
    # equal in every seed: the same ticket (the rounds two methods share, round 0's mask among them)
    out["verdict"] = "equal in every seed" if same and differences[0] == 0 else verdict(low, high, n)
    return out


def _tickets(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=None)
    if frame.empty:
        return pd.DataFrame(columns=["method", "seed", "round", "sparsity", "ticket_test_acc"])
    return frame.dropna(subset=["ticket_test_acc"])[["method", "seed", "round", "sparsity", "ticket_test_acc"]]


def references(methods: Iterable[str]) -> list[str]:
    """What every method is set against: lt, and prac too where it is in the comparison."""
    present = set(methods)
    return [r for r in (REFERENCE, SECOND_REFERENCE) if r in present]


def paired_table(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (method, reference, round) where both have a ticket in at least one common seed:
    COLUMNS, differences as fractions. Sparsity: the mean of the two methods' over the paired seeds."""
    tickets = _tickets(rows)
    out = []
    for reference in references(tickets["method"].unique()):
        theirs = tickets[tickets["method"] == reference]
        for method in sorted(m for m in tickets["method"].unique() if m != reference):
            if reference == SECOND_REFERENCE and method == REFERENCE:
                continue  # prac against lt is already there
            both = tickets[tickets["method"] == method].merge(theirs, on=["seed", "round"], suffixes=("", "_ref"))
            for round_index, seeds in both.groupby("round", sort=True):
                seeds = seeds.sort_values("seed")
                out.append({"method": method, "reference": reference, "round": int(round_index),
                            "sparsity": float((seeds["sparsity"].mean() + seeds["sparsity_ref"].mean()) / 2),
                            **paired_difference(seeds["ticket_test_acc"].to_numpy(),
                                                seeds["ticket_test_acc_ref"].to_numpy())})
    return pd.DataFrame(out, columns=COLUMNS)


def noninferior_through(paired: pd.DataFrame, method: str, reference: str = REFERENCE,
                        margin: float = DEFAULT_MARGIN) -> float:
    """The paired counterpart of the matched sparsity: the highest sparsity up to which every round's interval
    of (method − reference) stays above −margin, from the first paired round on. nan when the first round's
    does not, or there is no interval (one seed)."""
    rows = paired[(paired["method"] == method) & (paired["reference"] == reference)].sort_values("sparsity")
    through = math.nan
    for row in rows.itertuples():
        if not row.ci_low > -margin:  # nan (one seed) stops it too
            break
        through = float(row.sparsity)
    return through


def noninferiority(paired: pd.DataFrame, margin: float = DEFAULT_MARGIN) -> dict[str, float]:
    """Every method's non-inferior-through sparsity against lt (nan where it holds nowhere)."""
    against_lt = paired[paired["reference"] == REFERENCE]
    return {m: noninferior_through(paired, m, REFERENCE, margin) for m in sorted(against_lt["method"].unique())}


def max_seeds(paired: pd.DataFrame) -> int:
    return int(paired["seeds"].max()) if len(paired) else 0
