"""`prac-lth export` (prac.export): a retrained ticket of a tiny digits run written as the compact ticket, an ONNX
file and a sparse module; the ONNX file run in onnxruntime and the sparse module loaded back from its file predict
as the PyTorch ticket on every test sample; bad input is one line, exit 2.

One run (lt, 3 rounds of 3 epochs, a quarter-width Conv-2) whose rounds 0 and 2 are retrained and round 1 is not,
exported once with every layer forced to CSR (the sparse kernels exercised whatever this machine's timings say, and
no timing asserted anywhere), at small batch sizes (a CSR convolution at batch 256 takes seconds)."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import onnxruntime
import pytest
import torch
from rich.console import Console

from prac.errors import ArtifactError, UserError
from prac.experiment import run_experiment
from prac.export import export_run
from prac.export.export_run import export_ticket, nearest_round
from prac.export.export_table import print_export
from prac.export.onnx_export import INPUT, OUTPUT
from prac.export.sparse_module import SparseConv2d, SparseLinear, load_sparse_module
from prac.imp.ticket import load_ticket, ticket_context
from prac.imp.trained_ticket import TRAINED_FILE
from prac.layout.run_paths import run_paths
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.training.evaluate import predict
from tests.test_cli import assert_user_error, cli

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ["runtime.device=cpu", "method=lt", "prune.rounds=3", "train.epochs=3", "train.milestones=[2]",
            "model.width=0.25"]
EXPORTED_ROUND = 2  # the retrained round nearest round 1's sparsity (round 1 itself has no trained ticket)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run folder, each round's mask sparsity): rounds 0 and 2 retrained (evaluate_tickets=at:), round 1 not."""
    out = tmp_path_factory.mktemp("export-runs")
    config = apply_overrides(preset_config("digits-smoke"), [f"runtime.output_dir={out}", *SETTINGS])
    sparsities = ticket_context(config).round_sparsities()
    config = apply_overrides(config, [f"runtime.evaluate_tickets=at:{sparsities[0]},{sparsities[2]}"])
    return run_experiment(config, log=lambda _: None).output_dir, sparsities


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    folder, sparsities = run
    return export_ticket(folder, sparsity=sparsities[1], out=tmp_path_factory.mktemp("export") / "out", batch=8,
                         batches=(1,), measure_time=0.001, force="sparse")


@pytest.fixture(scope="module")
def reference(run):
    """(the trained ticket of the exported round, the run's context on the CPU)."""
    folder, _ = run
    return load_ticket(folder, EXPORTED_ROUND, trained=True), ticket_context(folder)


def _inputs(ctx) -> torch.Tensor:
    """Every test sample, normalised as the model was trained, float32."""
    return ctx.data.prepare(ctx.data.test.images, None, False).float()


def test_sparsity_picks_the_nearest_retrained_round(run, exported):
    folder, sparsities = run
    # round 1 is the nearest of all rounds to its own sparsity, but has no trained ticket: round 2 is the next nearest
    assert min(range(3), key=lambda r: abs(sparsities[r] - sparsities[1])) == 1
    assert abs(sparsities[2] - sparsities[1]) < abs(sparsities[0] - sparsities[1])
    assert exported.round == EXPORTED_ROUND
    ctx = ticket_context(folder)
    assert nearest_round(ctx, 0.0) == 0 and nearest_round(ctx, 1.0) == 2
    assert nearest_round(ctx, (sparsities[0] + sparsities[2]) / 2) == 0  # the earlier of two as near


def test_three_files_and_the_card_are_written(run, exported):
    folder, _ = run
    files = {path.name for path in exported.folder.iterdir()}
    assert files == {TRAINED_FILE, "ticket.onnx", "sparse_module.safetensors", "model.json"}
    # the compact ticket is the round's file, byte for byte, smaller than the dense float32 state dict
    round_file = run_paths(ticket_context(folder).config).round(EXPORTED_ROUND) / TRAINED_FILE
    assert (exported.folder / TRAINED_FILE).read_bytes() == round_file.read_bytes()
    assert exported.sizes["ticket"] < exported.sizes["dense_state"]
    card = json.loads((exported.folder / "model.json").read_text())
    assert card["round"] == EXPORTED_ROUND and card["sparsity"] == pytest.approx(exported.sparsity)
    assert card["model"] == {"name": "conv2", "in_channels": 1, "num_classes": 10, "image_size": 8, "width": 0.25}
    assert set(card["files"].values()) == files - {"model.json"}
    ticket_json = json.loads((round_file.parent / "ticket.json").read_text())
    assert card["ticket_test_acc"] == ticket_json["ticket_test_acc"]


