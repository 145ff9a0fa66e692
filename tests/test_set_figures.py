"""What a comparison reads from the experiments' folders (masks, PrAC sets, the dataset's images) and the figures
drawn from it: mask similarity, class shares of the PrAC set, images inside and outside it, colours per method."""
from __future__ import annotations

from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from prac.reporting.comparison import per_sparsity
from prac.reporting.comparison_figure_set import figure_set
from prac.reporting.comparison_figures import COLORS, accuracy_figure, method_colors, save, similarity_figure
from prac.reporting.comparison_inputs import (class_share_frame, mask_similarity_frame, prac_sets, runs_of, sample_images,
                                    set_method, showcase_round)
from prac.data.digits import load_digits
from prac.training.masks import mask_similarity
from prac.training.masks import sparsity as mask_sparsity
from prac.reporting.set_figures import class_share_figure, sample_grid_figure
from tests import synthetic_runs as synthetic

NEW_METHODS = ["random-subset", "el2n-subset", "cet-only", "early-bird", "random-reinit", "transfer"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return runs_of(synthetic.write_runs(tmp_path_factory.mktemp("runs")))


def assert_png_drawn(path, min_height=200, min_width=400):
    image = plt.imread(path)
    assert image.shape[0] >= min_height and image.shape[1] >= min_width, image.shape
    assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas


def test_mask_similarity_between_methods_and_between_seeds(runs):
    frame = mask_similarity_frame(runs)
    assert set(frame["pair"]) == {"prac vs lt, same seed", "random vs lt, same seed", "lt vs lt, two seeds",
                                  "prac vs prac, two seeds", "random vs random, two seeds"}
    masks = {(m, s): synthetic.masks(m, s) for m in synthetic.METHODS for s in synthetic.SEEDS}
    # the sparsity the mask files hold (near 0.8^(r+1) kept), not a formula of the rate
    held = [mask_sparsity(masks[("lt", 0)][r]) for r in range(4)]
    assert list(frame.groupby("round")["sparsity"].first()) == pytest.approx(held)
    assert held == pytest.approx([0.2, 0.36, 0.488, 0.5904], abs=0.002) and held != [0.2, 0.36, 0.488, 0.5904]
    row = frame[(frame["round"] == 2) & (frame["pair"] == "prac vs lt, same seed")].iloc[0]
    assert row["similarity"] == pytest.approx(np.mean([mask_similarity(masks[("prac", s)][2], masks[("lt", s)][2])
                                                       for s in synthetic.SEEDS]))
    row = frame[(frame["round"] == 1) & (frame["pair"] == "lt vs lt, two seeds")].iloc[0]
    assert row["similarity"] == pytest.approx(np.mean([mask_similarity(masks[("lt", a)][1], masks[("lt", b)][1])
                                                       for a, b in combinations(synthetic.SEEDS, 2)]))
    only_lt = mask_similarity_frame(runs, across_seeds=["lt"])  # what bench/results.py draws
    assert set(only_lt["pair"]) == {"prac vs lt, same seed", "random vs lt, same seed", "lt vs lt, two seeds"}


def test_mask_similarity_without_lt_pairs_methods_and_skips_missing_files(runs, tmp_path):
    without_lt = {k: c for k, c in runs.items() if k[0] != "lt"}
    assert set(mask_similarity_frame(without_lt, across_seeds=[])["pair"]) == {"prac vs random, same seed"}
    lonely = {("prac", 0): runs[("prac", 0)].model_copy(update={"runtime": runs[("prac", 0)].runtime.model_copy(
        update={"output_dir": str(tmp_path)})}), ("lt", 0): runs[("lt", 0)]}
    assert mask_similarity_frame(lonely).empty  # prac's folder holds no masks: nothing to compare


def test_set_method_prefers_prac_then_any_method_with_a_proper_subset():
    def table(fractions: dict[str, float]) -> pd.DataFrame:
        return pd.DataFrame({"method": list(fractions), "prac_set_fraction": list(fractions.values())})

    assert set_method(table({"lt": 1.0, "cet-only": 0.3, "prac": 0.4})) == "prac"
    assert set_method(table({"lt": 1.0, "random-subset": 0.4, "cet-only": 0.3})) == "cet-only"
    assert set_method(table({"lt": 1.0, "random": 1.0})) is None


def test_class_shares_of_the_prac_set_against_d0(runs):
    sets = prac_sets(runs, "prac")
    assert sorted(sets) == list(synthetic.SEEDS) and sorted(sets[0]) == list(range(synthetic.ROUNDS))
    frame = class_share_frame(sets, {r: 0.1 * r for r in range(synthetic.ROUNDS)})
    assert sorted(frame["class"].unique()) == list(range(10))
    assert frame.groupby("round")["share"].sum().to_numpy() == pytest.approx(np.ones(4))
    _, labels = synthetic.d0_labels()
    d0 = frame[frame["round"] == 0].set_index("class")["d0_share"]
    assert d0.to_numpy() == pytest.approx(np.bincount(labels, minlength=10) / len(labels))
    expected = np.mean([np.bincount(s[1].label[s[1].in_prac], minlength=10)[9] / s[1].in_prac.sum()
                        for s in sets.values()])
    share9 = frame[(frame["round"] == 1) & (frame["class"] == 9)]["share"].iloc[0]
    assert share9 == pytest.approx(expected) and share9 > 1.5 * d0[9]  # the synthetic sets favour high labels
    assert class_share_frame(prac_sets(runs, "lt"), {}).empty  # all of D0 every round: nothing to show


def test_sample_images_come_from_the_dataset_rows_the_set_names(runs):
    prac_set = prac_sets(runs, "prac")[0][1]
    assert showcase_round(prac_sets(runs, "prac")[0]) == 1  # from round 1 on: CET and CEP at work
    groups = sample_images(runs[("prac", 0)], prac_set, per_group=10)
    raw = load_digits()
    inside, outside = set(prac_set.index[prac_set.in_prac]), set(prac_set.index[~prac_set.in_prac])
    for name, members in (("inside", inside), ("outside", outside)):
        images, labels = groups[name]
        assert images.shape == (10, 1, 8, 8) and images.dtype == np.uint8
        for image, label in zip(images, labels):  # each drawn image and label is a row of this side of the set
            same = np.flatnonzero((raw.train_images == image).all(axis=(1, 2, 3)))
            assert any(r in members and raw.train_labels[r] == label for r in same)
    again = sample_images(runs[("prac", 0)], prac_set, per_group=10)
    assert (again["inside"][0] == groups["inside"][0]).all()  # seeded: the same images every time


def test_class_share_and_sample_figures_are_drawn(runs, tmp_path):
    frame = class_share_frame(prac_sets(runs, "prac"), {r: 1 - 0.8 ** (r + 1) for r in range(4)})
    fig = class_share_figure(frame, "synthetic")
    grid = np.asarray(fig.axes[0].get_images()[0].get_array())
    assert grid.shape == (10, 5)  # classes × (D0 + 4 rounds)
    assert grid[:, 0] == pytest.approx(100 * frame[frame["round"] == 0]["d0_share"].to_numpy())
    assert_png_drawn(save(fig, tmp_path / "classes.png"))
    rgb = np.random.default_rng(0).integers(0, 256, size=(7, 3, 32, 32), dtype=np.uint8)
    for images in (rgb, sample_images(runs[("prac", 0)], prac_sets(runs, "prac")[0][1])["inside"][0]):
        groups = {"inside": (images, np.arange(len(images))), "outside": (images[:3], np.arange(3))}
        fig = sample_grid_figure(groups, "synthetic")
        shown = [ax for ax in fig.axes if ax.get_images()]
        assert len(shown) == len(images) + 3
        assert_png_drawn(save(fig, tmp_path / "samples.png"))


def test_every_method_gets_its_own_colour():
    methods = ["lt", "prac", "random", *NEW_METHODS]
    colors = method_colors(methods)
    assert {m: colors[m] for m in COLORS} == COLORS  # the usual three keep theirs
    assert len({to_rgba(c) for c in colors.values()}) == len(methods)
    assert method_colors(reversed(methods)) == colors  # the order methods come in does not matter
    assert len(method_colors([f"m{i}" for i in range(40)])) == 40  # past the palette: it repeats, no error
    rows = [dict(r, method=m) for m in NEW_METHODS for r in synthetic.ROWS if r["method"] == "prac"]
    fig = accuracy_figure(per_sparsity(rows + synthetic.ROWS), "synthetic")
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() != "dense"]
    assert len({to_rgba(line.get_color()) for line in lines}) == len(methods)
    plt.close(fig)


