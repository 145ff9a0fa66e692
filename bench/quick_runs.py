"""What the benchmarks that run the CLI train in a `--quick` (smoke) run: rounds of one epoch, rewound to it, so
that every stage still runs (ticket retrains included) in the least time. A smoke run's figures mean nothing."""
from __future__ import annotations

QUICK_ROUNDS = ["train.epochs=1", "train.milestones=[]", "prune.rewind_epoch=1"]


def set_args(overrides: list[str]) -> list[str]:
    """`--set KEY=VALUE` for each override, as the CLI takes them."""
    return [arg for item in overrides for arg in ("--set", item)]
