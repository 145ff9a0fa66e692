"""The science results of docs/results.md: each setting is one `prac-lth compare ... --engine-only` command;
this runs the experiments that have not finished yet (or reads them back), then writes per setting the
figures (ticket accuracy, cumulative iterations, PrAC set sizes) and across settings the trade-off
figure and docs/results/tables.md (every number there next to its command).

    python bench/results.py [--only NAME ...] [--no-run] [--parallel N] [--out docs/results] [--output-dir /work/runs]
                            [--code-version HASH]

With --only, the tables go to <out>/tables-<names>.md and tables.md (every setting's) is left as it is.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from prac.reporting import comparison, paired
from prac.reporting.paired_report import paired_markdown
from prac.artifacts import read_mask
from prac.artifacts.atomic import atomic_write
from prac.reporting.comparison_figures import (accuracy_figure, iterations_figure, paired_figure, save, set_sizes_figure,
                                               similarity_figure, tradeoff_figure)
from prac.reporting.comparison_inputs import mask_similarity_frame, runs_of
from prac.errors import UserError
from prac.experiment import compare_in_process, finished_rounds
from prac.imp.imp_steps import method_snapshot
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.training.round_file import load_round
from prac.reporting.report import dense_line, match_line, meant_at_prac_budget
from prac.layout.run_paths import run_paths

SEEDS = (0, 1, 2)
NO_AUG = "data.augment=false"
LR01 = "train.lr=0.1"  # the preset's LR before this study; the preset now has 0.05
ITERATIONS = "prac.schedule_scaling=iterations"
E24 = ("train.epochs=24", "train.milestones=[12,18]")
LAYERWISE = "prune.scope=layerwise"
CONV_CPU = ("model.width=0.25", "data.train_limit=15000", "prune.rounds=12")
# The rates the settings below were measured with, before the presets took the lottery-ticket paper's per-layer-type
# rates: LeNet's output layer pruned at 20 % a round like its hidden layers; the conv net's convolutions alone at 20 %.
LENET_BEFORE = ("prune.output_rate=0.2",)
CONV_BEFORE = ("prune.conv_rate=0.2", "prune.linear_rate=0", "prune.output_rate=0")
SEEDS_12 = tuple(range(12))
# Retrain tickets only at the two sparsities the comparison reads (rounds 6 and 11 of LeNet's rates): many seeds
# at the cost of a few.
AT_79_931 = "runtime.evaluate_tickets=at:0.79,0.931"
PAIRED_METHODS = ("prac", "lt", "random-subset", "el2n-subset", "entropy-subset", "svp-subset", "synflow")


@dataclass(frozen=True)
class Setting:
    name: str
    preset: str
    overrides: tuple[str, ...]
    methods: tuple[str, ...] = ("prac", "lt", "random")
    seeds: tuple[int, ...] = SEEDS
    note: str = field(default="", compare=False)
    # The setting whose prac and lt runs this one reuses (the same fingerprints): its row in the summary and its
    # point in the trade-off figure are that setting's, so they are not drawn twice.
    repeats: str | None = None
    # The science of docs/results.md was measured in float32 (before "auto" meant bfloat16 on CPUs with native
    # bf16): pinned, so that the same runs are found and a re-run measures the same thing. The conv net, sized
    # for this CPU, trains in bfloat16 (1.8x float32's speed here: prac.hardware.precision).
    precision: str = "float32"

    def command(self) -> str:
        sets = " ".join(f"--set {shlex.quote(o)}" for o in self.overrides)
        seeds = ",".join(map(str, self.seeds))
        if len(self.seeds) > 2 and self.seeds == tuple(range(self.seeds[0], self.seeds[-1] + 1)):
            seeds = f"{self.seeds[0]}-{self.seeds[-1]}"  # compare --seeds takes a range
        return (f"prac-lth compare {self.preset} --seeds {seeds} "
                f"--methods {','.join(self.methods)} {sets} --set runtime.precision={self.precision} --engine-only")


LENET = "fashion-lenet"
SETTINGS = [
    Setting("lenet-epochs", LENET, (*LENET_BEFORE, NO_AUG, LR01, "prac.schedule_scaling=epochs"),
            note="the reference code's epoch scaling: a round on |P| of D0 trains E0·|P|/|D0| epochs"),
    Setting("lenet-iterations", LENET, (*LENET_BEFORE, NO_AUG, LR01, ITERATIONS), ("prac", "lt"),
            note="the paper's formula: |P|/|D0| of the full schedule's iterations"),
    Setting("lenet-epochs-floor7", LENET, (*LENET_BEFORE, NO_AUG, LR01, "prac.schedule_scaling=epochs", "prac.min_epochs=7"),
            ("prac", "lt"),
            note="epoch scaling with at least 7 epochs (window + 2)"),
    Setting("lenet-iterations-no-early-stop", LENET, (*LENET_BEFORE, NO_AUG, LR01, ITERATIONS, "prac.early_stop=false"),
            ("prac", "lt"),
            note="iterations scaling, early stop off"),
    Setting("lenet-iterations-eps0.04", LENET, (*LENET_BEFORE, NO_AUG, LR01, ITERATIONS, "prac.early_stop_eps=0.04"), ("prac", "lt"),
            note="iterations scaling, early stop with ε 0.04 instead of 0.08"),
    Setting("lenet-cet-only-iterations", LENET, (*LENET_BEFORE, NO_AUG, LR01, ITERATIONS, "prac.use_cep=false"), ("prac", "lt"),
            note="the paper's ablation: PrAC without CEP, iterations scaling"),
    Setting("lenet-augmented-epochs", LENET, (*LENET_BEFORE, "data.augment=true", LR01, "prac.schedule_scaling=epochs"),
            ("prac", "lt"),
            note="the preset before this study: random crop (padding 4) and flip, epoch scaling"),
    Setting("lenet-lr0.05-iterations", LENET, (*LENET_BEFORE, NO_AUG, "train.lr=0.05", ITERATIONS),
            note="LR 0.05 for both arms, iterations scaling: the preset's defaults before it took per-layer-type "
                 "rates (the output layer at 20 % a round, as the hidden layers)"),
    Setting("lenet-e24-iterations", LENET, (*LENET_BEFORE, NO_AUG, LR01, *E24, ITERATIONS), ("prac", "lt"),
            note="a schedule twice as long (E0 24, milestones 12 and 18), iterations scaling"),
    Setting("lenet-layerwise-iterations", LENET, (*LENET_BEFORE, NO_AUG, LR01, LAYERWISE, ITERATIONS), ("prac", "lt"),
            note="layerwise magnitude pruning (each layer loses 20 % a round), iterations scaling"),
    Setting("lenet-baselines", LENET, LENET_BEFORE, ("prac", "lt", "random-subset", "el2n-subset", "cet-only", "early-bird",
                                          "random-reinit"),
            note="the preset's defaults (the runs of lenet-lr0.05-iterations) against the baselines: other samples as "
                 "many as PrAC's set (random, highest EL2N), PrAC without CEP, the early stop alone, lt's masks "
                 "from a fresh initialisation", repeats="lenet-lr0.05-iterations"),
    Setting("lenet-equal-budget", LENET, LENET_BEFORE, ("prac", "lt", "random", "snip", "grasp", "synflow", "entropy-subset",
                                             "svp-subset", "random-subset", "el2n-subset"),
            note="the paper's baselines at PrAC's budget (the preset's defaults): SNIP, GraSP and SynFlow pruning each "
                 "round of the prac run's PrAC set, the Entropy, SVP, random and EL2N subsets as large as its sets, "
                 "each round for the prac run's epochs", repeats="lenet-lr0.05-iterations"),
    Setting("conv4-quarter-equal-budget", "fashion-conv", (*CONV_CPU, *CONV_BEFORE), ("prac", "lt", "random", "synflow", "el2n-subset"),
            precision="bfloat16",
            note="a conv net sized for this 2-core CPU: Conv-4 at a quarter of its channels (16, 16, 32, 32), on the "
                 "first 15,000 training images, 12 rounds (93.1 % of its conv weights pruned, its linear layers "
                 "dense), bfloat16"),
    Setting("lenet-paired", LENET, (AT_79_931,), PAIRED_METHODS, SEEDS_12,
            note="the preset as it is (the lottery-ticket paper's rates: hidden layers 20 %, output 10 % a round), 12 "
                 "seeds, the paper's baselines at PrAC's budget, tickets retrained at 79 % and 93.1 % only: every "
                 "method paired seed by seed with lt and with prac"),
    Setting("conv4-quarter-whole", "fashion-conv", (*CONV_CPU, AT_79_931), PAIRED_METHODS, tuple(range(10)),
            precision="bfloat16",
            note="conv4-quarter-equal-budget with the whole network pruned at the lottery-ticket paper's rates "
                 "(convolutions 10 %, hidden linear layers 20 %, output 10 % a round), tickets at 79 % and 93.1 %"),
]


# Set by --code-version: read back runs an earlier version of prac/ computed (runtime.code_version), instead of
# recomputing them after an unrelated change to prac/.
CODE_VERSION: list[str] = []


def configs(setting: Setting, output_dir: str | None):
    runtime = [f"runtime.precision={setting.precision}", *([f"runtime.output_dir={output_dir}"] if output_dir else []),
               *CODE_VERSION]
    return [apply_overrides(preset_config(setting.preset), [f"method={m}", f"seed={s}", *setting.overrides, *runtime])
            for s in setting.seeds for m in setting.methods]


def rows_of(setting: Setting, output_dir: str | None, run: bool, parallel: int = 1) -> list[dict]:
    """The per-round rows (method and seed added) of the setting's experiments, run where missing."""
    wanted = configs(setting, output_dir)
    missing = [c for c in wanted if finished_rounds(c) is None]
    if missing and not run:
        names = ", ".join(f"{c.method}/seed {c.seed}" for c in missing)
        raise UserError(f"{setting.name} has unfinished experiments ({names}); run without --no-run")
    return compare_in_process(wanted, log=lambda line: print(line, file=sys.stderr), parallel=parallel)


