"""Experiment folders with made-up masks and PrAC sets, in the real file formats and over the real digits D0, and
per-round rows to go with them: what the tests of a comparison's figures and MLflow run read, without training."""
from __future__ import annotations

import numpy as np
import torch

from prac.artifacts import PracSet, write_mask, write_prac_set
from prac.settings.config import ExperimentConfig
from prac.data.digits import load_digits
from prac.data.validation_split import split_train_validation
from prac.layout.fingerprint import fingerprint
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.layout.run_paths import run_paths
from tests.test_comparison import LT, PRAC, _rows

METHODS = ("prac", "lt", "random")
SEEDS = (0, 1, 2)
ROUNDS = 4
SHAPES = {"conv1.weight": (8, 1, 3, 3), "fc.weight": (10, 32)}

# prac as in tests/test_comparison (matched at 48.8 %), lt and random train on all of D0, random matches nowhere
ROWS = (PRAC + [dict(r, prac_set_fraction=1.0) for r in LT]
        + [dict(r, prac_set_fraction=1.0) for r in _rows("random", {r: [0.5, 0.5, 0.5] for r in range(4)}, [100] * 4)])


def configs(output_dir) -> list[ExperimentConfig]:
    base = preset_config("digits-smoke", runtime={"device": "cpu"})
    return [apply_overrides(base, [f"method={m}", f"seed={s}", f"prune.rounds={ROUNDS}", f"runtime.output_dir={output_dir}"])
            for s in SEEDS for m in METHODS]


def d0_labels() -> tuple[np.ndarray, np.ndarray]:
    """D0's positions in digits' train split and their labels (the digits-smoke split)."""
    raw = load_digits()
    index, _ = split_train_validation(len(raw.train_labels), 0.1, 0)
    return index, raw.train_labels[index]


def masks(method: str, seed: int) -> list[dict[str, torch.Tensor]]:
    """Nested masks keeping 0.8^(r+1) of each tensor; one seed's methods rank weights alike, seeds differ."""
    base = np.random.default_rng(seed)
    noise = np.random.default_rng(100 * seed + METHODS.index(method))
    scores = {k: base.random(s) + 0.3 * noise.random(s) for k, s in SHAPES.items()}
    out = []
    for r in range(ROUNDS):
        keep = 0.8 ** (r + 1)
        out.append({k: torch.from_numpy(v >= np.quantile(v, 1 - keep)) for k, v in scores.items()})
    return out


def prac_set(method: str, seed: int, r: int) -> PracSet:
    """prac: a set that favours high labels (class c drawn with probability 0.1 + 0.05 c); lt, random: all of D0."""
    index, labels = d0_labels()
    rng = np.random.default_rng(1000 * seed + r)
    n = len(index)
    if method == "prac":
        in_prac = rng.random(n) < 0.1 + 0.05 * labels
        in_cet = in_prac & (rng.random(n) < 0.7)
        in_cep = in_prac & ~in_cet | (in_prac & (rng.random(n) < 0.2))
    else:
        in_prac, in_cet, in_cep = np.ones(n, bool), rng.random(n) < 0.4, np.zeros(n, bool)
    events = np.where(in_cet, 1, 0).astype(np.int32)
    return PracSet(index=index.astype(np.int64), label=labels.astype(np.int64), trained=np.ones(n, bool),
                   forget_events=events, in_cet=in_cet, in_cep=in_cep, in_prac=in_prac)


def write_runs(output_dir) -> list[ExperimentConfig]:
    """Every method × seed's round folders with a mask.parquet and a prac_set.parquet; returns their configs."""
    written = configs(output_dir)
    for config in written:
        paths, fp = run_paths(config), fingerprint(config)
        for r, mask in enumerate(masks(config.method, config.seed)):
            write_mask(paths.round(r) / "mask.parquet", mask, fingerprint=fp, round=r)
            write_prac_set(paths.round(r) / "prac_set.parquet", prac_set(config.method, config.seed, r),
                           fingerprint=fp, round=r)
    return written
