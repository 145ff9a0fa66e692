"""A network as an ONNX file, checked, and run with onnxruntime.

The file is torch.onnx's (the dynamo exporter, onnxscript underneath): the weights as dense initializers inside the
one file (a pruned weight's zeros kept), one input `input` (float32, N × C × H × W, normalised as the model was
trained: (pixel / 255 − mean) / std per channel) whose batch dimension N is dynamic, one output `logits` (N ×
classes). onnx, onnxscript and onnxruntime are the `export` extra (pyproject.toml), imported only here.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from prac.artifacts.atomic import atomic_write
from prac.errors import UserError

INPUT, OUTPUT = "input", "logits"
EXAMPLE_BATCH = 2  # the example the graph is traced with: any size but 1 (torch.export specialises a dimension of 1)


@dataclass(frozen=True)
class OnnxCheck:
    opset: int
    input_shape: tuple[int | str, ...]  # the batch dimension by its symbolic name
    output_shape: tuple[int | str, ...]


def require_export_extra() -> None:
    """A UserError (one line, how to install it) unless the `export` extra is installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise UserError(f"prac-lth export needs the export extra ({error.name} is not installed): "
                        f"pip install 'prac-lth[export]'") from None


def export_onnx(model: nn.Module, input_shape: tuple[int, int, int], path: str | os.PathLike[str]) -> Path:
    """Write `model` (eval mode, CPU) for inputs of `input_shape` (C, H, W) as one ONNX file, batch dynamic."""
    require_export_extra()
    example = torch.zeros(EXAMPLE_BATCH, *input_shape)
    batch = torch.export.Dim("batch")
    with atomic_write(path) as tmp, contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        torch.onnx.export(model.eval(), (example,), str(tmp), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False)
    return Path(path)


def check_onnx(path: str | os.PathLike[str]) -> OnnxCheck:
    """onnx.checker's full check of the file (shape inference included); its opset and input and output shapes."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))

    def shape(value) -> tuple[int | str, ...]:
        return tuple(d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim)

    (inputs,), (outputs,) = model.graph.input, model.graph.output
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return OnnxCheck(opset=opset, input_shape=shape(inputs), output_shape=shape(outputs))


def onnx_session(path: str | os.PathLike[str], threads: int):
    """An onnxruntime CPU session of the file, on `threads` threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no notes on the terminal
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def onnx_logits(session, batches: Iterable[torch.Tensor]) -> torch.Tensor:
    """The session's logits for each batch (float32 N × C × H × W), concatenated in order."""
    outputs = [session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch.numpy(), dtype=np.float32)})[0]
               for batch in batches]
    return torch.from_numpy(np.concatenate(outputs))
