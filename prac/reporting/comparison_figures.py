"""The comparison's figures (matplotlib, PNG): ticket accuracy vs sparsity with std bands and the dense
line (paper Fig. 3 top), cumulative iterations vs sparsity (Fig. 3 bottom), the PrAC set's parts per
round (Table A3), the paired differences over seeds with their intervals, and the saving/accuracy trade-off
across settings. Input: prac.reporting.comparison.per_sparsity."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on workers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from prac.reporting import comparison  # noqa: E402
from prac.artifacts.atomic import atomic_write  # noqa: E402

FIGURE_DPI = 110  # every comparison figure's resolution, on disk and in MLflow (the overview places them 1:1)
COLORS = {"lt": "tab:blue", "prac": "tab:orange", "random": "tab:gray"}
# Any other method (random-subset, el2n-subset, cet-only, ...) takes the next of the tab10 colours these three
# leave, then tab20's light ones, in sorted order: a method keeps its colour across one comparison's figures.
_FALLBACK = [f"tab:{c}" for c in ("green", "red", "purple", "brown", "pink", "olive", "cyan")] + \
    [matplotlib.colormaps["tab20"](i) for i in range(1, 20, 2)]


def method_colors(methods) -> dict[str, object]:
    """A colour per method: COLORS for the usual three, the fallback cycle (repeating) for any other."""
    spare = itertools.cycle(_FALLBACK)
    return {m: COLORS.get(m) or next(spare) for m in sorted(set(methods))}


def _sparsity_axis(ax, table: pd.DataFrame) -> None:
    """Rounds evenly spaced (sparsity grows geometrically), labelled with their sparsity."""
    sparsity = table.groupby("round")["sparsity"].mean()
    ax.set_xticks(list(sparsity.index), [f"{100 * s:.0f}" if s < 0.9 else f"{100 * s:.1f}" for s in sparsity],
                  rotation=60, fontsize=8)
    ax.set_xlabel("sparsity of the ticket (%)")


def _finish(fig: Figure, ax, frame: pd.DataFrame, ylabel: str, title: str) -> Figure:
    """What every per-round figure ends with: the sparsity axis, labels, legend and grid."""
    _sparsity_axis(ax, frame)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def accuracy_figure(table: pd.DataFrame, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    colors = method_colors(table["method"])
    for method, rows in table.groupby("method"):
        rows = rows.dropna(subset=["ticket_mean"])
        mean, std = 100 * rows["ticket_mean"], 100 * rows["ticket_std"]
        ax.plot(rows["round"], mean, marker="o", ms=3, label=method, color=colors[method])
        ax.fill_between(rows["round"], mean - std, mean + std, alpha=0.2, color=colors[method])
    dense = comparison.dense_accuracy(table)
    if not math.isnan(dense):
        ax.axhline(100 * dense, ls="--", color="black", lw=1, label="dense")
    return _finish(fig, ax, table, "ticket test accuracy (%), mean ± std", title)


def iterations_figure(table: pd.DataFrame, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    colors = method_colors(table["method"])
    for method, rows in table.groupby("method"):
        ax.plot(rows["round"], rows["cumulative_iterations"], marker="o", ms=3, label=method, color=colors[method])
    return _finish(fig, ax, table, "cumulative training iterations", title)


def paired_figure(pairs: pd.DataFrame, title: str, margin: float) -> Figure:
    """Per reference (lt, then prac) a panel: each method's paired difference of ticket accuracy (points, mean
    over seeds) against sparsity with its 95 % interval as a bar (prac.reporting.paired), 0 as a line and, against
    lt, the non-inferiority margin dashed. Methods are shifted sideways a little so their bars do not hide each
    other."""
    references = list(dict.fromkeys(pairs["reference"]))
    fig, axes = plt.subplots(len(references), 1, figsize=(7, 0.4 + 3.0 * len(references)), layout="constrained",
                             squeeze=False)
    fig.suptitle(f"{title}: paired over {int(pairs['seeds'].max())} seeds", fontsize=10)
    colors = method_colors(pairs["method"])
    for ax, reference in zip(axes[:, 0], references):
        rows = pairs[pairs["reference"] == reference]
        methods = sorted(rows["method"].unique())
        for i, (method, own) in enumerate((m, rows[rows["method"] == m]) for m in methods):
            shift = 0.3 * (i - (len(methods) - 1) / 2) / max(len(methods), 1)
            low, high = own["mean_difference"] - own["ci_low"], own["ci_high"] - own["mean_difference"]
            ax.errorbar(own["round"] + shift, 100 * own["mean_difference"], yerr=[100 * low, 100 * high], capsize=3,
                        marker="o", ms=3, label=method, color=colors[method])
        ax.axhline(0, color="black", lw=1)
        if reference == comparison.REFERENCE:
            ax.axhline(-100 * margin, color="black", lw=1, ls="--", label=f"−{100 * margin:.2f} (margin)")
        _finish(fig, ax, rows, f"− {reference} (points)",
                f"ticket accuracy − {reference}'s, same seed: mean and 95 % interval")
    return fig


def set_sizes_figure(table: pd.DataFrame, title: str, method: str = "prac") -> Figure:
    """The next round's PrAC set and its parts after each round, and how many samples are in both."""
    rows = table[table["method"] == method]
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    overlap = rows["cet_size"] + rows["cep_size"] - rows["prac_set_size"]
    for label, values in (("PrAC set", rows["prac_set_size"]), ("CET", rows["cet_size"]),
                          ("CEP", rows["cep_size"]), ("CET ∩ CEP", overlap)):
        ax.plot(rows["round"], values, marker="o", ms=3, label=label)
    return _finish(fig, ax, table, "samples (mean over seeds)", title)


def similarity_figure(frame: pd.DataFrame, title: str) -> Figure:
    """Mask similarity |mi ∩ mj| / |mi ∪ mj| per round (paper Fig. A13); `frame`: round, sparsity, pair,
    similarity."""
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    for pair, rows in frame.groupby("pair"):  # dashed: one method between seeds (lines there often coincide)
        ax.plot(rows["round"], rows["similarity"], marker="o", ms=3, label=pair,
                ls="--" if pair.endswith("two seeds") else "-")
    ax.set_ylim(0, 1.02)
    return _finish(fig, ax, frame, "mask similarity (IoU of kept weights)", title)


def tradeoff_figure(settings: dict[str, pd.DataFrame], title: str, method: str = "prac",
                    at: tuple[float, ...] = (0.79, 0.965)) -> Figure:
    """One point per setting and target sparsity: the iterations saved up to that sparsity against the
    ticket's accuracy gap to lt there, with lt's std over seeds as the error bar (inside it: matched)."""
    fig, axes = plt.subplots(1, len(at), figsize=(5 * len(at) + 2.5, 4.6), layout="constrained", sharey=True,
                             squeeze=False)
    markers = "osD^v<>pXh"
    for ax, target in zip(axes[0], at):
        for i, (name, table) in enumerate(settings.items()):
            both = comparison.curve(table, method)
            row = both.iloc[(both["sparsity"] - target).abs().argmin()]
            ax.errorbar(100 * row["saving"], 100 * row["gap"], yerr=100 * row["reference_std"], capsize=3,
                        fmt=markers[i % len(markers)], color=f"C{i % 10}", label=name)
        ax.axhline(0, color="black", lw=1)
        ax.set_xlabel(f"iterations saved vs lt up to {100 * target:.1f} % sparsity (%)")
        ax.set_title(f"at {100 * target:.1f} % sparsity", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{method} − lt ticket accuracy (points; bar: lt's std)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title, fontsize=10)
    return fig


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=FIGURE_DPI, format="png")
    plt.close(fig)
    return path