def test_figure_set_of_a_comparison(runs, tmp_path):
    notes = []
    figures = figure_set(synthetic.ROWS, runs, "synthetic", note=notes.append)
    assert list(figures) == ["overview", "accuracy", "iterations", "paired_difference", "mask_similarity", "set_sizes",
                             "class_shares", "samples"]
    assert notes == []
    for name, fig in figures.items():
        assert_png_drawn(save(fig, tmp_path / f"{name}.png"))
    # The overview holds the others side by side, two per row, at their own width (770 px at 110 dpi).
    overview = np.asarray(Image.open(tmp_path / "overview.png").convert("RGB"))
    accuracy = np.asarray(Image.open(tmp_path / "accuracy.png").convert("RGB"))
    assert overview.shape[1] == 2 * accuracy.shape[1]
    assert overview.shape[0] > 3 * min(accuracy.shape[0], 396)
    similarity = similarity_figure(mask_similarity_frame(runs), "synthetic")
    styles = {line.get_label(): line.get_linestyle() for line in similarity.axes[0].get_lines()}
    assert styles["prac vs lt, same seed"] == "-" and styles["lt vs lt, two seeds"] == "--"
    plt.close(similarity)


def test_figure_set_without_proper_subsets_or_files(tmp_path):
    full = [dict(r, prac_set_fraction=1.0) for r in synthetic.ROWS]
    notes = []
    figures = figure_set(full, runs_of(synthetic.configs(tmp_path)), "nothing written", note=notes.append)
    assert list(figures) == ["overview", "accuracy", "iterations", "paired_difference"]  # no masks, no set to show
    one_seed = figure_set([r for r in full if r["seed"] == 0], runs_of(synthetic.configs(tmp_path)), "one seed",
                          note=lambda _: None)
    assert "paired_difference" not in one_seed  # no interval with one seed
    for fig in one_seed.values():
        plt.close(fig)
    assert notes == ["no method selected a proper subset of D0: no PrAC-set figures"]
    for fig in figures.values():
        plt.close(fig)
