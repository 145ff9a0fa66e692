"""Mixed precision and torch.compile, the GPU path's options (prac.hardware.precision, runtime.precision /
runtime.compile), exercised on the CPU: bfloat16 autocast runs there too."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from prac.imp.context import ExperimentContext
from prac.training.masks import full_mask
from prac.hardware import precision
from prac.hardware.precision import autocast_dtype
from prac.training.pruning import magnitude_prune
from prac.training.round_types import RoundSpec
from prac.training.schedule import RoundSchedule
from prac.training.train import train_round

pytestmark = pytest.mark.usefixtures("one_thread")


def test_auto_precision_is_bfloat16_where_the_cpu_has_it_natively_and_choices_are_honoured(monkeypatch):
    cpu = torch.device("cpu")
    for native, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: native)
        assert autocast_dtype("auto", cpu) is expected
    monkeypatch.setattr(precision, "FLOAT32_FASTER", {("cpu", "conv2")})
    assert autocast_dtype("auto", cpu, "conv2") is None and autocast_dtype("auto", cpu, "conv4") is expected
    assert autocast_dtype("bfloat16", cpu, "conv2") is torch.bfloat16  # an explicit choice is honoured
    assert autocast_dtype("float32", cpu) is None
    assert autocast_dtype("bfloat16", cpu) is torch.bfloat16
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        assert autocast_dtype("auto", torch.device("cuda")) is torch.bfloat16


def test_forward_context_autocasts_only_when_asked(ctx):
    layer = nn.Linear(4, 2)
    x = torch.randn(3, 4)
    with dataclasses.replace(ctx.data, autocast=None).forward_context():
        assert layer(x).dtype == torch.float32
    with dataclasses.replace(ctx.data, autocast=torch.bfloat16).forward_context():
        assert layer(x).dtype == torch.bfloat16


def test_a_bfloat16_round_trains_with_float32_weights_and_the_mask_kept(ctx):
    data = dataclasses.replace(ctx.data, autocast=torch.bfloat16)
    model = ctx.new_model()
    mask = magnitude_prune({n: p.detach() for n, p in model.named_parameters() if n in full_mask(model)},
                           full_mask(model), 0.5)
    spec = RoundSpec(RoundSchedule(epochs=3, milestones=(), warmup_epochs=0, lr=0.05, gamma=0.1), seed=0)
    result = train_round(model, mask, data, ctx.config.train, spec)
    state = result.final.last_state
    assert all(state[n].dtype == torch.float32 for n in mask)  # autocast keeps float32 master weights
    assert all((state[n][~mask[n]] == 0).all() for n in mask)
    assert result.curves[-1]["train_loss"] < result.curves[0]["train_loss"]  # it learns
    assert result.final.best_val_acc > 0.5  # digits, 10 classes: far above chance after 3 epochs


def test_runtime_compile_compiles_one_model_per_experiment_and_hands_it_out_reset_to_theta0(ctx, monkeypatch):
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    plain = ctx.new_model()
    config = ctx.config.model_copy(update={"runtime": ctx.config.runtime.model_copy(update={"compile": True})})
    compiling = ExperimentContext(config, ctx.data, ctx.device, ctx.data_digest)
    model = compiling.new_model()
    assert compiled == [model] and plain not in compiled
    assert model.state_dict().keys() == plain.state_dict().keys()  # names unchanged: masks still apply
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # a stage trains it
    again = compiling.new_model()
    assert again is model and compiled == [model]  # compiled once, the same module reused
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in again.state_dict().items())  # back at θ0
