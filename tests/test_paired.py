"""Paired statistics over seeds (prac.reporting.paired): a hand-computed case, scipy's own results, the pairing
by seed, the verdicts, non-inferiority, and what the terminal, the Markdown summary and the figure show."""
from __future__ import annotations

import math
import random

import matplotlib.pyplot as plt
import numpy as np
import pytest
from rich.console import Console
from scipy import stats

from prac.reporting import paired
from prac.reporting.comparison_figures import paired_figure, save
from prac.reporting.paired_report import paired_markdown, print_paired
from tests.test_comparison import LT, PRAC, _rows


def test_a_hand_computed_case():
    # differences 1, 2, 3 points: mean 2, sd 1, se 1/sqrt(3); t(0.975, 2 df) = 4.302653; t = 2 sqrt(3);
    # with 2 degrees of freedom the two-sided p is 1 - t / sqrt(t^2 + 2) = 1 - sqrt(12/14)
    out = paired.paired_difference(np.array([0.91, 0.92, 0.93]), np.array([0.90, 0.90, 0.90]))
    assert out["seeds"] == 3 and out["mean_difference"] == pytest.approx(0.02)
    assert out["std"] == pytest.approx(0.01) and out["standard_error"] == pytest.approx(0.01 / math.sqrt(3))
    half = 4.302652729911275 * 0.01 / math.sqrt(3)
    assert out["half_width"] == pytest.approx(half)
    assert (out["ci_low"], out["ci_high"]) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert out["t_p"] == pytest.approx(1 - math.sqrt(12 / 14))
    assert math.isnan(out["wilcoxon_p"])  # 3 seeds: below WILCOXON_FROM
    assert out["verdict"] == "no difference resolved with 3 seeds"  # the interval reaches below 0


def test_agrees_with_scipy_on_many_seeds():
    rng = np.random.default_rng(3)
    reference = 0.88 + 0.01 * rng.standard_normal(12)
    own = reference + 0.004 + 0.003 * rng.standard_normal(12)
    out = paired.paired_difference(own, reference)
    test = stats.ttest_rel(own, reference)
    interval = test.confidence_interval(0.95)
    assert out["t_p"] == pytest.approx(test.pvalue) and out["ci_low"] == pytest.approx(interval.low)
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon(own - reference).pvalue)
    assert out["ci_low"] > 0 and out["verdict"] == "ahead"
    assert paired.paired_difference(reference, own)["verdict"] == "behind"


def test_one_seed_says_an_interval_needs_two_and_equal_differences_give_a_point_interval():
    one = paired.paired_difference(np.array([0.9]), np.array([0.8]))
    assert one["verdict"] == "one seed: an interval needs two" and math.isnan(one["ci_low"])
    same = paired.paired_difference(np.array([0.91, 0.92]), np.array([0.90, 0.91]))
    assert same["ci_low"] == pytest.approx(0.01) == same["ci_high"] and same["verdict"] == "ahead"
    assert math.isnan(same["t_p"])  # no spread: a t statistic is undefined
    equal = paired.paired_difference(np.array([0.91, 0.92, 0.93]), np.array([0.91, 0.92, 0.93]))
    assert equal["verdict"] == "equal in every seed" and equal["half_width"] == 0


def test_the_table_pairs_seed_by_seed_against_lt_and_prac():
    rows = LT + PRAC + _rows("random-subset", {r: [0.80, 0.81, 0.82] for r in range(4)}, [60, 20, 10, 10])
    random.Random(0).shuffle(rows)  # pairing is by seed, not by row order
    table = paired.paired_table(rows)
    assert set(zip(table["method"], table["reference"])) == {("prac", "lt"), ("random-subset", "lt"),
                                                             ("random-subset", "prac")}  # prac vs lt once
    prac2 = table[(table["method"] == "prac") & (table["round"] == 2)].iloc[0]
    # prac [0.90, 0.90, 0.91] − lt [0.90, 0.92, 0.94] = [0, −0.02, −0.03]
    assert prac2["mean_difference"] == pytest.approx(-0.05 / 3) and prac2["seeds"] == 3
    expected = stats.ttest_rel([0.90, 0.90, 0.91], [0.90, 0.92, 0.94])
    assert prac2["t_p"] == pytest.approx(expected.pvalue)
    # a seed without a ticket (not retrained) leaves that seed out of the pair
    no_ticket = [dict(r, ticket_test_acc=math.nan) if r["method"] == "lt" and r["seed"] == 2 else r for r in LT]
    fewer = paired.paired_table(no_ticket + PRAC)
    assert set(fewer["seeds"]) == {2}
    assert paired.paired_table(PRAC).empty  # no reference to pair with


def test_noninferiority_holds_up_to_the_first_round_whose_interval_falls_below_the_margin():
    rows = [{"method": "prac", "reference": "lt", "round": r, "sparsity": s, "seeds": 3, "ci_low": low}
            for r, (s, low) in enumerate([(0.2, -0.001), (0.36, -0.004), (0.488, -0.02), (0.59, 0.0)])]
    import pandas as pd
    table = pd.DataFrame(rows)
    assert paired.noninferior_through(table, "prac", margin=0.005) == pytest.approx(0.36)  # not 0.59: not unbroken
    assert paired.noninferior_through(table, "prac", margin=0.03) == pytest.approx(0.59)
    assert math.isnan(paired.noninferior_through(table, "prac", margin=0.0))
    one_seed = table.assign(ci_low=math.nan)
    assert math.isnan(paired.noninferior_through(one_seed, "prac"))


def _printed(table, margin=paired.DEFAULT_MARGIN) -> str:
    console = Console(width=200, record=True)
    print_paired(table, console, margin)
    return console.export_text()


def test_the_terminal_shows_difference_interval_p_and_verdict_per_sparsity():
    text = _printed(paired.paired_table(LT + PRAC))
    assert "paired over seeds: ticket accuracy − lt's (points)" in text
    # round 3: prac 0.85 every seed − lt [0.90, 0.91, 0.92]: −6.00 points, behind
    line = next(line for line in text.splitlines() if "59.0 %" in line)
    assert "prac" in line and "-6.00" in line and "behind" in line
    assert "prac vs lt, paired over 3 seeds: 95 % interval above −0.50 points (non-inferior)" in text
    one_seed = _printed(paired.paired_table([r for r in LT + PRAC if r["seed"] == 0]))
    assert "one seed: an interval needs two" in one_seed and "a paired interval needs two" in one_seed


def test_the_markdown_summary_carries_the_paired_table():
    lines = paired_markdown(paired.paired_table(LT + PRAC))
    assert "## Paired over 3 seed(s)" in lines and "### against lt" in lines
    assert any(line.startswith("| 59.0 % | prac | -6.00 |") and line.endswith("| behind |") for line in lines)
    assert paired_markdown(paired.paired_table(PRAC)) == []


def test_the_figure_draws_each_methods_interval(tmp_path):
    rows = LT + PRAC + _rows("random-subset", {r: [0.80, 0.81, 0.82] for r in range(4)}, [60, 20, 10, 10])
    table = paired.paired_table(rows)
    fig = paired_figure(table, "synthetic", margin=0.005)
    assert len(fig.axes) == 2  # against lt, against prac
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"prac", "random-subset"} < set(labels) and any("margin" in label for label in labels)
    path = save(fig, tmp_path / "paired.png")
    image = plt.imread(path)
    assert image.shape[0] > 500 and image[..., :3].std() > 0.05
