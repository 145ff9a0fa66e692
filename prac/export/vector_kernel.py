"""A CSR matrix times one vector on the CPU with little call overhead: the latency case, batch 1.

torch's CSR product (MKL) costs 12-14 µs a call on these CPUs however few the nonzeros, more than a dense
LeNet-300-100 layer takes (BENCHMARKS.md section 12); scipy's compiled CSR kernel, called directly on numpy views of
the same three tensors, costs about 1 µs. `scipy.sparse._sparsetools.csr_matvec` is private but has kept its
signature since scipy 0.7; where an install lacks it, the public `csr_array @ x` (a few µs more) computes the same.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse
import torch

try:
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # a future scipy: the public product below
    _csr_matvec = None


def csr_arrays(weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy views (no copy) of a CPU CSR tensor's row pointers, column indices and values."""
    return weight.crow_indices().numpy(), weight.col_indices().numpy(), weight.values().numpy()


def csr_times_vector(arrays: tuple[np.ndarray, np.ndarray, np.ndarray], shape: tuple[int, int], vector: np.ndarray,
                     bias: np.ndarray | None) -> np.ndarray:
    """W @ vector (+ bias), W the CSR matrix `arrays` of `shape`; float32 in, float32 out, a new array."""
    crow, col, values = arrays
    if _csr_matvec is not None:
        out = np.zeros(shape[0], dtype=values.dtype) if bias is None else bias.copy()
        _csr_matvec(shape[0], shape[1], crow, col, values, vector, out)  # accumulates into out
        return out
    product = scipy.sparse.csr_array((values, col, crow), shape=shape) @ vector
    return product if bias is None else product + bias
