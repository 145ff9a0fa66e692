"""An experiment's ticket retrains trained together after its last round (runtime.stack_tickets): `steps.start`
queues each round's retrain instead of running it, and the first ticket the loop asks for (prac.imp.imp_loop waits
for them all before it returns) runs the queue: each round's retrain step in turn, the first given the others'
masks, so that it trains them all as stacks (prac.imp.imp_steps.retrain_step) and the later steps find their
tickets written. The steps are the engine's calls or the flow's cached tasks alike: per round the same stage,
files and cache keys as a retrain run in its round."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from prac.artifacts.refs import ArtifactRef
from prac.settings.config import ExperimentConfig, ticket_sparsities
from prac.strategies.methods import get_method


def stacks_retrains(config: ExperimentConfig) -> bool:
    """Whether the experiment's retrains wait to be stacked: several of them (a retrain every round of more than
    one, or two or more sparsities listed by `at:`), none run beside the loop, one module per ticket (not
    runtime.compile's single module), and K > 1 asked for (runtime.stack_tickets). Opt-in on every device: left
    unset (None), the tickets train one at a time in their rounds, on a GPU too, until bench/gpu_check.sh has
    passed there with the stack's fixes (docs/howto/gpu.md)."""
    runtime = config.runtime
    targets = ticket_sparsities(runtime.evaluate_tickets)
    several = (config.prune.rounds > 1 and (runtime.evaluate_tickets == "all" or len(targets) > 1)
               and not get_method(config.method).ticket_is_next_round)
    if not several or runtime.retrain_alongside or runtime.compile:
        return False
    return runtime.stack_tickets is not None and runtime.stack_tickets > 1


class RetrainQueue:
    """Rounds' retrains waiting to be trained together. `run(r, mask, others)`: round r's retrain step, given the
    masks of the rounds still waiting after it."""

    def __init__(self, run: Callable[[int, ArtifactRef, dict[int, ArtifactRef]], ArtifactRef]):
        self._run = run
        self._waiting: dict[int, ArtifactRef] = {}
        self._done: dict[int, ArtifactRef] = {}

    def add(self, round_index: int, mask: ArtifactRef) -> "Queued":
        self._waiting[round_index] = mask
        return Queued(self, round_index)

    def ran(self, round_index: int) -> bool:
        return round_index in self._done

    def result(self, round_index: int) -> ArtifactRef:
        if round_index not in self._done:
            self.flush()
        return self._done[round_index]

    def flush(self) -> None:
        while self._waiting:
            r, mask = next(iter(self._waiting.items()))
            others = {k: v for k, v in self._waiting.items() if k != r}
            self._done[r] = self._run(r, mask, others)
            del self._waiting[r]


@dataclass
class Queued:
    """A retrain in the queue (prac.imp.imp_loop.Pending): done once the queue has run."""
    queue: RetrainQueue
    round_index: int

    def done(self) -> bool:  # the loop collects it when it waits for every pending ticket, after its last round
        return self.queue.ran(self.round_index)

    def result(self) -> ArtifactRef:
        return self.queue.result(self.round_index)
