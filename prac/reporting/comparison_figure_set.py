"""Every figure of one comparison, by name (the comparison run logs them as figures/<name>.png): what the
per-round rows show, and what the experiments' masks and PrAC sets show. A figure whose inputs are missing
or unreadable is left out with a note, so the comparison of finished experiments still gets the rest."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Iterable

import numpy as np
from matplotlib.figure import Figure

from prac.reporting import comparison, paired
from prac.reporting.comparison_figures import (FIGURE_DPI, accuracy_figure, iterations_figure, paired_figure,
                                               set_sizes_figure, similarity_figure)
from prac.reporting.comparison_inputs import (Runs, class_share_frame, mask_similarity_frame, prac_sets, sample_images,
                                    set_method, showcase_round)
from prac.errors import ArtifactError, DataError
from prac.reporting.set_figures import class_share_figure, sample_grid_figure

HEADLINE = "overview"  # the figure a link to the comparison opens on: all the others on one page


def figure_set(rows: Iterable[dict[str, Any]], runs: Runs, title: str,
               note: Callable[[str], None] = print, margin: float = paired.DEFAULT_MARGIN) -> dict[str, Figure]:
    rows = list(rows)
    figures = _figures(comparison.per_sparsity(rows), paired.paired_table(rows), runs, title, note, margin)
    return {HEADLINE: overview_figure(figures, title), **figures}


def _figures(table, pairs, runs: Runs, title: str, note: Callable[[str], None], margin: float) -> dict[str, Figure]:
    figures = {"accuracy": accuracy_figure(table, title), "iterations": iterations_figure(table, title)}
    if len(pairs) and pairs["seeds"].max() >= 2:  # one seed has no interval: its summary says so
        figures["paired_difference"] = paired_figure(pairs, title, margin)
    method = set_method(table)
    try:
        similarity = mask_similarity_frame(runs)
        if len(similarity):
            figures["mask_similarity"] = similarity_figure(similarity, f"{title}: masks")
    except ArtifactError as error:
        note(f"mask similarity figure left out: {error}")
    if method is None:
        note("no method selected a proper subset of D0: no PrAC-set figures")
        return figures
    figures["set_sizes"] = set_sizes_figure(table, f"{title}: {method}'s PrAC sets", method)
    try:
        sets = prac_sets(runs, method)
        sparsity = table.groupby("round")["sparsity"].mean().to_dict()
        shares = class_share_frame(sets, sparsity)
        if len(shares):
            figures["class_shares"] = class_share_figure(shares, f"{title}: classes in {method}'s PrAC sets "
                                                                 f"(mean over {len(sets)} seeds)")
        seed = min(sets) if sets else None
        r = showcase_round(sets[seed]) if seed is not None else None
        if r is not None:
            groups = sample_images(runs[(method, seed)], sets[seed][r])
            figures["samples"] = sample_grid_figure(
                groups, f"{title}: {method} · seed {seed} · the PrAC set round {r} selected")
    except (ArtifactError, DataError) as error:
        note(f"PrAC-set figures left out: {error}")
    return figures


def _pixels(figure: Figure) -> np.ndarray:
    figure.set_dpi(FIGURE_DPI)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())


def overview_figure(figures: dict[str, Figure], title: str, columns: int = 2, cell: int = 770) -> Figure:
    """Every figure of the comparison in one image, `columns` per row, each `cell` pixels wide (wider ones
    scaled down): the one page a link opens, narrow enough for the MLflow UI to show it at its own size."""
    images = [_pixels(figure) for figure in figures.values()]
    heights = [image.shape[0] * cell / image.shape[1] for image in images]
    rows = [heights[r:r + columns] for r in range(0, len(images), columns)]
    title_px = 36
    width, height = columns * cell, title_px + sum(max(row) for row in rows)
    overview = Figure(figsize=(width / FIGURE_DPI, height / FIGURE_DPI), dpi=FIGURE_DPI)
    overview.text(0.5, 1 - 0.5 * title_px / height, f"{title}: every figure of the comparison (each also under "
                  "figures/)", ha="center", va="center", fontsize=11)
    top = title_px
    for r, row in enumerate(rows):
        for c, h in enumerate(row):
            ax = overview.add_axes((c * cell / width, 1 - (top + h) / height, cell / width, h / height))
            ax.imshow(images[r * columns + c], interpolation="antialiased")
            ax.axis("off")
        top += max(row)
    return overview
