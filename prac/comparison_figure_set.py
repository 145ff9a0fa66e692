"""Every figure of one comparison, by name (the comparison run logs them as figures/<name>.png): what the
per-round rows show, and what the experiments' masks and PrAC sets show. A figure whose inputs are missing
or unreadable is left out with a note, so the comparison of finished experiments still gets the rest."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Iterable

from matplotlib.figure import Figure

from prac import comparison
from prac.comparison_figures import accuracy_figure, iterations_figure, set_sizes_figure, similarity_figure
from prac.comparison_inputs import (Runs, class_share_frame, mask_similarity_frame, prac_sets, sample_images,
                                    set_method, showcase_round)
from prac.errors import ArtifactError, DataError
from prac.set_figures import class_share_figure, sample_grid_figure

HEADLINE = "accuracy"  # the figure a link to the comparison opens on


def figure_set(rows: Iterable[dict[str, Any]], runs: Runs, title: str,
               note: Callable[[str], None] = print) -> dict[str, Figure]:
    table = comparison.per_sparsity(rows)
    figures = {HEADLINE: accuracy_figure(table, title), "iterations": iterations_figure(table, title)}
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
