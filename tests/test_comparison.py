"""The comparison's conclusions: mean ± std over seeds, the matched sparsity and the iteration saving."""
from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import pytest

from prac.reporting.comparison import (accuracy_grid, budget_warnings, curve, dense_accuracy, dense_matched_sparsity,
                                      match, matches, per_sparsity)
from prac.reporting.comparison import budgets as comparison_budgets
from prac.reporting.report import print_summary
from prac.reporting.comparison_figures import accuracy_figure, iterations_figure, save, set_sizes_figure, tradeoff_figure
from tests.test_cli import cli

SPARSITY = [0.2, 0.36, 0.488, 0.59]


def _rows(method: str, tickets: dict[int, list[float]], iterations: list[int], test0: float = 0.9) -> list[dict]:
    """Per-round rows of `method` for seeds 0..2: tickets[round] holds the three seeds' accuracies."""
    rows = []
    for seed in range(3):
        cumulative = 0
        for r, sparsity in enumerate(SPARSITY):
            cumulative += iterations[r]
            rows.append({
                "method": method, "seed": seed, "round": r, "sparsity": sparsity, "trained_sparsity": 0.0,
                "train_set_size": 100, "prac_set_size": 50, "prac_set_fraction": 0.5, "cet_size": 30,
                "cep_size": 20 * (r > 0), "epochs_run": 4, "early_stopped": r == 0 and method == "prac",
                "train_iterations": iterations[r], "cumulative_iterations": cumulative, "best_val_acc": 0.9,
                "test_acc": test0 if r == 0 else 0.8, "ticket_test_acc": tickets[r][seed],
                "extra_forward_passes": 10,
            })
    return rows


LT = _rows("lt", {0: [0.90, 0.91, 0.92], 1: [0.90, 0.91, 0.92], 2: [0.90, 0.92, 0.94], 3: [0.90, 0.91, 0.92]},
           [100, 100, 100, 100], test0=0.88)
# prac: within one std of lt at rounds 0 and 2 (std 0.01 and 0.02), below it at 1 and 3.
PRAC = _rows("prac", {0: [0.90, 0.90, 0.91], 1: [0.895, 0.895, 0.895], 2: [0.90, 0.90, 0.91],
                      3: [0.85, 0.85, 0.85]}, [60, 20, 10, 10])


def test_mean_and_std_over_seeds_per_method_and_sparsity():
    table = per_sparsity(LT + PRAC)
    lt2 = table[(table["method"] == "lt") & (table["round"] == 2)].iloc[0]
    assert lt2["ticket_mean"] == pytest.approx(0.92)
    assert lt2["ticket_std"] == pytest.approx(0.02)  # sample std (ddof 1) of 0.90, 0.92, 0.94
    assert lt2["seeds"] == 3 and lt2["sparsity"] == pytest.approx(0.488)
    assert lt2["cumulative_iterations"] == 300
    assert dense_accuracy(table) == pytest.approx(0.88)  # lt's round 0, trained in full


def test_matched_sparsity_is_the_highest_within_one_std_and_the_saving_sums_rounds_up_to_it():
    m = match(per_sparsity(LT + PRAC), "prac")
    assert m.matched_round == 2 and m.matched_sparsity == pytest.approx(0.488)
    assert m.matched_through == pytest.approx(0.2)  # round 1 is not matched: the unbroken run ends at round 0
    assert (m.iterations, m.reference_iterations) == (90, 300)
    assert m.iteration_saving == pytest.approx(1 - 90 / 300)
    assert m.iteration_saving_without_round0 == pytest.approx(1 - 30 / 200)
    assert m.extra_forward_passes == 30 and m.reference_extra_forward_passes == 30


def test_dense_matched_sparsity_uses_the_dense_networks_spread_over_seeds():
    lt = [dict(row, test_acc=[0.89, 0.90, 0.91][row["seed"]]) if row["round"] == 0 else row for row in LT]
    table = per_sparsity(lt + PRAC)  # dense 0.90 ± 0.01: prac reaches 0.89 at rounds 0-2, lt everywhere
    assert dense_matched_sparsity(table, "prac") == pytest.approx(0.488)
    assert dense_matched_sparsity(table, "lt") == pytest.approx(0.59)
    assert math.isnan(dense_matched_sparsity(per_sparsity(lt + [dict(r, ticket_test_acc=0.5) for r in PRAC]), "prac"))


