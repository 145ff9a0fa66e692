"""Tables printed at the end of a run or a comparison, and the comparison's per-method summary (a table, Markdown)."""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import pandas as pd
from rich.console import Console
from rich.table import Table

from prac.errors import UserError
from prac.reporting import comparison, paired
from prac.reporting.best_tickets import BestTicket, best_tickets
from prac.reporting.paired_report import paired_markdown, print_paired
from prac.reporting.ticket_report import latency_notes, tickets_markdown, tickets_table
from prac.settings.config import ExperimentConfig
from prac.layout.fingerprint import fingerprint
from prac.imp.imp_loop import ticket_wanted
from prac.imp.retrain_queue import stacks_retrains
from prac.imp.round_record import RoundRecord
from prac.layout.run_paths import run_paths
from prac.strategies.methods import get_method

COLUMNS = [
    ("round", "round", "{}"),
    ("sparsity", "sparsity", "{:.3f}"),
    ("conv", "conv_sparsity", "{:.3f}"),
    ("linear", "linear_sparsity", "{:.3f}"),
    ("output", "output_sparsity", "{:.3f}"),
    ("PrAC set", "train_set_size", "{}"),
    ("epochs", "epochs_run", "{}"),
    ("iterations", "train_iterations", "{}"),
    ("cumulative", "cumulative_iterations", "{}"),
    ("model acc", "test_acc", "{:.4f}"),
    ("ticket acc", "ticket_test_acc", "{:.4f}"),
    ("next set", "prac_set_size", "{}"),
    ("CET", "cet_size", "{}"),
    ("CEP", "cep_size", "{}"),
]


# A round's own model this far below the dense model (round 0) is called a collapse under the table: a small
# PrAC set trained for a few iterations can give a model that barely beats chance, while the round's mask and
# its ticket (retrained on all of D0) are fine.
COLLAPSE_POINTS = 0.20
CAPTION = ("sparsity: of the mask the round produced, over every conv and linear weight · conv / linear / output: "
           "of the convolutions', the hidden linear layers', the output layer's weights (– where the network has "
           "none) · PrAC set / epochs / iterations / model acc: the round's own "
           "training, under the previous mask, on that set only (not the ticket) · ticket acc: the round's mask "
           "retrained on all of D0, full schedule")


def ticket_text(config: ExperimentConfig, r: RoundRecord, sparsities: Sequence[float] | None = None) -> str:
    """The round line's ticket: its accuracy, or why there is none yet (never a bare nan). `sparsities`: each
    round's mask sparsity, for evaluate_tickets=at: (prac.imp.imp_loop.ticket_rounds)."""
    if r.ticket_test_acc == r.ticket_test_acc:
        return f"ticket {r.ticket_test_acc:.4f}"
    if not ticket_wanted(config, r.round, sparsities):
        return f"ticket not retrained (runtime.evaluate_tickets={config.runtime.evaluate_tickets})"
    if get_method(config.method).ticket_is_next_round:
        return f"ticket: round {r.round + 1}'s training"  # lt-like methods: that training is this mask's retrain
    if stacks_retrains(config):
        return "ticket: retrained after the last round, stacked with the others"  # runtime.stack_tickets
    return "ticket: retraining beside the next rounds"  # runtime.retrain_alongside


def late_ticket_line(config: ExperimentConfig, r: RoundRecord) -> str:
    how = (f"round {r.round + 1}'s training" if get_method(config.method).ticket_is_next_round
           else "retrained after the last round, stacked" if stacks_retrains(config)
           else "retrained beside the next rounds")
    return f"round {r.round}: ticket {r.ticket_test_acc:.4f} ({how}, mask {r.sparsity:.3f})"


def round_line(config: ExperimentConfig, r: RoundRecord, sparsities: Sequence[float] | None = None) -> str:
    # sparsity: of all prunable weights (every conv and linear weight); each layer type's is in the table
    return (f"round {r.round}: sparsity {r.sparsity:.3f} | trained on {r.train_set_size} for {r.epochs_run} epochs"
            f"{' (early stop)' if r.early_stopped else ''}, {r.train_iterations} iterations | model {r.test_acc:.4f}"
            f" | {ticket_text(config, r, sparsities)} | next set {r.prac_set_size} (CET {r.cet_size}, CEP {r.cep_size})")