def test_onnx_file_predicts_as_pytorch_on_every_test_sample(reference, exported):
    ticket, ctx = reference
    session = onnxruntime.InferenceSession(str(exported.folder / "ticket.onnx"), providers=["CPUExecutionProvider"])
    inputs = _inputs(ctx)
    expected = predict(ticket, ctx.data.test, replace(ctx.data, autocast=None), False)  # float32, as exported
    with torch.no_grad():
        torch_logits = ticket(inputs)
    assert torch.equal(torch_logits.argmax(dim=1), expected)
    onnx_logits = torch.from_numpy(session.run([OUTPUT], {INPUT: inputs.numpy()})[0])
    assert onnx_logits.shape == (len(ctx.data.test), 10)
    assert torch.equal(onnx_logits.argmax(dim=1), expected)
    assert torch.allclose(onnx_logits, torch_logits, atol=1e-4)
    single = session.run([OUTPUT], {INPUT: inputs[:1].numpy()})[0]  # the batch dimension is dynamic
    assert single.shape == (1, 10) and int(single.argmax()) == int(expected[0])
    assert exported.onnx.agree == exported.onnx.samples == len(ctx.data.test)


def test_sparse_module_from_its_file_predicts_as_pytorch(reference, exported):
    ticket, ctx = reference
    assert [row.format for row in exported.layers] == ["csr"] * 5  # forced: every conv and linear layer
    sparse = load_sparse_module(exported.folder / "sparse_module.safetensors")
    layers = dict(sparse.named_modules())
    assert isinstance(layers["features.conv1"], SparseConv2d) and isinstance(layers["features.conv2"], SparseConv2d)
    assert all(isinstance(layers[name], SparseLinear) for name in ("fc1", "fc2", "fc3"))
    dense = ticket.state_dict()
    for name in ("features.conv2", "fc1"):  # the CSR weights hold exactly the ticket's weights, zeros dropped
        weight = layers[name].weight
        assert weight.layout == torch.sparse_csr
        assert weight.values().numel() == int((dense[f"{name}.weight"] != 0).sum())
        assert torch.equal(weight.to_dense().reshape(dense[f"{name}.weight"].shape), dense[f"{name}.weight"])
    inputs = _inputs(ctx)
    with torch.no_grad():
        expected, got = ticket(inputs), sparse(inputs)
    assert torch.equal(got.argmax(dim=1), expected.argmax(dim=1))
    assert torch.allclose(got, expected, atol=1e-4)
    assert exported.sparse.agree == exported.sparse.samples == len(ctx.data.test)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("private_kernel", [True, False])
def test_one_sample_goes_through_the_vector_kernel_and_computes_the_same(monkeypatch, bias, private_kernel):
    """Batch 1 takes scipy's CSR kernel (the private one, or the public product where scipy lacks it), every other
    input torch's; both give the dense layer's outputs, and an input that needs a gradient stays with torch."""
    from prac.export import vector_kernel
    if not private_kernel:
        monkeypatch.setattr(vector_kernel, "_csr_matvec", None)
    called = []
    real = vector_kernel.csr_times_vector
    monkeypatch.setattr("prac.export.sparse_module.csr_times_vector",
                        lambda *args, **kwargs: called.append(1) or real(*args, **kwargs))
    torch.manual_seed(0)
    dense = torch.nn.Linear(64, 32, bias=bias)
    with torch.no_grad():
        dense.weight[torch.rand_like(dense.weight) > 0.1] = 0
    sparse = SparseLinear(dense)
    one, many = torch.randn(1, 64), torch.randn(5, 64)
    with torch.no_grad():
        assert torch.allclose(sparse(one), dense(one), atol=1e-6) and sparse(one).shape == (1, 32)
        assert len(called) == 2
        assert torch.allclose(sparse(many), dense(many), atol=1e-6)
        assert len(called) == 2
    needs_grad = one.clone().requires_grad_(True)
    assert torch.allclose(sparse(needs_grad), dense(needs_grad), atol=1e-6)
    assert len(called) == 2


def test_the_table_names_every_layer_size_latency_and_agreement(exported):
    buffer = io.StringIO()
    print_export(exported, Console(file=buffer, width=200))
    text = buffer.getvalue()
    for row in exported.layers:
        assert row.layer in text
    for fragment in ("size on disk", "latency, batch 1", "latency, batch 8", "dense b8", "csr b8",
                     f"{exported.onnx.samples}/{exported.onnx.samples} (100.00%)",
                     "CSR layers in the sparse module: features.conv1.weight", "formats forced",
                     str(exported.folder)):
        assert fragment in text, fragment


def test_a_busy_machine_is_said_beside_the_timings(exported):
    def printed(load) -> str:
        buffer = io.StringIO()
        print_export(replace(exported, load=load), Console(file=buffer, width=200))
        return buffer.getvalue()

    assert "note: the load average was 6.5 on 2 CPUs" in printed((6.5, 2))
    assert "load average" not in printed((1.5, 2)) and "load average" not in printed(None)