def test_no_match_and_no_reference():
    worse = _rows("prac", {r: [0.5, 0.5, 0.5] for r in range(4)}, [10, 10, 10, 10])
    m = match(per_sparsity(LT + worse), "prac")
    assert m.matched_round is None and math.isnan(m.matched_sparsity) and math.isnan(m.iteration_saving)
    assert matches(per_sparsity(PRAC)) == []  # without lt there is nothing to match


def test_accuracy_grid_reads_as_mean_plus_minus_std_in_percent():
    grid = accuracy_grid(per_sparsity(LT + PRAC))
    assert grid.loc[(2, 0.488), "lt"] == "92.00 ± 2.00"
    assert grid.loc[(3, 0.59), "prac"] == "85.00 ± 0.00"


@pytest.mark.slow
def test_engine_compare_prints_the_summary_and_reads_finished_experiments_back(tmp_path):
    args = ("compare", "digits-smoke", "--engine-only", "--seeds", "0", "--methods", "prac,lt",
            "--set", "rounds=2", "--output-dir", str(tmp_path))
    first = cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "mean ± std over 1 seed;" in first.stdout and "dense:" in first.stdout
    line = re.search(r"prac vs lt: (matched up to [\d.]+ % sparsity.*saving [-\d.]+ %|at or above lt at no "
                     r"sparsity)", first.stdout)
    assert line, first.stdout
    assert "prac vs lt: one seed: a paired interval needs two (--seeds 0,1 or more)" in first.stdout
    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished earlier") == 2  # nothing trained again
    assert line.group(0) in again.stdout


def test_curve_gives_gap_and_saving_at_every_sparsity():
    both = curve(per_sparsity(LT + PRAC), "prac")
    assert list(both["round"]) == [0, 1, 2, 3]
    assert list(both["matched"]) == [True, False, True, False]
    assert both["gap"].iloc[3] == pytest.approx(0.85 - 0.91)
    assert both["saving"].iloc[1] == pytest.approx(1 - 80 / 200)


def test_figures_are_png_files_with_a_curve_per_method(tmp_path):
    table = per_sparsity(LT + PRAC)
    fig = accuracy_figure(table, "synthetic")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["lt", "prac", "dense"]
    prac_line = fig.axes[0].get_lines()[1]
    assert list(prac_line.get_ydata()) == pytest.approx([100 * 0.90333, 89.5, 100 * 0.90333, 85], abs=1e-2)
    paths = [save(fig, tmp_path / "accuracy.png"),
             save(iterations_figure(table, "synthetic"), tmp_path / "iterations.png"),
             save(set_sizes_figure(table, "synthetic"), tmp_path / "sets.png"),
             save(tradeoff_figure({"a": table, "b": table}, "synthetic"), tmp_path / "tradeoff.png")]
    for path in paths:
        image = plt.imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 600
        assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_budget_of_each_method_sits_beside_its_last_ticket_and_strays_are_warned():
    random = _rows("random-subset", {r: [0.8, 0.8, 0.8] for r in range(4)}, [60, 10, 5, 5])  # 80 of prac's 100
    snip = _rows("snip", {r: [0.8, 0.8, 0.8] for r in range(4)}, [60, 21, 10, 10])  # 101: within 5 %
    table = per_sparsity(LT + PRAC + random + snip)
    budgets = comparison_budgets(table).set_index("method")
    assert budgets.loc["prac", "iterations"] == 100 and budgets.loc["lt", "of_reference"] == pytest.approx(4.0)
    assert budgets.loc["prac", "ticket_mean"] == pytest.approx(0.85) and budgets.loc["prac", "sparsity"] == 0.59
    meant = {"random-subset", "snip"}.__contains__  # the registry's word, here given
    warnings = budget_warnings(table, meant)
    assert len(warnings) == 1 and warnings[0].startswith("warning: random-subset trained 80 iterations, 80 % of prac's 100")
    assert budget_warnings(table, lambda method: False) == []  # lt costs 4x prac's by design: no warning


def test_with_one_seed_the_summary_says_a_std_needs_two_seeds(capsys):
    one_seed = [row for row in LT + PRAC if row["seed"] == 0]
    print_summary(per_sparsity(one_seed))
    out = capsys.readouterr().out
    assert "one seed: a std needs at least two seeds" in out and "within one std of" not in out
    assert re.search(r"prac vs lt: (matched up to|at or above lt at no sparsity)", out)
    assert "budget: training iterations over all rounds" in out
    print_summary(per_sparsity(LT + PRAC))
    out = capsys.readouterr().out
    assert "within one std of" in out and "one seed" not in out