def collapse_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per round whose own model fell COLLAPSE_POINTS below the dense model of its run: what happened,
    and why the ticket is unaffected. Rows of one run, or of several (keyed by method and seed)."""
    dense = {(row.get("method"), row.get("seed")): row["test_acc"] for row in rows if row["round"] == 0}
    notes = []
    for row in rows:
        run = (row.get("method"), row.get("seed"))
        if row["round"] == 0 or run not in dense or not row["test_acc"] < dense[run] - COLLAPSE_POINTS:
            continue
        who = f"{run[0]} seed {run[1]} " if run != (None, None) else ""
        ticket = row["ticket_test_acc"]
        ticket = (f"its ticket (the mask retrained on all of D0) reached {ticket:.4f}" if ticket == ticket
                  else "its ticket is the mask retrained on all of D0")
        refill = (f", and CEP ({row['cep_size']}: where it disagrees with the dense model) refills the next set"
                  if row["cep_size"] else "")  # methods without CEP choose their next set otherwise
        notes.append(
            f"{who}round {row['round']}: the round's own model reached only {row['test_acc']:.4f} (dense "
            f"{dense[run]:.4f}) after {row['train_iterations']} iterations on {row['train_set_size']} samples: too "
            f"little to generalise; its mask is pruned from the weights all the same, {ticket}{refill}")
    return notes


def _console() -> Console:
    return Console(width=max(Console().width, 140))  # a pipe gets 80 columns: too narrow


def rounds_table(title: str, rows: Iterable[dict[str, Any]], leading: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, caption=CAPTION)
    for header in leading:
        table.add_column(header)
    for header, _, _ in COLUMNS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*[str(row[h]) for h in leading],
                      *[_cell(row.get(field, math.nan), fmt) for _, field, fmt in COLUMNS])
    return table


def _cell(value: Any, fmt: str) -> str:
    # a dash for nan, and for a column rows recorded before it existed lack
    return fmt.format(value) if value == value else "–"


def print_rounds(config: ExperimentConfig, records: list[RoundRecord]) -> None:
    console = _console()
    title = f"{config.preset} · {config.method} · seed {config.seed} · {fingerprint(config)}"
    rows = [vars(r) for r in records]
    console.print(rounds_table(title, rows))
    for note in collapse_notes(rows):
        console.print(note, soft_wrap=True)  # one line each: read and grepped whole
    floor = f", at least {config.prac.min_epochs} epochs" if config.prac.min_epochs > 1 else ""
    console.print(f"schedule scaling: {config.prac.schedule_scaling}{floor}; outputs in {run_paths(config).root}")


def print_comparison(rows: list[dict[str, Any]], margin: float = paired.DEFAULT_MARGIN,
                     configs: Sequence[ExperimentConfig] = ()) -> None:
    """The rounds, the summary, the paired differences; with the experiments' `configs`, the trained ticket each
    method recommends (read from their run folders)."""
    console = _console()
    console.print(rounds_table("comparison", rows, leading=("method", "seed")))
    for note in collapse_notes(rows):
        console.print(note, soft_wrap=True)
    table = comparison.per_sparsity(rows)
    print_summary(table, console)
    print_paired(paired.paired_table(rows), console, margin)
    if configs and (tickets := best_tickets(table, configs)):
        console.print(tickets_table(tickets))
        for note in latency_notes(tickets):
            console.print(note, soft_wrap=True)


def print_summary(table: pd.DataFrame, console: Console | None = None) -> None:
    """Ticket accuracy per sparsity as mean ± std over seeds, then each method's match with lt."""
    console = console or _console()
    grid = comparison.accuracy_grid(table)
    seeds = int(table["seeds"].max())
    console.print(f"ticket test accuracy (%), mean ± std over {seeds} seed{'s' * (seeds > 1)}; dense: "
                  f"{100 * comparison.dense_accuracy(table):.2f} %", soft_wrap=True)
    summary = Table()
    summary.add_column("sparsity", justify="right")
    for method in grid.columns:
        summary.add_column(method, justify="right")
    for (_, sparsity), cells in grid.iterrows():
        summary.add_row(f"{100 * sparsity:.1f} %", *[str(c) if isinstance(c, str) else "–" for c in cells])
    console.print(summary)
    console.print(budget_table(table))
    for line in comparison.budget_warnings(table, meant_at_prac_budget):
        console.print(line, soft_wrap=True)
    if seeds < 2:
        console.print("one seed: a std needs at least two seeds (--seeds 0,1,2), so below 'at or above' stands "
                      "where 'within one std' would", soft_wrap=True)
    for m in comparison.matches(table):
        console.print(match_line(m, seeds), soft_wrap=True)  # one line: read and grepped whole
    for method in table["method"].unique():
        console.print(dense_line(table, method, seeds), soft_wrap=True)