def similarity(setting: Setting, output_dir: str | None) -> pd.DataFrame:
    """Per round, the mean |mi ∩ mj| / |mi ∪ mj| of: each method's mask and lt's of the same seed, and lt's
    masks of two seeds (how far apart two equally good tickets are)."""
    return mask_similarity_frame(runs_of(configs(setting, output_dir)), across_seeds=["lt"])


def layer_analysis(setting: Setting, output_dir: str | None, rounds: tuple[int, ...]) -> pd.DataFrame:
    """Per method, round and prunable layer (means over seeds): the sparsity of the mask the round produced,
    and how much the weights it kept had grown in that round, mean |w| at pruning / mean |w| at the rewind
    point (global magnitude pruning ranks layers against each other by exactly this)."""
    rows = []
    for config in configs(setting, output_dir):
        if config.method not in ("prac", "lt"):
            continue
        paths = run_paths(config)
        round0 = load_round(paths.shared_round0 / "train.pt")
        for r in rounds:
            result = round0 if r == 0 else load_round(paths.round(r) / "train.pt")
            pruned_from, _ = method_snapshot(config.method, result, r)  # what the arm pruned
            mask = read_mask(paths.round(r) / "mask.parquet").mask
            for layer, kept in mask.items():
                rewind = round0.rewind_state[layer][kept]
                grown = pruned_from.last_state[layer][kept].abs().mean() / rewind.abs().mean()
                rows.append({"method": config.method, "seed": config.seed, "round": r, "layer": layer,
                             "sparsity": 1 - float(kept.float().mean()), "growth": float(grown)})
    frame = pd.DataFrame(rows)
    return frame.groupby(["round", "layer", "method"])[["sparsity", "growth"]].mean().unstack("method")


