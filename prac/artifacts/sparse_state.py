"""The sparse state file: a state dict and its mask as one safetensors file, a masked tensor as its kept values only.

Per tensor of the state dict, in its order (the layout):
  dense    not in the mask (biases, batch-norm parameters and buffers, layers never pruned): stored as it is,
           under its own name;
  bits     masked: `<name>:values` (the kept values, 1-D, row-major order, the tensor's dtype) and `<name>:bits`
           (uint8, numpy.packbits of the flattened mask, big bit order);
  indices  masked: `<name>:values` and `<name>:indices` (int32, the kept positions in the flattened tensor,
           ascending): chosen over bits where smaller, below 1 kept weight in 32.
The safetensors metadata holds one key, METADATA_KEY: JSON with `format` (FORMAT), `version`, `tensors` (the layout:
each tensor's name, shape, dtype, encoding) and `sha256` (of the stored tensors' bytes in layout order). One key,
because safetensors writes the metadata's keys in no fixed order, and the same state must give the same bytes.
Read back, a masked tensor holds its kept values bit for bit and +0.0 (its dtype's zero) where the mask is off.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from safetensors.torch import load as load_safetensors, save as save_safetensors

from prac.artifacts.atomic import atomic_write
from prac.errors import ArtifactError, one_line
from prac.hardware.placement import to_cpu

FORMAT = "prac-sparse-state"
VERSION = 1
METADATA_KEY = "prac_sparse_state"
_WHAT = "sparse state file"
_PARTS = {"dense": (), "bits": ("values", "bits"), "indices": ("values", "indices")}  # stored tensors' suffixes


@dataclass(frozen=True, eq=False)
class SparseStateFile:
    """A verified sparse state file: the state dict (CPU tensors, dense again) and its mask (bool), in file order."""

    state: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    sha256: str  # of the file's bytes


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _key(name: str, part: str) -> str:
    return f"{name}:{part}" if part else name


def _keys(entry: dict) -> list[str]:
    return [_key(entry["name"], part) for part in _PARTS[entry["encoding"]] or ("",)]


def _digest(layout: list[dict], tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for entry in layout:
        for key in _keys(entry):
            digest.update(tensors[key].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _encode(name: str, value: torch.Tensor, kept: torch.Tensor) -> tuple[str, dict[str, torch.Tensor]]:
    """(encoding, stored tensors) of one masked tensor: its kept values and the smaller of bits and indices."""
    flat, keep = value.contiguous().reshape(-1), kept.reshape(-1)
    if bool((flat[~keep] != 0).any()):
        raise ValueError(f"write_sparse_state: {name!r} has non-zero values where its mask is off")
    stored = {_key(name, "values"): flat[keep].clone()}
    count, numel = int(keep.sum()), flat.numel()
    if 4 * count < (numel + 7) // 8 and numel <= torch.iinfo(torch.int32).max:
        stored[_key(name, "indices")] = torch.nonzero(keep).reshape(-1).to(torch.int32)
        return "indices", stored
    stored[_key(name, "bits")] = torch.from_numpy(np.packbits(keep.numpy(), bitorder="big"))
    return "bits", stored


def write_sparse_state(path: str | os.PathLike[str], state: Mapping[str, torch.Tensor],
                       mask: Mapping[str, torch.Tensor]) -> str:
    """Write `state` (any device) with `mask` (bool, over some of its tensors, each in the tensor's shape; zero in
    the state wherever it is off) atomically; return the file's sha256."""
    state, mask = to_cpu(dict(state)), to_cpu(dict(mask))
    if unknown := [name for name in mask if name not in state]:
        raise ValueError(f"write_sparse_state: the mask names tensors the state lacks: {unknown}")
    layout, tensors = [], {}
    for name, value in state.items():
        if name in mask:
            kept = mask[name]
            if kept.dtype != torch.bool or kept.shape != value.shape:
                raise ValueError(f"write_sparse_state: mask {name!r} is {kept.dtype} {list(kept.shape)}, expected "
                                 f"torch.bool {list(value.shape)}")
            encoding, stored = _encode(name, value, kept)
        else:
            encoding, stored = "dense", {name: value.clone(memory_format=torch.contiguous_format)}
        if clash := stored.keys() & tensors.keys():
            raise ValueError(f"write_sparse_state: stored names clash: {sorted(clash)}")
        tensors.update(stored)
        layout.append({"name": name, "shape": list(value.shape), "dtype": _dtype_name(value.dtype),
                       "encoding": encoding})
    header = {"format": FORMAT, "version": VERSION, "tensors": layout, "sha256": _digest(layout, tensors)}
    data = save_safetensors(tensors, metadata={METADATA_KEY: json.dumps(header, sort_keys=True)})
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_sparse_state(path: str | os.PathLike[str], *, expected_sha256: str | None = None,
                      recorded_by: str = "its record") -> SparseStateFile:
    """Read and verify a sparse state file (and, given `expected_sha256`, that it is the file `recorded_by` names);
    any damage or inconsistency is an ArtifactError naming the file."""
    path = Path(path)

    def fail(message: str) -> ArtifactError:
        return ArtifactError(f"{_WHAT} {path}: {message}")

    if not path.is_file():
        raise fail("file not found")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise fail(f"checksum differs from the one {recorded_by} records (file damaged or replaced)")
    try:
        tensors, metadata = load_safetensors(data), _metadata(data)
    except Exception as exc:  # safetensors raises its own error types for truncated or garbled files
        raise fail(f"cannot be read ({one_line(exc, 200)})") from None
    try:
        header = json.loads(metadata[METADATA_KEY])
    except (KeyError, ValueError):
        raise fail(f"not a {FORMAT} file (no readable {METADATA_KEY} metadata)") from None
    layout = _checked_layout(header, fail)
    expected_keys = [key for entry in layout for key in _keys(entry)]
    if sorted(tensors) != sorted(expected_keys):
        raise fail(f"its tensors {sorted(tensors.keys() ^ set(expected_keys))[:4]} do not match its layout")
    if _digest(layout, tensors) != header["sha256"]:
        raise fail("sha256 of the tensors does not match the metadata (file corrupted or edited)")
    state, mask = {}, {}
    for entry in layout:
        state[entry["name"]], kept = _decode(entry, tensors, fail)
        if kept is not None:
            mask[entry["name"]] = kept
    return SparseStateFile(state=state, mask=mask, sha256=sha256)


