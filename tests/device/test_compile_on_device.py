"""`runtime.compile=true`: the experiment's process compiles once and reuses the compiled model in every
later stage and round, for every batch size (the last, partial batch of each round's subset included).

On a GPU the real compiler (inductor) runs; on the CPU the same capture runs with the "eager" backend
(graphs captured, no code generated: what decides recompiles is the capture, and the CPU check stays
seconds instead of minutes), with NNPACK off: its CPU-only rule (batches of 16 or more) would add one
graph for a last batch under 16, a rule of torch's CPU kernels, not of this code."""
from __future__ import annotations

import contextlib
import re

import pytest
import torch
from torch._dynamo.utils import counters

import prac.context
from device_runs import BATCH, short_config
from prac.artifacts import read_mask
from prac.experiment import run_experiment
from prac.masks import is_nested
from prac.run_paths import run_paths


def graphs_captured() -> int:
    return counters["stats"]["unique_graphs"]


def test_a_compiled_experiment_compiles_in_round_0_only(device, cifar_dir, tmp_path, monkeypatch):
    config = short_config(device, cifar_dir, tmp_path, "method=prac", "runtime.compile=true",
                          "runtime.evaluate_tickets=all")
    if device == "cpu":
        monkeypatch.setattr(prac.context, "COMPILE_OPTIONS", {**prac.context.COMPILE_OPTIONS, "backend": "eager"})
    torch._dynamo.reset()
    before = graphs_captured()
    per_round: list[int] = []

    def log(line: str) -> None:
        if re.match(r"round \d+: sparsity", line):  # a round's record: the round is done
            per_round.append(graphs_captured() - before)

    no_nnpack = torch.backends.nnpack.flags(enabled=False) if device == "cpu" else contextlib.nullcontext()
    with no_nnpack:
        result = run_experiment(config, log=log)
    assert len(per_round) == 3
    # Round 0 compiled the training graph and the evaluation graph; rounds 1 and 2 (subsets of other
    # sizes, CEP predictions, retrains) compile nothing more, except that torch gives a dimension of size
    # 1 a graph of its own: a PrAC set whose last batch holds a single sample may add one.
    single_sample_batch = any(r.train_set_size % BATCH == 1 for r in result.rounds[1:])
    assert per_round[0] >= 2
    assert per_round[1] >= per_round[0] and per_round[2] - per_round[0] <= int(single_sample_batch), per_round
    paths = run_paths(config)
    masks = [read_mask(paths.round(r) / "mask.parquet").mask for r in range(3)]
    assert is_nested(masks[2], masks[1]) and is_nested(masks[1], masks[0])
    assert [r.sparsity for r in result.rounds] == pytest.approx([0.2, 0.36, 0.488], abs=1e-3)
    assert result.rounds[-1].ticket_test_acc > 0.2