def layer_markdown(frame: pd.DataFrame) -> str:
    methods = list(frame["sparsity"].columns)
    lines = ["| round | layer | " + " | ".join(f"{m} sparsity %" for m in methods) + " | "
             + " | ".join(f"{m} kept-weight growth" for m in methods) + " |", "|---|---|" + "---|" * 2 * len(methods)]
    for (r, layer), row in frame.iterrows():
        lines.append(f"| {r} | {layer} | " + " | ".join(f"{100 * row[('sparsity', m)]:.1f}" for m in methods) + " | "
                     + " | ".join(f"{row[('growth', m)]:.2f}×" for m in methods) + " |")
    return "\n".join(lines) + "\n"


def _sparsity(x: float) -> str:
    return "nowhere" if x != x else f"{100 * x:.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


GAPS_AT = (0.79, 0.931)  # the sparsities docs/results.md compares methods at (rounds 7 and 12 of 20 %)


def methods_markdown(table: pd.DataFrame) -> str:
    """Per method against lt: the ticket (mean ± std over seeds) and its gap (mean − mean, points) where sparsity
    is nearest each of GAPS_AT and at the last round, and the iterations of all rounds, of prac's and saved."""
    budget = comparison.budgets(table).set_index("method")["of_reference"]
    at = " | ".join(f"ticket at {100 * x:g} % | gap" for x in GAPS_AT)
    lines = [f"| method | {at} | gap at the last round | iterations, all rounds | of prac's | saving |",
             "|---|" + "---|---|" * len(GAPS_AT) + "---|---|---|---|"]
    for method in (m for m in table["method"].unique() if m != comparison.REFERENCE):
        both = comparison.curve(table, method)
        if both.empty:
            continue
        rows, cells = table[table["method"] == method], []
        for x in GAPS_AT:
            near = both.iloc[(both["sparsity"] - x).abs().argmin()]
            row = rows[rows["round"] == near["round"]].iloc[0]
            cells.append(f"{_pct(row['ticket_mean'])} ± {_pct(row['ticket_std'])} | {100 * near['gap']:+.2f}")
        of_prac = budget.get(method, float("nan"))
        lines.append(f"| {method} | {' | '.join(cells)} | {100 * both.iloc[-1]['gap']:+.2f} | "
                     f"{rows['cumulative_iterations'].max():,.0f} | "
                     f"{'–' if of_prac != of_prac else f'{100 * of_prac:.1f} %'} | {_pct(both.iloc[-1]['saving'])} % |")
    return "\n".join(lines)


