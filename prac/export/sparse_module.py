"""A network whose chosen layers hold their weight in torch's CSR layout, and its file.

SparseLinear: y = x Wᵀ + b computed as (W xᵀ)ᵀ with W a CSR matrix (torch.addmm / torch.sparse.mm, MKL's sparse
kernels on an x86 CPU); one sample alone (batch 1, float32 on the CPU) goes through scipy's CSR kernel on the same
three tensors instead, as torch's call costs more than the product (prac.export.vector_kernel). SparseConv2d: the convolution as im2col (F.unfold) and the CSR matrix of the kernel, one
sparse × dense product; only for groups=1 and zero padding given as numbers (every model of prac.models), any
stride and dilation. Inference only: no gradient flows into a sparse weight.

The file (`sparse_module.safetensors`, written by save_sparse_module): no pickle, so loading runs no code from the
file. Each tensor of the module's state dict under its own name; a CSR weight as three, `<name>:crow_indices`,
`<name>:col_indices` (int64) and `<name>:values`. The safetensors metadata holds one key, METADATA_KEY: JSON with
`format` (FORMAT), `version`, `model` (prac.models.build_model's arguments: name, in_channels, num_classes,
image_size, width), `formats` (each prunable weight's layout, dense or csr) and `shapes` (each CSR weight's dense
shape). load_sparse_module builds the model class by name and swaps in the sparse layers: the loader needs prac
installed, as the model's class is the project's.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save as save_safetensors
from torch import nn

from prac.artifacts.atomic import atomic_write
from prac.errors import ArtifactError, UserError, one_line
from prac.export.vector_kernel import csr_arrays, csr_times_vector
from prac.models import build_model

FORMAT = "prac-sparse-module"
VERSION = 1
METADATA_KEY = "prac_sparse_module"
DENSE, CSR = "dense", "csr"
FORMATS = (DENSE, CSR)
_CSR_PARTS = ("crow_indices", "col_indices", "values")


def to_csr(matrix: torch.Tensor) -> torch.Tensor:
    """`matrix` (2-D) in torch's CSR layout, without torch's note that CSR support is in beta on the user's terminal
    (once per process: nothing they can act on; the agreement checks are what says the layout computes right)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return matrix.to_sparse_csr()


class SparseLinear(nn.Module):
    """nn.Linear with a CSR weight (`weight`, a buffer of layout torch.sparse_csr)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", to_csr(linear.weight.detach()))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())
        self._arrays: tuple | None = None  # numpy views of weight and bias for the batch-1 kernel, made on first use
        self._arrays_of: torch.Tensor | None = None  # the weight they view (a .to() or a load replaces it)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[0] == 1 and (arrays := self._vector_arrays(x)) is not None:
            weight, bias = arrays
            out = csr_times_vector(weight, (self.out_features, self.in_features), x.numpy()[0], bias)
            return torch.from_numpy(out[None])
        columns = x.reshape(-1, self.in_features).t()  # (in, N): W @ columns is (out, N)
        if self.bias is None:
            out = torch.sparse.mm(self.weight, columns)
        else:
            out = torch.addmm(self.bias.unsqueeze(1), self.weight, columns)
        return out.t().reshape(*x.shape[:-1], self.out_features)

    def _vector_arrays(self, x: torch.Tensor) -> tuple | None:
        """numpy views of the weight and bias when the batch-1 kernel applies to `x` (float32, contiguous, on the
        CPU, outside autograd), else None; made once per weight tensor (a .to() or a load replaces the tensor)."""
        if x.dtype is not torch.float32 or x.is_cuda or x.requires_grad or not x.is_contiguous():
            return None
        weight = self.weight
        if self._arrays_of is not weight:
            if weight.device.type == "cpu" and weight.dtype is torch.float32:
                bias = None if self.bias is None else self.bias.detach().numpy()
                self._arrays = (csr_arrays(weight), bias)
            else:
                self._arrays = None
            self._arrays_of = weight
        return self._arrays

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, layout=csr"


class SparseConv2d(nn.Module):
    """nn.Conv2d (groups 1, zero padding) with its kernel as a CSR matrix (out_channels × in_channels·kh·kw)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not conv_supported(conv):
            raise ValueError(f"SparseConv2d: unsupported convolution {conv}")
        self.out_channels = conv.out_channels
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation = conv.padding, conv.dilation
        self.weight_shape = tuple(conv.weight.shape)
        self.register_buffer("weight", to_csr(conv.weight.detach().reshape(conv.out_channels, -1)))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        out_h, out_w = (_out_size(size, k, s, p, d) for size, k, s, p, d in
                        zip((height, width), self.kernel_size, self.stride, self.padding, self.dilation))
        columns = F.unfold(x, self.kernel_size, dilation=self.dilation, padding=self.padding, stride=self.stride)
        columns = columns.transpose(0, 1).reshape(columns.shape[1], n * out_h * out_w)  # (C·kh·kw, N·L)
        if self.bias is None:
            out = torch.sparse.mm(self.weight, columns)
        else:
            out = torch.addmm(self.bias.unsqueeze(1), self.weight, columns)
        return out.reshape(self.out_channels, n, out_h, out_w).transpose(0, 1)

    def extra_repr(self) -> str:
        return (f"{self.weight_shape[1]}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, layout=csr")


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_supported(conv: nn.Conv2d) -> bool:
    return conv.groups == 1 and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def sparse_layer(module: nn.Module) -> nn.Module | None:
    """The CSR counterpart of a Linear or a supported Conv2d; None for any other module."""
    if isinstance(module, nn.Linear):
        return SparseLinear(module)
    if isinstance(module, nn.Conv2d) and conv_supported(module):
        return SparseConv2d(module)
    return None


