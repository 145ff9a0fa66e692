"""A GPU shared by several flow runs (two workers on one GPU, or a worker with --limit N): a Prefect global
concurrency limit per GPU keeps them within what it holds. A worker whose environment names a limit in
PRAC_GPU_LIMIT (e.g. gpu-0, created once: `prefect gcl create gpu-0 --limit 2`) runs each experiment inside one
slot of it; the experiment waits for a free slot. One worker per GPU with --limit 1 (docker/compose.yaml) needs
none."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from prac.errors import UserError

LIMIT_ENV = "PRAC_GPU_LIMIT"


@contextlib.contextmanager
def gpu_slot() -> Iterator[None]:
    name = os.environ.get(LIMIT_ENV)
    if not name:
        yield
        return
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError  # the sync API raises it too
    from prefect.concurrency.sync import concurrency

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(concurrency(name, occupy=1, strict=True))
        except ConcurrencySlotAcquisitionError:
            raise UserError(f"{LIMIT_ENV}={name}, but the Prefect server has no global concurrency limit {name}: "
                            f"create it (prefect gcl create {name} --limit N: N flow runs at once on that GPU)") from None
        yield