def setting_markdown(setting: Setting, table: pd.DataFrame, pairs: pd.DataFrame | None = None) -> str:
    grid = comparison.accuracy_grid(table)
    lines = [f"### {setting.name}", "", setting.note, "", f"`{setting.command()}`", "",
             f"Dense (round 0, best validation): {_pct(comparison.dense_accuracy(table))} %", "",
             "| round | sparsity % | " + " | ".join(f"{m} ticket %" for m in grid.columns) + " |",
             "|---|---|" + "---|" * len(grid.columns)]
    for (r, sparsity), cells in grid.iterrows():
        lines.append(f"| {r} | {100 * sparsity:.1f} | " + " | ".join(map(str, cells)) + " |")
    seeds = int(table["seeds"].max())
    lines += ["", *[f"- {match_line(m, seeds)}" for m in comparison.matches(table)],
              *[f"- {dense_line(table, m, seeds)}" for m in setting.methods], ""]
    if (table["method"] == comparison.REFERENCE).any() and len(setting.methods) > 2:
        lines += [methods_markdown(table), ""]
        lines += [*[f"- {w}" for w in comparison.budget_warnings(table, meant_at_prac_budget)], ""]
    if pairs is not None and len(pairs) and paired.max_seeds(pairs) >= 2:
        lines += [line.replace("## Paired", "#### Paired").replace("### against", "##### against")
                  for line in paired_markdown(pairs)] + [""]
    prac = table[table["method"] == "prac"]
    if len(prac):
        lines += ["PrAC rounds (means over seeds; early stop: seeds that stopped early in that round):", "",
                  "| round | trained on | epochs | iterations | early stop | round's model test % | next PrAC set | "
                  "% of D0 | CET | CEP |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for _, row in prac.iterrows():
            lines.append(f"| {row['round']} | {row['train_set_size']:.0f} | {row['epochs_run']:.1f} | "
                         f"{row['train_iterations']:.0f} | {row['early_stopped']:.0f}/{row['seeds']} | "
                         f"{_pct(row['test_mean'])} | "
                         f"{row['prac_set_size']:.0f} | {100 * row['prac_set_fraction']:.1f} | {row['cet_size']:.0f} | "
                         f"{row['cep_size']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def summary_markdown(tables: dict[Setting, pd.DataFrame]) -> str:
    lines = ["| setting | prac matched up to (sparsity %; every round through) | iteration saving there | without round 0 | "
             "gap at 79 % (points) | gap at the last round | prac iterations to the last round vs lt | "
             "prac / lt within one std of dense up to (sparsity %) |",
             "|---|---|---|---|---|---|---|---|"]
    for setting, table in ((s, t) for s, t in tables.items() if s.repeats is None):
        m = comparison.match(table, "prac")
        both = comparison.curve(table, "prac")
        at79 = both.iloc[(both["sparsity"] - 0.79).abs().argmin()]
        last = both.iloc[-1]
        matched = (f"{100 * m.matched_sparsity:.1f} ({_sparsity(m.matched_through)})" if m.matched_round is not None
                   else "nowhere")
        without = m.iteration_saving_without_round0
        saving = f"{_pct(m.iteration_saving)} %" if m.matched_round is not None else "–"
        lines.append(f"| {setting.name} | {matched} | {saving} | "
                     f"{_pct(without) + ' %' if without == without else '–'} | {100 * at79['gap']:+.2f} ± "
                     f"{100 * at79['reference_std']:.2f} | {100 * last['gap']:+.2f} | saving {_pct(last['saving'])} % | "
                     f"{_sparsity(comparison.dense_matched_sparsity(table, 'prac'))} / "
                     f"{_sparsity(comparison.dense_matched_sparsity(table, 'lt'))} |")
    return "\n".join(lines) + "\n"


def near_dense_figure(table: pd.DataFrame, title: str, below: float = 4.0, above: float = 1.5):
    """The accuracy figure with its axis from `below` points under the dense network to `above` over it, when a
    method collapses far below (GraSP at high sparsity) and squeezes every other curve into one line; else None."""
    dense = 100 * comparison.dense_accuracy(table)
    if not (100 * table["ticket_mean"] < dense - 2 * below).any():
        return None
    fig = accuracy_figure(table, f"{title}, near dense")
    fig.axes[0].set_ylim(dense - below, dense + above)
    return fig


def write_results(settings: list[Setting], out: Path, output_dir: str | None, run: bool, parallel: int = 1,
                  tables_name: str = "tables.md") -> dict[Setting, pd.DataFrame]:
    rows = {s: rows_of(s, output_dir, run, parallel) for s in settings}
    tables = {s: comparison.per_sparsity(r) for s, r in rows.items()}
    pairs = {s: paired.paired_table(r) for s, r in rows.items()}
    for setting, table in tables.items():
        title = f"{setting.name}: {setting.preset}, seeds {','.join(map(str, setting.seeds))}"
        if len(pairs[setting]) and paired.max_seeds(pairs[setting]) >= 2:
            save(paired_figure(pairs[setting], title, paired.DEFAULT_MARGIN), out / f"{setting.name}-paired.png")
        save(accuracy_figure(table, title), out / f"{setting.name}-accuracy.png")
        if near_dense := near_dense_figure(table, title):
            save(near_dense, out / f"{setting.name}-accuracy-near-dense.png")
        save(iterations_figure(table, title), out / f"{setting.name}-iterations.png")
        if (table["method"] == "prac").any():
            save(set_sizes_figure(table, title), out / f"{setting.name}-sets.png")
        if (table["method"] == "lt").any():
            save(similarity_figure(similarity(setting, output_dir), title), out / f"{setting.name}-masks.png")
    with_prac = {s.name: t for s, t in tables.items()
                 if s.repeats is None and (t["method"] == "prac").any() and (t["method"] == "lt").any()}
    if with_prac and tables_name == "tables.md":  # across every setting: not redrawn for one (--only)
        save(tradeoff_figure(with_prac, "PrAC's saving and accuracy gap to lt, per setting (means over seeds)"),
             out / "tradeoff.png")
    text = ["# Tables (written by `python bench/results.py`)", "", summary_markdown(tables)]
    for setting, table in tables.items():
        text.append(setting_markdown(setting, table, pairs[setting]))
        if {"prac", "lt"} <= set(setting.methods) and setting.repeats is None:
            last = int(table["round"].max())
            rounds = tuple(sorted({0, last // 2, last}))
            text += ["Per layer (means over seeds): the sparsity of the round's mask, and the growth of the weights "
                     "it kept during that round's training (mean |w| where pruned / at the rewind point):", "",
                     layer_markdown(layer_analysis(setting, output_dir, rounds))]
    with atomic_write(out / tables_name) as tmp:
        tmp.write_text("\n".join(text))
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="a setting's name (repeatable); default: all")
    parser.add_argument("--no-run", action="store_true", help="fail instead of training what is missing")
    parser.add_argument("--out", default="docs/results", help="where figures and tables.md go")
    parser.add_argument("--output-dir", help="where the experiments' runs are (runtime.output_dir)")
    parser.add_argument("--parallel", type=int, default=1, help="experiments at once, as processes (default 1)")
    parser.add_argument("--code-version", help="the runs' runtime.code_version (their config.json): read back what an "
                                               "earlier prac/ computed")
    args = parser.parse_args(argv)
    CODE_VERSION[:] = [f"runtime.code_version={args.code_version}"] if args.code_version else []
    known = {s.name: s for s in SETTINGS}
    unknown = [n for n in args.only or [] if n not in known]
    if unknown:
        parser.error(f"unknown setting {unknown}; known: {', '.join(known)}")
    settings = [known[n] for n in args.only] if args.only else SETTINGS
    tables_name = f"tables-{'-'.join(args.only)}.md" if args.only else "tables.md"
    try:
        write_results(settings, Path(args.out), args.output_dir, run=not args.no_run, parallel=max(1, args.parallel),
                      tables_name=tables_name)
    except UserError as error:  # bad input: one line, exit 2
        print(f"results: error: {error}", file=sys.stderr)
        return 2
    print(f"figures and {tables_name} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
