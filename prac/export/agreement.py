"""How far another runtime's outputs follow the reference network's on the same inputs: predicted classes (argmax)
that agree, and of those that do not, how many are float rounding ties.

A disagreement is a tie when the reference's two top logits are closer together than the two outputs differ on that
sample (|gap| ≤ 2 × the sample's largest logit difference): rounding alone can then swap the two classes, as the
order of a sum's terms differs between kernels. Any other disagreement is a real difference of the two networks."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Agreement:
    samples: int
    agree: int  # samples whose predicted class is the reference's
    ties: int  # disagreements that are float rounding ties (see the module's text)
    max_abs_diff: float  # the largest |logit difference| over every sample and class

    @property
    def disagree(self) -> int:
        return self.samples - self.agree

    @property
    def fraction(self) -> float:
        return self.agree / self.samples if self.samples else float("nan")


def agreement(reference: torch.Tensor, other: torch.Tensor) -> Agreement:
    """Compare two N × classes logit tensors (the reference's first)."""
    if reference.shape != other.shape:
        raise ValueError(f"agreement: logits of shapes {list(reference.shape)} and {list(other.shape)}")
    reference, other = reference.double(), other.double()
    difference = (reference - other).abs()
    differs = reference.argmax(dim=1) != other.argmax(dim=1)
    ties = 0
    if bool(differs.any()):
        top2 = reference[differs].topk(2, dim=1).values
        gap = top2[:, 0] - top2[:, 1]
        ties = int((gap <= 2 * difference[differs].max(dim=1).values).sum())
    samples = reference.shape[0]
    return Agreement(samples=samples, agree=samples - int(differs.sum()), ties=ties,
                     max_abs_diff=float(difference.max()) if samples else 0.0)