def meant_at_prac_budget(method: str) -> bool:
    """The registry's word (prac.strategies.methods); a plugin's method not loaded in this process: no."""
    try:
        return get_method(method).compared_at_prac_budget
    except UserError:
        return False


def budget_table(table: pd.DataFrame) -> Table:
    """Every method's training iterations over all rounds beside its last ticket (means over seeds)."""
    budgets = Table(title="budget: training iterations over all rounds (mean over seeds)")
    for header in ("method", "iterations", "of prac's", "last ticket (%)", "at sparsity"):
        budgets.add_column(header, justify="left" if header == "method" else "right")
    for row in comparison.budgets(table).itertuples():
        ticket = f"{100 * row.ticket_mean:.2f} ± {100 * row.ticket_std:.2f}" if row.ticket_mean == row.ticket_mean \
            else "–"
        budgets.add_row(row.method, f"{row.iterations:,.0f}", _pct(row.of_reference), ticket, _pct(row.sparsity))
    return budgets


def _near(seeds: int, reference: str) -> str:
    """How close counts as matching: within one std over seeds; with one seed there is no std to be within."""
    return f"within one std of {reference}" if seeds > 1 else f"at or above {reference}"


def dense_line(table: pd.DataFrame, method: str, seeds: int) -> str:
    sparsity = comparison.dense_matched_sparsity(table, method)
    where = f"up to {100 * sparsity:.1f} % sparsity" if sparsity == sparsity else "at no sparsity"
    return f"{method}: tickets {_near(seeds, 'the dense network')} {where}"


def match_line(m: comparison.Match, seeds: int) -> str:
    if m.matched_round is None:
        return f"{m.method} vs lt: {_near(seeds, 'lt')} at no sparsity"
    without = m.iteration_saving_without_round0
    without = f"{100 * without:.1f} % without round 0" if without == without else "round 0 only"
    through = f"every round through {100 * m.matched_through:.1f} %" if m.matched_through == m.matched_through else \
        "not at the first round"
    return (f"{m.method} vs lt: matched up to {100 * m.matched_sparsity:.1f} % sparsity (round {m.matched_round}; "
            f"{through}); "
            f"iterations to there {m.iterations:,.0f} vs {m.reference_iterations:,.0f}: saving "
            f"{100 * m.iteration_saving:.1f} % ({without}); "
            f"extra forward passes {m.extra_forward_passes:,.0f} vs {m.reference_extra_forward_passes:,.0f}")


def method_summary(table: pd.DataFrame, pairs: pd.DataFrame | None = None,
                   margin: float = paired.DEFAULT_MARGIN) -> pd.DataFrame:
    """One row per method: where its tickets end, what they cost, and how they match lt (NaN for lt itself and
    where nothing matched) and the dense network; with `pairs` (prac.reporting.paired.paired_table) also the
    sparsity up to which it is non-inferior to lt at `margin`, paired over seeds. Logged with the comparison;
    read by summary_markdown."""
    matched = {m.method: m for m in comparison.matches(table)}
    noninferior = paired.noninferiority(pairs, margin) if pairs is not None and len(pairs) else {}
    rows = []
    for method, own in table.groupby("method", sort=False):
        last = own.dropna(subset=["ticket_mean"]).sort_values("round").tail(1)
        m = matched.get(method)
        rows.append({
            "method": method, "seeds": int(own["seeds"].max()), "rounds": len(own),
            "final_sparsity": float(own["sparsity"].max()),
            "final_ticket_mean": float(last["ticket_mean"].iloc[0]) if len(last) else math.nan,
            "final_ticket_std": float(last["ticket_std"].iloc[0]) if len(last) else math.nan,
            "cumulative_iterations": float(own.sort_values("round")["cumulative_iterations"].iloc[-1]),
            "dense_accuracy": comparison.dense_accuracy(table),
            "dense_matched_sparsity": comparison.dense_matched_sparsity(table, method),
            "matched_sparsity": m.matched_sparsity if m else math.nan,
            "matched_through": m.matched_through if m else math.nan,
            "iterations_to_match": m.iterations if m else math.nan,
            "reference_iterations_to_match": m.reference_iterations if m else math.nan,
            "iteration_saving": m.iteration_saving if m else math.nan,
            "iteration_saving_without_round0": m.iteration_saving_without_round0 if m else math.nan,
            "extra_forward_passes": m.extra_forward_passes if m else math.nan,
            "reference_extra_forward_passes": m.reference_extra_forward_passes if m else math.nan,
            **({"noninferior_sparsity": noninferior.get(method, math.nan)} if pairs is not None else {}),
        })
    return pd.DataFrame(rows)


