"""Figures of what the PrAC sets hold (matplotlib, PNG through prac.reporting.comparison_figures.save): the share of
each class in the set against its share in D0, per round (paper Fig. A15), and training images inside and
outside the set (Fig. 9). Inputs from prac.reporting.comparison_inputs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on workers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

_ANNOTATE_UP_TO = 12  # classes: beyond that the cells are too small to print a number in
_LABEL_UP_TO = 40  # classes with a tick each


def class_share_figure(frame: pd.DataFrame, title: str) -> Figure:
    """A heat map, class × (D0, then each round's PrAC set): the class's share in percent. A class the set
    favours is brighter in a round's column than in D0's. `frame`: round, class, share, d0_share, sparsity."""
    shares = frame.pivot(index="class", columns="round", values="share")
    d0 = frame.groupby("class")["d0_share"].mean()
    grid = 100 * np.column_stack([d0.reindex(shares.index).to_numpy(), shares.to_numpy()])
    sparsity = frame.groupby("round")["sparsity"].mean()
    columns = ["D0"] + [f"r{r}\n{100 * sparsity[r]:.0f} %" for r in shares.columns]
    classes = len(shares.index)
    fig, ax = plt.subplots(figsize=(min(max(7.0, 2.5 + 0.75 * len(columns)), 14), min(2 + 0.3 * classes, 12)),
                           layout="constrained")
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    if classes <= _LABEL_UP_TO:
        ax.set_yticks(range(classes), [str(c) for c in shares.index], fontsize=8)
    ax.axvline(0.5, color="white", lw=2)  # D0 apart from the rounds
    if classes <= _ANNOTATE_UP_TO:
        middle = (grid.max() + grid.min()) / 2
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7,
                    color="black" if value > middle else "white")
    ax.set_xlabel("D0, then the PrAC set round r selected (sparsity of its mask)")
    ax.set_ylabel("class")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the set (%)")
    return fig


def _show(ax, image: np.ndarray) -> None:
    """One uint8 CHW image, grey when it has one channel."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(np.transpose(image, (1, 2, 0)))
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid_figure(groups: dict[str, tuple[np.ndarray, np.ndarray]], title: str, columns: int = 6) -> Figure:
    """Side by side, a grid of images per group ({"inside": (images, labels), "outside": ...}: the training
    images in and out of the PrAC set), each titled with its label."""
    rows = max(1, max(-(-len(images) // columns) for images, _ in groups.values()))
    fig = plt.figure(figsize=(2 * columns * 0.9 + 0.6, rows * 1.0 + 0.9), layout="constrained")
    panels = fig.subfigures(1, len(groups), wspace=0.04)
    panels = np.atleast_1d(panels)
    names = {"inside": "in the PrAC set", "outside": "not in the PrAC set"}
    for panel, (name, (images, labels)) in zip(panels, groups.items()):
        panel.suptitle(f"{names.get(name, name)} ({len(images)} drawn)", fontsize=9)
        axes = panel.subplots(rows, columns, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k < len(images):
                _show(ax, images[k])
                ax.set_title(str(int(labels[k])), fontsize=7, pad=2)
            else:
                ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig
