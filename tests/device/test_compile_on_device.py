"""`runtime.compile=true`: the experiment's process compiles once and reuses the compiled model in every
later stage and round, for every batch size (the last, partial batch of each round's subset included).

On a GPU the real compiler (inductor) runs; on the CPU the same capture runs with the "eager" backend
(graphs captured, no code generated: what decides recompiles is the capture, and the CPU check stays
seconds instead of minutes)."""
from __future__ import annotations

import re

import pytest
import torch
from torch._dynamo.utils import counters

import prac.imp.context
from device_runs import BATCH, short_config
from prac.artifacts import read_mask
from prac.experiment import run_experiment
from prac.training.masks import is_nested
from prac.layout.run_paths import run_paths


def graphs_captured() -> int:
    return counters["stats"]["unique_graphs"]


def size_class(batch: int) -> int:
    """The batch sizes torch compiles apart even with a dynamic batch dimension: 1 (a size-1 dimension is
    always specialised) and, on the CPU, 2-15 against 16 and more (its convolution kernels are chosen by
    that rule: NNPACK, oneDNN)."""
    return 1 if batch == 1 else 2 if batch < 16 else 16


def test_a_compiled_experiment_compiles_in_round_0_only(device, cifar_dir, tmp_path, monkeypatch):
    config = short_config(device, cifar_dir, tmp_path, "method=prac", "runtime.compile=true",
                          "runtime.evaluate_tickets=all")
    if device == "cpu":
        monkeypatch.setattr(prac.imp.context, "COMPILE_OPTIONS", {**prac.imp.context.COMPILE_OPTIONS, "backend": "eager"})
    torch._dynamo.reset()
    before = graphs_captured()
    per_round: list[int] = []

    def log(line: str) -> None:
        if re.match(r"round \d+: sparsity", line):  # a round's record: the round is done
            per_round.append(graphs_captured() - before)

    result = run_experiment(config, log=log)
    assert len(per_round) == 3
    # Round 0 compiled the training graph and the evaluation graph. Later rounds (subsets of other sizes,
    # CEP predictions, retrains) compile nothing more, except for a class of batch sizes round 0's training
    # never met: a PrAC set whose last batch is one sample, or (CPU) under 16.
    d0 = result.rounds[0].train_set_size
    trained_in_round_0 = {size_class(n) for n in (BATCH, d0 % BATCH) if n}
    later = {size_class(r.train_set_size % BATCH) for r in result.rounds[1:] if r.train_set_size % BATCH}
    allowed = len(later - trained_in_round_0)
    assert per_round[0] >= 2
    assert per_round[0] <= per_round[1] <= per_round[2] <= per_round[0] + allowed, (per_round, allowed)
    paths = run_paths(config)
    masks = [read_mask(paths.round(r) / "mask.parquet").mask for r in range(3)]
    assert is_nested(masks[2], masks[1]) and is_nested(masks[1], masks[0])
    # the paper's ResNet rate: its convolutions 20 % a round; its classifier, dense, counts in the sparsity
    assert [r.conv_sparsity for r in result.rounds] == pytest.approx([0.2, 0.36, 0.488], abs=1e-3)
    assert all(0 < r.sparsity < r.conv_sparsity and r.output_sparsity == 0 for r in result.rounds)
    assert result.rounds[-1].ticket_test_acc > 0.2