def _pct(value: float, nan: str = "–") -> str:
    return nan if value != value else f"{100 * value:.1f} %"


def _counts(own: float, reference: float) -> str:
    """'own (lt's)', or one dash where there is nothing to count (lt itself, no match)."""
    return "–" if own != own else f"{own:,.0f} ({reference:,.0f})"


def summary_markdown(title: str, table: pd.DataFrame, link: str | None = None,
                     ui_command: str | None = None, charts_link: str | None = None,
                     pairs: pd.DataFrame | None = None, margin: float = paired.DEFAULT_MARGIN,
                     tickets: Sequence[BestTicket] = ()) -> str:
    """The comparison's conclusions as Markdown (the Prefect flow run's summary artifact); with `pairs`, the
    paired differences over seeds after them; with `tickets`, the trained ticket each method recommends."""
    summary = method_summary(table)
    seeds = int(table["seeds"].max())
    of_prac = comparison.budgets(table).set_index("method")["of_reference"]
    lines = [f"# {title}", "",
             f"Dense network (round 0, best validation): **{_pct(comparison.dense_accuracy(table))}** test accuracy; "
             f"tickets: mean ± std over {seeds} seed(s)"
             f"{'' if seeds > 1 else ' (one seed: matching means at or above, a std needs two seeds)'}.", "",
             "| method | matched lt up to (every round through) | iteration saving there | without round 0 | "
             "iterations to there (lt) | extra forward passes (lt) | last ticket | iterations, all rounds (of prac's) "
             f"| {_near(seeds, 'dense')} up to |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, row in summary.iterrows():
        reference = row["method"] == comparison.REFERENCE
        matched = "reference" if reference else (
            "nowhere" if row["matched_sparsity"] != row["matched_sparsity"]
            else f"{_pct(row['matched_sparsity'])} ({_pct(row['matched_through'], 'not round 0')})")
        ticket = (f"{_pct(row['final_ticket_mean'])} ± {100 * row['final_ticket_std']:.1f} at "
                  f"{_pct(row['final_sparsity'])}")
        lines.append(
            f"| {row['method']} | {matched} | {_pct(row['iteration_saving'])} | "
            f"{_pct(row['iteration_saving_without_round0'])} | "
            f"{_counts(row['iterations_to_match'], row['reference_iterations_to_match'])} | "
            f"{_counts(row['extra_forward_passes'], row['reference_extra_forward_passes'])} | {ticket} | "
            f"{row['cumulative_iterations']:,.0f} ({_pct(of_prac[row['method']])}) | "
            f"{_pct(row['dense_matched_sparsity'], 'nowhere')} |")
    warnings = comparison.budget_warnings(table, meant_at_prac_budget)
    if warnings:
        lines += ["", *[f"- {line}" for line in warnings]]
    if pairs is not None:
        lines += paired_markdown(pairs, margin)
    lines += tickets_markdown(list(tickets))
    if link:
        lines += ["", f"Figures, tables and metrics: [the comparison run in MLflow]({link})"]
        if charts_link:
            lines += ["", f"Every method round by round across seeds: [MLflow's chart view, grouped by method]"
                          f"({charts_link})"]
        if ui_command:
            lines += ["", f"(a local store: start its UI first with `{ui_command}`)"]
    return "\n".join(lines) + "\n"
