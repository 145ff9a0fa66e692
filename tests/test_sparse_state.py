"""The sparse state file (prac.artifacts.sparse_state): a trained ticket's weights stored as their kept values and a
mask. Round trips bit for bit, the smaller of the two mask encodings per tensor, a LeNet-300-100 ticket at ~96.5 %
sparsity at least 10x smaller than its dense checkpoint, the same bytes for the same state, and one-line errors for
every kind of damage."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors, save as save_safetensors

from prac.artifacts import read_sparse_state, write_sparse_state
from prac.artifacts.sparse_state import METADATA_KEY, _digest, _metadata
from prac.errors import ArtifactError
from prac.models import build_model
from prac.training.masks import full_mask, prunable_parameters, sparsity
from prac.training.pruning import magnitude_prune


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes: equal only when bit-identical (torch.equal takes -0.0 for 0.0, NaN for nothing)."""
    return tensor.contiguous().reshape(-1).view(torch.uint8)


def _assert_identical(read: dict[str, torch.Tensor], written: dict[str, torch.Tensor]) -> None:
    assert list(read) == list(written)
    for name, value in written.items():
        assert read[name].dtype == value.dtype and read[name].shape == value.shape, name
        assert torch.equal(_bits(read[name]), _bits(value)), name


def _state() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A state of several dtypes and shapes; masks dense, sparse and empty, over tensors of odd sizes."""
    gen = torch.Generator().manual_seed(0)
    keep = {"conv.weight": torch.rand(4, 3, 3, 3, generator=gen) > 0.5,  # bits
            "fc.weight": torch.rand(7, 100, generator=gen) > 0.99,  # indices: under 1 kept in 32
            "half.weight": torch.rand(5, 7, generator=gen) > 0.3,  # 35 elements: not a multiple of 8
            "gone.weight": torch.zeros(3, 3, dtype=torch.bool)}
    dtypes = {"conv.weight": torch.float32, "fc.weight": torch.float32, "half.weight": torch.bfloat16,
              "gone.weight": torch.float16}
    state = {name: torch.where(kept, torch.randn(kept.shape, generator=gen), 0.0).to(dtypes[name])
             for name, kept in keep.items()}
    state["fc.bias"] = torch.randn(7, generator=gen)
    state["bn.num_batches_tracked"] = torch.tensor(17)  # 0-d int64
    state["bn.running_var"] = torch.rand(4, generator=gen, dtype=torch.float64)
    return state, keep


def _layout(path: Path) -> list[dict]:
    return json.loads(_metadata(path.read_bytes())[METADATA_KEY])["tensors"]


def _rewrite(path: Path, edit) -> None:
    """Rewrite the file with `edit(tensors, header)` applied and its sha256 recomputed: damage the checksum over
    the tensors cannot see, so that the file's own checks must."""
    data = path.read_bytes()
    tensors, header = load_safetensors(data), json.loads(_metadata(data)[METADATA_KEY])
    edit(tensors, header)
    header["sha256"] = _digest(header["tensors"], tensors)
    path.write_bytes(save_safetensors(tensors, metadata={METADATA_KEY: json.dumps(header)}))


def _one_line_error(path: Path, match: str, **kwargs) -> None:
    with pytest.raises(ArtifactError, match=match) as excinfo:
        read_sparse_state(path, **kwargs)
    message = str(excinfo.value)
    assert str(path) in message and "\n" not in message, message


def test_round_trip_is_bit_identical_with_the_smaller_encoding(tmp_path):
    state, keep = _state()
    path = tmp_path / "state.safetensors"
    write_sparse_state(path, state, keep)
    read = read_sparse_state(path)
    _assert_identical(read.state, state)
    assert list(read.mask) == list(keep) and all(torch.equal(read.mask[k], keep[k]) for k in keep)
    encodings = {entry["name"]: entry["encoding"] for entry in _layout(path)}
    assert encodings == {"conv.weight": "bits", "fc.weight": "indices", "half.weight": "bits", "gone.weight": "indices",
                         "fc.bias": "dense", "bn.num_batches_tracked": "dense", "bn.running_var": "dense"}


