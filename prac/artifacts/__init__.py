"""Artifact files of a run: checkpoints, masks and PrAC sets, written atomically and verified on read."""
from prac.artifacts.atomic import atomic_write, load_torch, save_torch
from prac.artifacts.mask_io import MaskFile, read_mask, write_mask
from prac.artifacts.prac_set_io import PracSet, PracSetFile, prac_set_sha256, read_prac_set, write_prac_set

__all__ = [
    "MaskFile",
    "PracSet",
    "PracSetFile",
    "atomic_write",
    "load_torch",
    "prac_set_sha256",
    "read_mask",
    "read_prac_set",
    "save_torch",
    "write_mask",
    "write_prac_set",
]