def _metadata(data: bytes) -> dict[str, str]:
    """The safetensors header's `__metadata__` (the header is 8 bytes of its length, then JSON)."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]).get("__metadata__") or {}


def _checked_layout(header: object, fail) -> list[dict]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise fail(f"not a {FORMAT} file")
    if header.get("version") != VERSION:
        raise fail(f"format version {header.get('version')!r}, this code reads version {VERSION}")
    layout = header.get("tensors")
    fields = {"name": str, "shape": list, "dtype": str, "encoding": str}
    if not isinstance(layout, list) or not isinstance(header.get("sha256"), str) or not all(
            isinstance(e, dict) and all(isinstance(e.get(k), t) for k, t in fields.items()) and e["encoding"] in _PARTS
            and all(isinstance(d, int) and d >= 0 for d in e["shape"]) for e in layout):
        raise fail("its layout metadata is malformed")
    if len({e["name"] for e in layout}) != len(layout):
        raise fail("its layout names a tensor twice")
    return layout


def _decode(entry: dict, tensors: Mapping[str, torch.Tensor], fail) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the dense tensor, its mask or None) of one layout entry, checked against its shape, dtype and mask."""
    name, shape, dtype, encoding = entry["name"], tuple(entry["shape"]), entry["dtype"], entry["encoding"]
    if encoding == "dense":
        value = tensors[name]
        if tuple(value.shape) != shape or _dtype_name(value.dtype) != dtype:
            raise fail(f"tensor {name!r} is {_dtype_name(value.dtype)} {list(value.shape)}, its layout says "
                       f"{dtype} {list(shape)}")
        return value, None
    values, numel = tensors[_key(name, "values")], math.prod(shape)
    if values.dim() != 1 or _dtype_name(values.dtype) != dtype:
        raise fail(f"{name!r}: its values are {_dtype_name(values.dtype)} {list(values.shape)}, expected 1-D {dtype}")
    if encoding == "bits":
        packed = tensors[_key(name, "bits")]
        if packed.dtype != torch.uint8 or list(packed.shape) != [(numel + 7) // 8]:
            raise fail(f"{name!r}: {packed.numel()} bytes of bits ({_dtype_name(packed.dtype)}), expected "
                       f"{(numel + 7) // 8} uint8 for shape {list(shape)}")
        unpacked = np.unpackbits(packed.numpy(), bitorder="big")
        if unpacked[numel:].any():  # packbits pads with zeros
            raise fail(f"{name!r}: padding bits after the last element are not zero")
        keep = torch.from_numpy(unpacked[:numel].astype(bool))
    else:
        positions = tensors[_key(name, "indices")]
        if positions.dtype != torch.int32 or positions.dim() != 1:
            raise fail(f"{name!r}: its indices are {_dtype_name(positions.dtype)} {list(positions.shape)}, "
                       f"expected 1-D int32")
        positions = positions.to(torch.int64)
        if positions.numel() and (positions[0] < 0 or positions[-1] >= numel or bool((positions.diff() <= 0).any())):
            raise fail(f"{name!r}: its indices are not ascending positions below {numel}")
        keep = torch.zeros(numel, dtype=torch.bool)
        keep[positions] = True
    if int(keep.sum()) != values.numel():
        raise fail(f"{name!r}: {values.numel()} values for the mask's {int(keep.sum())} kept positions")
    flat = torch.zeros(numel, dtype=values.dtype)
    flat[keep] = values
    return flat.reshape(shape), keep.reshape(shape)