def test_pruned_negative_zeros_read_back_as_zeros_and_pruned_values_are_refused(tmp_path):
    state, keep = _state()
    signed = dict(state, **{"conv.weight": state["conv.weight"].clone()})
    signed["conv.weight"][~keep["conv.weight"]] = -0.0  # what a mask multiply leaves where a weight was negative
    write_sparse_state(tmp_path / "a.safetensors", signed, keep)
    assert torch.equal(_bits(read_sparse_state(tmp_path / "a.safetensors").state["conv.weight"]),
                       _bits(state["conv.weight"]))
    state["conv.weight"][~keep["conv.weight"]] = 1.0
    with pytest.raises(ValueError, match="non-zero values where its mask is off"):
        write_sparse_state(tmp_path / "b.safetensors", state, keep)


def test_the_same_state_gives_the_same_bytes(tmp_path):
    state, keep = _state()
    shas = [write_sparse_state(tmp_path / f"{i}.safetensors", state, keep) for i in range(2)]
    assert shas[0] == shas[1]
    assert (tmp_path / "0.safetensors").read_bytes() == (tmp_path / "1.safetensors").read_bytes()


def test_a_lenet_ticket_is_ten_times_smaller_than_its_dense_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("lenet300", in_channels=1, num_classes=10, image_size=28)  # Fashion-MNIST's shape
    weights = {name: p.detach() for name, p in prunable_parameters(model).items()}
    mask = magnitude_prune(weights, full_mask(model), 0.965)
    with torch.no_grad():
        for name, p in prunable_parameters(model).items():
            p.copy_(torch.where(mask[name], p, 0.0))
    assert sparsity(mask) == pytest.approx(0.965, abs=1e-4)
    dense = io.BytesIO()
    torch.save(model.state_dict(), dense)
    path = tmp_path / "ticket.safetensors"
    write_sparse_state(path, model.state_dict(), mask)
    ratio = len(dense.getvalue()) / path.stat().st_size
    print(f"LeNet-300-100 at {sparsity(mask):.4f} sparsity: torch.save {len(dense.getvalue())} bytes, "
          f"sparse state {path.stat().st_size} bytes, {ratio:.1f}x smaller")
    assert ratio >= 10
    _assert_identical(read_sparse_state(path).state, model.state_dict())


def test_damaged_files_are_one_line_errors(tmp_path):
    state, keep = _state()
    path = tmp_path / "state.safetensors"
    sha = write_sparse_state(path, state, keep)
    data = path.read_bytes()

    _one_line_error(tmp_path / "missing.safetensors", "file not found")
    path.write_bytes(data[: len(data) // 2])
    _one_line_error(path, "cannot be read")
    path.write_bytes(b"not a safetensors file at all")
    _one_line_error(path, "cannot be read")
    path.write_bytes(data[:-3] + bytes(b ^ 0xFF for b in data[-3:]))  # a value garbled in place
    _one_line_error(path, "sha256 of the tensors does not match")
    _one_line_error(path, "checksum differs from the one ticket.json records", expected_sha256=sha,
                    recorded_by="ticket.json")
    path.write_bytes(save_safetensors({"x": torch.zeros(2)}, metadata={"format": "pt"}))
    _one_line_error(path, "not a prac-sparse-state file")
    path.write_bytes(data)
    assert read_sparse_state(path, expected_sha256=sha).sha256 == sha


def _drop_a_value(tensors, header):
    tensors["conv.weight:values"] = tensors["conv.weight:values"][1:].clone()


def _reshape(name, shape):
    def edit(tensors, header):
        next(e for e in header["tensors"] if e["name"] == name)["shape"] = shape
    return edit


def _add_tensor(tensors, header):
    tensors["stray"] = torch.zeros(1)


@pytest.mark.parametrize("edit, match", [
    pytest.param(_drop_a_value, "values for the mask's", id="values-count-not-the-popcount"),
    pytest.param(_reshape("fc.weight", [7, 10]), "not ascending positions below 70", id="indices-beyond-the-shape"),
    pytest.param(_reshape("fc.bias", [8]), "its layout says float32 \\[8\\]", id="dense-shape"),
    pytest.param(_reshape("conv.weight", [4, 3, 3, 4]), "bytes of bits", id="bits-for-another-shape"),
    pytest.param(_add_tensor, "do not match its layout", id="a-stray-tensor"),
])
def test_inconsistent_files_are_one_line_errors(tmp_path, edit, match):
    state, keep = _state()
    path = tmp_path / "state.safetensors"
    write_sparse_state(path, state, keep)
    _rewrite(path, edit)
    _one_line_error(path, match)