@pytest.mark.slow  # a process that imports torch, exports and times at batch 256: about 20 s
def test_the_cli_writes_the_three_forms_and_prints_the_table(run, tmp_path):
    folder, _ = run
    result = cli("export", str(folder), "--round", "0", "--out", str(tmp_path / "out"), "--measure-time", "0.01")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no library's warning or progress line on the user's terminal
    assert {p.name for p in (tmp_path / "out").iterdir()} == {TRAINED_FILE, "ticket.onnx", "sparse_module.safetensors",
                                                              "model.json"}
    for fragment in ("round 0: per prunable layer", "features.conv1.weight", "fc3.weight", "dense b256", "csr b256",
                     "size on disk", "latency, batch 1", "latency, batch 256", "predictions = PyTorch dense"):
        assert fragment in result.stdout, fragment


def test_a_damaged_sparse_module_file_is_a_one_line_error(exported, tmp_path):
    saved = (exported.folder / "sparse_module.safetensors").read_bytes()
    for name, data in (("truncated", saved[:len(saved) // 2]), ("not-safetensors", b"not a safetensors file")):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(ArtifactError, match="cannot be read") as excinfo:
            load_sparse_module(path)
        assert str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)
    with pytest.raises(ArtifactError, match="not found"):
        load_sparse_module(tmp_path / "missing.safetensors")


@pytest.fixture(scope="module")
def damaged_run(run, tmp_path_factory) -> Path:
    """The run folder copied to <tmp>/<preset>/<fingerprint> (a run folder is read wherever it lies), round 2's
    trained ticket truncated."""
    folder, _ = run
    copy = tmp_path_factory.mktemp("damaged") / folder.parent.name / folder.name
    shutil.copytree(folder, copy)
    ticket = copy / "round_02" / TRAINED_FILE
    ticket.write_bytes(ticket.read_bytes()[:-100])
    return copy


def test_bad_requests_are_one_line_errors(run, damaged_run, tmp_path):
    folder, _ = run
    cases = [(dict(source=folder, round_index=1), UserError, "round 1: no trained ticket .* that have one: 0, 2"),
             (dict(source=folder, round_index=3), UserError, "the experiment has rounds 0..2"),
             (dict(source=tmp_path, round_index=0), ArtifactError, "not a run folder"),
             (dict(source=damaged_run, round_index=2), ArtifactError, "checksum differs"),
             (dict(source=folder, round_index=0, sparsity=0.5), UserError, "one of the two"),
             (dict(source=folder, sparsity=float("nan")), UserError, "--sparsity must be between 0 and 1"),
             (dict(source=folder, round_index=0, threads=0), UserError, "--threads must be at least 1")]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match) as excinfo:
            export_ticket(**kwargs, out=tmp_path / "out")
        assert "\n" not in str(excinfo.value)
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.slow  # four processes that each import torch and read the run's data: about 20 s
def test_bad_input_through_the_cli_is_one_line_exit_2(run, damaged_run, tmp_path):
    folder, _ = run
    assert_user_error(cli("export", str(folder), "--round", "1"), "round 1: no trained ticket",
                      "rounds that have one: 0, 2")
    assert_user_error(cli("export", str(tmp_path), "--round", "0"), "not a run folder")
    assert_user_error(cli("export", str(folder)), "one of the arguments --round --sparsity is required")
    ticket = damaged_run / "round_02" / TRAINED_FILE
    assert_user_error(cli("export", str(damaged_run), "--round", "2", "--out", str(tmp_path / "out")), str(ticket),
                      "checksum differs")
    assert not (tmp_path / "out").exists()  # nothing written


def test_without_the_extra_prac_imports_and_export_says_how_to_install(run):
    # onnx, onnxruntime and onnxscript made unimportable (None in sys.modules), as when the extra is not installed
    folder, _ = run
    code = ("import sys\n"
            "for name in ('onnx', 'onnxruntime', 'onnxscript'): sys.modules[name] = None\n"
            "import importlib, pkgutil, prac.export\n"
            "for module in pkgutil.iter_modules(prac.export.__path__):\n"
            "    importlib.import_module(f'prac.export.{module.name}')\n"
            "from prac_lth.cli import main\n"
            f"sys.exit(main(['export', {str(folder)!r}, '--round', '0']))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    line = assert_user_error(result, "the export extra", "pip install 'prac-lth[export]'")
    assert "onnx" in line


def test_the_cli_defaults_are_the_exports():
    # the CLI repeats them as numbers so that --help imports no torch
    from prac_lth.cli import _parser

    args = _parser().parse_args(["export", "somewhere", "--round", "0"])
    assert (args.threads, args.batch, args.measure_time) == (export_run.DEFAULT_THREADS, export_run.DEFAULT_BATCH,
                                                             export_run.DEFAULT_MEASURE_TIME)
