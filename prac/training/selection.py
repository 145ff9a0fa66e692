"""Selecting the PrAC set: forgotten samples (CET) and samples the pruning changed (CEP)."""
from __future__ import annotations

import numpy as np

from prac.training.forgetting import NEVER_LEARNED


def select_cet(forget_events: np.ndarray, threshold: int) -> np.ndarray:
    """Critical examples from training: forgotten more than `threshold` times, or never learned
    (a never-learned sample counts as forgotten without bound)."""
    return (forget_events > threshold) | (forget_events == NEVER_LEARNED)


def select_cep(dense_predictions: np.ndarray, sparse_predictions: np.ndarray) -> np.ndarray:
    """Critical examples from pruning: the dense and the pruned model predict different classes."""
    if dense_predictions.shape != sparse_predictions.shape:
        raise ValueError(f"prediction shapes differ: {dense_predictions.shape} vs {sparse_predictions.shape}")
    return dense_predictions != sparse_predictions


def prac_union(in_cet: np.ndarray, in_cep: np.ndarray) -> np.ndarray:
    """The next round's training set: CET ∪ CEP."""
    return in_cet | in_cep


def random_subset(size: int, count: int, generator: np.random.Generator) -> np.ndarray:
    """`count` samples of `size` drawn without replacement, as a boolean array (the random-subset method)."""
    chosen = np.zeros(size, dtype=bool)
    chosen[generator.choice(size, size=min(count, size), replace=False)] = True
    return chosen


def highest_scores(scores: np.ndarray, count: int) -> np.ndarray:
    """The `count` samples with the highest scores (ties: the lower position first), as a boolean array."""
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[np.argsort(-scores, kind="stable")[:count]] = True
    return chosen


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Predictive entropy −Σ p log p per sample (nats; 0·log 0 = 0): the uncertainty Entropy and SVP rank by."""
    p = probabilities.astype(np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)


def el2n(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """EL2N (Paul et al. 2021): the L2 norm of softmax output minus the one-hot label, per sample."""
    error = probabilities.astype(np.float64)
    error[np.arange(len(labels)), labels] -= 1.0
    return np.linalg.norm(error, axis=1)
