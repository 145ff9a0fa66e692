"""The order in which a comparison's experiments run when several run at once. Arms that share round 0 (the
same round-0 fingerprint: one seed's methods) must not train it side by side, so one of them starts first and
the others when it is done; groups run side by side. An arm at the prac run's budget reads that run's finished
files (prac.imp.budget), so a group's prac run leads it when another arm needs it, and runs first when they run
one after another. The caller's pool does the running (processes through Prefect, or plain concurrent.futures
for the engine alone)."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from prac.settings.config import ExperimentConfig
from prac.hardware.device import choose_threads
from prac.imp.budget import is_reference_of
from prac.layout.fingerprint import round0_fingerprint

F = TypeVar("F")


def sharing_cores(configs: Sequence[ExperimentConfig], parallel: int) -> list[ExperimentConfig]:
    """`configs` as `parallel` processes at once should run them: each with its share of the cores as torch threads
    (unless `runtime.threads` or OMP_NUM_THREADS says otherwise). Each taking every core instead oversubscribes
    them: two LeNet-300-100 experiments side by side on 2 cores ran 7.4x slower with 2 threads each than with 1."""
    if parallel <= 1:
        return list(configs)
    shared = []
    for config in configs:
        cores = choose_threads(config.runtime.threads) if config.runtime.threads is None else None
        update = {"threads": max(1, cores // parallel)} if cores is not None else {}
        shared.append(config.model_copy(update={"runtime": config.runtime.model_copy(update=update)}) if update
                      else config)
    return shared


def references_first(configs: Sequence[ExperimentConfig]) -> list[ExperimentConfig]:
    """`configs` in their order, except that a prac run another one's budget reads comes before every other."""
    needed = [c for c in configs if any(is_reference_of(c, other) for other in configs)]
    return needed + [c for c in configs if c not in needed]


def round0_first(configs: Sequence[ExperimentConfig], submit: Callable[[ExperimentConfig], F],
                 first_done: Callable[[list[F]], F]) -> Iterator[tuple[ExperimentConfig, F]]:
    """Submit the experiments in that order and yield (config, its finished future) as each one ends."""
    groups: dict[str, list[ExperimentConfig]] = {}
    for config in references_first(configs):
        groups.setdefault(round0_fingerprint(config), []).append(config)
    pending = {submit(group[0]): (group[0], group[1:]) for group in groups.values()}
    while pending:
        future = first_done(list(pending))
        config, rest = pending.pop(future)
        for other in rest:  # round 0 is on disk now: the group's other arms read it
            pending[submit(other)] = (other, [])
        yield config, future
