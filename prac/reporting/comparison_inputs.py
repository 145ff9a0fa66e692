"""What a comparison's figures read from the experiments' folders besides the per-round rows: the masks (mask
similarity between methods and between seeds, paper Fig. A13) and the PrAC sets (the class shares of the set,
Fig. A15; images inside and outside it, Fig. 9). Used by the comparison flow and bench/results.py.

`runs` maps (method, seed) to the experiment's config; a file a run lacks (a method that writes none, a run
not finished) leaves its values out rather than failing the comparison.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations

import numpy as np
import pandas as pd

from prac.artifacts import PracSet, read_mask, read_prac_set
from prac.reporting.comparison import REFERENCE
from prac.settings.config import ExperimentConfig
from prac.data.registry import load_dataset
from prac.training.masks import Mask, mask_similarity
from prac.training.masks import sparsity as mask_sparsity
from prac.layout.run_paths import run_paths

Runs = Mapping[tuple[str, int], ExperimentConfig]


def runs_of(configs: Iterable[ExperimentConfig]) -> dict[tuple[str, int], ExperimentConfig]:
    return {(c.method, c.seed): c for c in configs}


def _rounds(runs: Runs) -> range:
    return range(max(c.prune.rounds for c in runs.values()))


def _sparsity(masks: Iterable[Mask | None]) -> float:
    """The sparsity of one round's masks, as their files hold them (every pruner removes the same counts of
    each layer type, so the methods' agree); nan when none was written."""
    values = [mask_sparsity(m) for m in masks if m is not None]
    return sum(values) / len(values) if values else np.nan


def round_mask(config: ExperimentConfig, round_index: int) -> Mask | None:
    path = run_paths(config).round(round_index) / "mask.parquet"
    return read_mask(path).mask if path.exists() else None


def round_prac_set(config: ExperimentConfig, round_index: int) -> PracSet | None:
    path = run_paths(config).round(round_index) / "prac_set.parquet"
    return read_prac_set(path).prac_set if path.exists() else None


def mask_similarity_frame(runs: Runs, across_seeds: Iterable[str] | None = None) -> pd.DataFrame:
    """Per round, the mean |mi ∩ mj| / |mi ∪ mj| of: each method's mask and lt's of the same seed (without lt:
    every two methods, same seed), and each method of `across_seeds` (default: all) between two seeds (how far
    apart two equally found tickets are). Columns round, pair, similarity, sparsity."""
    methods = sorted({m for m, _ in runs}, key=lambda m: (m != REFERENCE, m))
    seeds = sorted({s for _, s in runs})
    if REFERENCE in methods:
        method_pairs = [(m, REFERENCE) for m in methods if m != REFERENCE]
    else:
        method_pairs = list(combinations(methods, 2))
    across = methods if across_seeds is None else [m for m in methods if m in set(across_seeds)]
    cache: dict[tuple[str, int, int], Mask | None] = {}  # lt's masks take part in every pair

    def mask(method: str, seed: int, r: int) -> Mask | None:
        if (method, seed, r) not in cache:
            config = runs.get((method, seed))
            cache[(method, seed, r)] = round_mask(config, r) if config is not None else None
        return cache[(method, seed, r)]

    def mean(pairs) -> float | None:
        values = [mask_similarity(a, b) for a, b in pairs if a is not None and b is not None]
        return sum(values) / len(values) if values else None

    rows = []
    for r in _rounds(runs):
        for a, b in method_pairs:
            value = mean((mask(a, s, r), mask(b, s, r)) for s in seeds)
            if value is not None:
                rows.append({"round": r, "pair": f"{a} vs {b}, same seed", "similarity": value})
        for method in across:
            value = mean((mask(method, s, r), mask(method, t, r)) for s, t in combinations(seeds, 2))
            if value is not None:
                rows.append({"round": r, "pair": f"{method} vs {method}, two seeds", "similarity": value})
    frame = pd.DataFrame(rows, columns=["round", "pair", "similarity"])
    by_round = {r: _sparsity(m for (_, _, at), m in cache.items() if at == r) for r in set(frame["round"])}
    return frame.assign(sparsity=[by_round[r] for r in frame["round"]])


def set_method(table: pd.DataFrame) -> str | None:
    """The method whose PrAC sets are worth showing: `prac` if it selected a proper subset of D0 in some round,
    else the first method that did (random-subset, cet-only, ...); None when every set is all of D0 (lt)."""
    fraction = table["prac_set_fraction"]
    selective = sorted(set(table.loc[(fraction > 0) & (fraction < 1), "method"]))
    return "prac" if "prac" in selective else (selective[0] if selective else None)


def prac_sets(runs: Runs, method: str) -> dict[int, dict[int, PracSet]]:
    """seed -> round -> the PrAC set that round selected (the next round's training set), where written."""
    out: dict[int, dict[int, PracSet]] = {}
    for (m, seed), config in sorted(runs.items()):
        if m == method:
            sets = {r: s for r in _rounds(runs) if (s := round_prac_set(config, r)) is not None}
            if sets:
                out[seed] = sets
    return out


def _selective(s: PracSet) -> bool:
    return 0 < int(s.in_prac.sum()) < len(s.in_prac)


def class_share_frame(sets: Mapping[int, Mapping[int, PracSet]], sparsity: Mapping[int, float]) -> pd.DataFrame:
    """Per round and class: the class's share of the PrAC set (mean over seeds) and of D0 (paper Fig. A15).
    Rounds whose set is all of D0 or empty say nothing and are left out. `sparsity`: round -> sparsity."""
    rows = []
    for seed, by_round in sets.items():
        for r, s in by_round.items():
            if not _selective(s):
                continue
            classes = int(s.label.max()) + 1
            d0 = np.bincount(s.label, minlength=classes) / len(s.label)
            inside = np.bincount(s.label[s.in_prac], minlength=classes) / int(s.in_prac.sum())
            rows += [{"seed": seed, "round": r, "class": c, "share": inside[c], "d0_share": d0[c]}
                     for c in range(classes)]
    frame = pd.DataFrame(rows, columns=["seed", "round", "class", "share", "d0_share"])
    frame = frame.groupby(["round", "class"], as_index=False)[["share", "d0_share"]].mean()
    return frame.assign(sparsity=[sparsity.get(r, np.nan) for r in frame["round"]])


def showcase_round(by_round: Mapping[int, PracSet]) -> int | None:
    """The round whose set a reader sees images of: the first from round 1 on (CET and CEP both at work) that
    is a proper subset of D0, else round 0's."""
    selective = [r for r, s in sorted(by_round.items()) if _selective(s)]
    later = [r for r in selective if r >= 1]
    return later[0] if later else (selective[0] if selective else None)


def sample_images(config: ExperimentConfig, prac_set: PracSet, per_group: int = 24, seed: int = 0
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`per_group` training images inside and outside the PrAC set, drawn with `seed` and shown in dataset
    order: {"inside"/"outside": (uint8 NCHW images, labels)}. The set's `index` is the row of the dataset's
    train split (before the validation split is taken out), so the images come from the raw dataset."""
    raw = load_dataset(config.data.dataset, config.runtime.data_dir, config.runtime.download)
    rng = np.random.default_rng(seed)
    out = {}
    for name, rows in (("inside", prac_set.in_prac), ("outside", ~prac_set.in_prac)):
        index = prac_set.index[rows]
        chosen = np.sort(rng.choice(index, size=min(per_group, len(index)), replace=False))
        out[name] = (raw.train_images[chosen], raw.train_labels[chosen])
    return out
