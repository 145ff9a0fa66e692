"""bench/inference.py (benchmark 12), in-process on tiny settings: its tickets are the engine's magnitude pruning at
the preset's rates (each round's sparsity the one the engine plans), the masked network is the dense one with the
mask applied, the sparse modules predict what it predicts, and the table has its shape. No timing is asserted: the
figures of a --quick run mean nothing."""
from __future__ import annotations

import csv
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import inference  # noqa: E402
import inference_tickets  # noqa: E402

from prac.experiment import run_experiment  # noqa: E402
from prac.export.sparse_module import CSR, sparsify  # noqa: E402
from prac.imp.bounds import round_sparsities  # noqa: E402
from prac.settings.overrides import apply_overrides  # noqa: E402
from prac.settings.presets import preset_config  # noqa: E402
from prac.training.masks import prunable_parameters  # noqa: E402

pytestmark = pytest.mark.filterwarnings(f"ignore:{inference.CSR_BETA_WARNING}")


@pytest.mark.parametrize("model", ["lenet300", "conv2"])
def test_each_round_prunes_as_the_engine_plans(model, one_thread):
    network = inference_tickets.fresh_network(model)
    rule = inference_tickets.prune_rule(model, network)
    rounds = inference_tickets.preset_rounds(model)
    sizes = {name: p.numel() for name, p in prunable_parameters(network).items()}
    planned = round_sparsities(sizes, rule, rounds)
    tickets = list(inference_tickets.imp_tickets(model, [0, rounds // 2, rounds - 1]))
    assert [t.round for t in tickets] == [0, rounds // 2, rounds - 1]
    assert [t.sparsity for t in tickets] == pytest.approx([planned[t.round] for t in tickets], abs=1e-12)
    assert tickets[-1].sparsity > 0.9 if model == "lenet300" else tickets[-1].sparsity > 0.5


def test_masked_dense_and_sparse_forms_compute_the_masked_network(one_thread):
    ticket = next(inference_tickets.imp_tickets("lenet300", [10]))
    dense_weights = prunable_parameters(ticket.dense)
    assert all(bool((w != 0).all()) for w in dense_weights.values())  # the dense twin keeps every weight
    masked_weights = {name: w.detach() for name, w in prunable_parameters(ticket.masked).items()}
    masks = {name: w != 0 for name, w in masked_weights.items()}
    inputs = torch.randn(16, *ticket.image_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        by_hand = functional_call(ticket.dense, {n: dense_weights[n] * masks[n] for n in masks}, (inputs,))
        masked = ticket.masked(inputs)
        sparse = sparsify(ticket.masked, {name: CSR for name in masks})(inputs)
    torch.testing.assert_close(masked, by_hand)
    torch.testing.assert_close(sparse, masked, rtol=1e-4, atol=1e-5)
    assert torch.equal(sparse.argmax(1), masked.argmax(1))


def _table(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # the whole --quick benchmark, in-process: about 12 s
def test_quick_run_writes_its_table(tmp_path, capsys, one_thread):
    out = tmp_path / "inference.csv"
    code = inference.main(["--quick", "--threads", "1", "--models", "lenet300,conv2", "--batches", "1,4",
                           "--rounds", "0,14", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed[-3000:]
    rows = _table(out)
    assert [(r["model"], r["round"], r["batch"]) for r in rows] == [
        (m, r, b) for m in ("lenet300", "conv2") for r in ("0", "14") for b in ("1", "4")]
    layers = {"lenet300": {"fc1", "fc2", "fc3"},
              "conv2": {"features.conv1", "features.conv2", "fc1", "fc2", "fc3"}}
    for row in rows:
        assert row["layers"] == str(len(layers[row["model"]]))
        assert set(row["export_csr_layers"].split()) <= layers[row["model"]]
        for form in inference.FORMS:
            assert float(row[f"{form}_median_s"]) > 0
        for form in inference.FORMS[1:]:
            assert math.isfinite(float(row[f"{form}_speedup"])) and float(row[f"{form}_speedup"]) > 0
        assert float(row["agreement"]) == 1.0 and float(row["max_abs_diff"]) < 1e-4
        assert row["weights"] == "untrained"
        timed_alone = [part.split("=")[0] for part in row["layer_dense_s"].split()]
        assert set(timed_alone) == layers[row["model"]] and float(row["ceiling"]) > 1.0
    assert float(rows[2]["sparsity"]) > 0.9  # LeNet-300-100's round 14
    assert "| model" in printed and "target (exported LeNet-300-100" in printed and "layers alone" in printed
    assert re.search(r"\d+\.\d+x", printed.strip().splitlines()[-1])  # the ratio line, last


def test_markdown_table(tmp_path, one_thread):
    out = tmp_path / "inference.md"
    assert inference.main(["--quick", "--threads", "1", "--models", "lenet300", "--batches", "2", "--rounds", "3",
                           "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("| model") and lines[1].startswith("|---") and len(lines) == 3
    assert "lenet300" in lines[2] and "x)" in lines[2]


def test_run_folder_uses_its_masks_and_trained_tickets(tmp_path, capsys, one_thread):
    config = apply_overrides(preset_config("digits-smoke"), [
        f"runtime.output_dir={tmp_path}", "runtime.device=cpu", "method=lt", "prune.rounds=2", "train.epochs=2",
        "train.milestones=[1]", "runtime.evaluate_tickets=all"])
    run = run_experiment(config, log=lambda _: None).output_dir
    out = tmp_path / "run.csv"
    assert inference.main(["--quick", "--threads", "1", "--batches", "2", "--run", str(run), "--out", str(out)]) == 0
    rows = _table(out)
    assert [r["round"] for r in rows] == ["0", "1"] and {r["model"] for r in rows} == {"conv2"}
    assert {r["weights"] for r in rows} == {"trained"}
    assert all(float(r["agreement"]) == 1.0 for r in rows)
    capsys.readouterr()


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as stop:
        inference.main(["--models", "resnet"])
    assert stop.value.code == 2
