"""`--recompute STAGE[@ROUND]`: which cached stages a run computes again instead of reusing.

What reads a recomputed stage's output is recomputed only if that output changed (the stage cache keys
hold the checksums of their inputs: prac_lth.tasks.caching), so a damaged file is replaced and nothing else redone.
"""
from __future__ import annotations

from dataclasses import dataclass

from prac.errors import UserError
from prac.imp.stage_table import STAGES as STAGE_TABLE

STAGES = tuple(STAGE_TABLE)  # the stages' names (prac.imp.stage_table)


@dataclass(frozen=True)
class Recompute:
    stage: str
    round: int | None  # None: every round

    def covers(self, stage: str, round_index: int | None) -> bool:
        """Whether this names `stage` at `round_index` (None: a stage of no round, dense-predictions)."""
        return self.stage == stage and (self.round is None or round_index is None or self.round == round_index)


def parse_recompute(items: list[str] | str | None, rounds: int) -> list[Recompute]:
    """`STAGE` or `STAGE@ROUND` items (comma-separated lists too); UserError (one line) for anything else."""
    items = [items] if isinstance(items, str) else items or []
    if not isinstance(items, list) or not all(isinstance(text, str) for text in items):
        raise UserError(f"recompute must be a list of STAGE[@ROUND] texts, got {items!r}")
    parsed = []
    for item in (part.strip() for text in items for part in text.split(",")):
        if not item:
            continue
        stage, _, round_text = item.partition("@")
        if stage not in STAGES:
            raise UserError(f"--recompute: unknown stage '{stage}' (one of {', '.join(STAGES)}, optionally @ROUND)")
        round_index = None
        if round_text:
            if not round_text.isdigit() or int(round_text) >= rounds:
                raise UserError(f"--recompute {item}: the round must be an integer from 0 to {rounds - 1}")
            round_index = int(round_text)
        parsed.append(Recompute(stage, round_index))
    return parsed


def is_forced(recompute: list[Recompute], stage: str, round_index: int | None) -> bool:
    return any(r.covers(stage, round_index) for r in recompute)
