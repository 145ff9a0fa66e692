"""Artifact files of a run: checkpoints, masks, PrAC sets and sparse states (a trained ticket's weights), written
atomically and verified on read."""
from prac.artifacts.atomic import atomic_write, load_torch, save_torch
from prac.artifacts.mask_io import MaskFile, read_mask, write_mask
from prac.artifacts.prac_set_io import PracSet, PracSetFile, prac_set_sha256, read_prac_set, write_prac_set
from prac.artifacts.sparse_state import SparseStateFile, read_sparse_state, write_sparse_state

__all__ = [
    "MaskFile",
    "PracSet",
    "PracSetFile",
    "SparseStateFile",
    "atomic_write",
    "load_torch",
    "prac_set_sha256",
    "read_mask",
    "read_prac_set",
    "read_sparse_state",
    "save_torch",
    "write_mask",
    "write_prac_set",
    "write_sparse_state",
]
