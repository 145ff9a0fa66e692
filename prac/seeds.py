"""Seeds of independent random streams, derived from the experiment's seed (a leaf: the strategies, the
training loop and the fingerprint use it)."""
from __future__ import annotations

import hashlib
import json


def seed_for(seed: int, *labels: object) -> int:
    """A 63-bit seed derived from the experiment seed and labels (e.g. "epoch", 4): independent streams
    per purpose, so resuming at an epoch boundary needs no saved RNG state."""
    text = json.dumps([seed, *[str(x) for x in labels]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