def module_of(parameter: str) -> str:
    """`features.conv1.weight` -> `features.conv1`, the module that holds the parameter."""
    return parameter.rpartition(".")[0]


def sparsify(model: nn.Module, formats: Mapping[str, str]) -> nn.Module:
    """A copy of `model` (eval mode) in which each weight `formats` marks csr (its parameter name, e.g. fc1.weight)
    is held by its layer's CSR counterpart; every other layer as it was."""
    if unknown := sorted(set(formats.values()) - set(FORMATS)):
        raise ValueError(f"sparsify: unknown formats {unknown} (known: {', '.join(FORMATS)})")
    sparse = copy.deepcopy(model).eval()
    for parameter, layout in formats.items():
        if layout != CSR:
            continue
        name = module_of(parameter)
        replacement = sparse_layer(sparse.get_submodule(name))
        if replacement is None or parameter.rpartition(".")[2] != "weight":
            raise ValueError(f"sparsify: {parameter} is not the weight of a Linear or supported Conv2d")
        parent, _, child = name.rpartition(".")
        setattr(sparse.get_submodule(parent), child, replacement)
    return sparse


def save_sparse_module(path: str | os.PathLike[str], module: nn.Module, formats: Mapping[str, str],
                       model: Mapping[str, object]) -> Path:
    """Write `module` (sparsify's result with these `formats`) and the arguments that build its model class
    (`model`: build_model's name, in_channels, num_classes, image_size, width) as one safetensors file."""
    tensors, shapes = {}, {}
    for name, value in module.state_dict().items():
        if value.layout == torch.sparse_csr:
            shapes[name] = list(value.shape)
            for part in _CSR_PARTS:
                tensors[f"{name}:{part}"] = getattr(value, part)().contiguous().clone()
        else:
            tensors[name] = value.detach().contiguous().clone()
    header = {"format": FORMAT, "version": VERSION, "model": dict(model), "formats": dict(formats), "shapes": shapes}
    data = save_safetensors(tensors, metadata={METADATA_KEY: json.dumps(header, sort_keys=True)})
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def load_sparse_module(path: str | os.PathLike[str]) -> nn.Module:
    """The module save_sparse_module wrote, in eval mode on the CPU; a missing or damaged file is an ArtifactError
    (one line, naming it)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"sparse module file {path}: not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
        header = json.loads(metadata[METADATA_KEY])
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(f"format {header.get('format')!r} version {header.get('version')!r}, this code reads "
                             f"{FORMAT} version {VERSION}")
        state = {}
        for name, shape in header["shapes"].items():
            parts = [tensors.pop(f"{name}:{part}") for part in _CSR_PARTS]
            with warnings.catch_warnings():  # the beta note (to_csr)
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support", category=UserWarning)
                # invariants checked: indices out of range in a damaged file are an error, not a crash
                state[name] = torch.sparse_csr_tensor(*parts, size=shape, check_invariants=True).to_dense()
        state.update(tensors)
        spec = header["model"]
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten
            model = build_model(spec["name"], in_channels=spec["in_channels"], num_classes=spec["num_classes"],
                                image_size=spec["image_size"], width=spec["width"])
        _load_dense(model, state, header["shapes"])
        return sparsify(model, header["formats"])
    except UserError:
        raise
    except Exception as error:  # safetensors' own errors, a bad header, tensors of another model
        raise ArtifactError(f"sparse module file {path}: cannot be read ({one_line(error, 300)})") from None


def _load_dense(model: nn.Module, state: dict[str, torch.Tensor], sparse_shapes: Mapping[str, list[int]]) -> None:
    """The state into `model`, each CSR weight (a conv's flattened to 2-D) back in its layer's own shape."""
    own = model.state_dict()
    for name in sparse_shapes:
        state[name] = state[name].reshape(own[name].shape)
    model.load_state_dict(state)
