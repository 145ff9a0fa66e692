"""Many rounds of one architecture trained at once on one device: up to K of them as one stacked computation
(prac.training.stacked_step), the others waiting their turn. K = 1 is each round on its own step, as
`train_round` trains it. A round that finishes (its schedule's end, its early stop) leaves the stack and a waiting
one takes its place: a stack's rounds need not be at the same epoch, only of one training-set size.

An out-of-memory error during a stacked epoch: that epoch again with half the stack, said in one line; any other
error of a stacked step (a batching rule the installed torch lacks): the rounds one at a time, said in one line.
A round's epoch is written back to it only once the epoch completed, so nothing it had trained is lost.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

import torch

from prac.data.device_data import DeviceData
from prac.errors import one_line
from prac.training.round_run import RoundRun
from prac.training.stacked_step import StackedTrainStep
from prac.training.train_step import TrainStep

MAX_STACK = 16  # the largest stack measured (BENCHMARKS.md "stacked")
HEADROOM = 0.8  # of the device's free memory a stack may plan to use (the allocator's caching, fragmentation)
Log = Callable[[str], None] | None


class Alone:
    """One round on its own step: the StackedTrainStep interface over `TrainStep` (K = 1, today's path)."""

    def __init__(self, run: RoundRun):
        self.runs = [run]
        self.step = TrainStep(run.model, run.enforcer, run.optimizer, run.data, run.positions, run.train.batch_size,
                              run.train.channels_last, run.record, run.log)

    def load(self) -> None:  # the step trains the round's own model
        pass

    def store(self) -> None:
        pass

    def run_epoch(self, inputs: Sequence[tuple[torch.Tensor, torch.Generator, Sequence[float]]]) -> int:
        (order, generator, rates), = inputs
        return self.step.run_epoch(order, generator, rates)

    @property
    def loss_sum(self) -> torch.Tensor:
        return self.step.loss_sum.view(1)


def steps_for(runs: list[RoundRun], data: DeviceData, log: Log) -> Alone | StackedTrainStep:
    return Alone(runs[0]) if len(runs) == 1 else StackedTrainStep(runs, data, runs[0].train.batch_size, log)


def train_stacked(runs: Sequence[RoundRun], data: DeviceData, stack: int, log: Log = None) -> None:
    """Train every round of `runs` to its end, up to `stack` at a time."""
    if stack < 1:
        raise ValueError(f"a stack of {stack} rounds")
    queue = deque(run for run in runs if not run.finished)
    active: list[RoundRun] = []
    steps: Alone | StackedTrainStep | None = None
    while True:
        still = [run for run in active if not run.finished]
        while len(still) < stack and queue:
            still.append(queue.popleft())
        if not still:
            return
        try:
            if steps is None or still != active:
                active, steps = still, steps_for(still, data, log)
            trained = train_epoch(steps, active)
        except RuntimeError as exc:  # out of memory; or a batching rule this torch lacks for an operation of the model
            if len(still) == 1:
                raise
            if isinstance(exc, torch.OutOfMemoryError):
                stack = len(still) // 2
                say(log, f"out of memory training {len(still)} tickets at once: going on with {stack} at a time "
                         f"(the epoch again; no ticket's progress lost)")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            else:
                stack = 1
                say(log, f"warning: {len(still)} tickets could not train as one stack ({one_line(exc, 200)}): going on "
                         f"one at a time (the epoch again; no ticket's progress lost)")
            queue.extendleft(reversed(still[stack:]))
            active, steps = still[:stack], None
        else:
            end_epochs(active, *trained)


def say(log: Log, line: str) -> None:
    if log is not None:
        log(line)


def train_epoch(steps: Alone | StackedTrainStep, runs: list[RoundRun]) -> tuple[list, int, list[float]]:
    """One epoch of each of `runs`, written back to the rounds once it completed: (their epoch inputs, the steps
    taken, their loss sums)."""
    inputs = [run.epoch_inputs() for run in runs]
    steps.load()
    taken = steps.run_epoch(inputs)
    steps.store()
    return inputs, taken, steps.loss_sum.tolist()


def end_epochs(runs: list[RoundRun], inputs: list, taken: int, losses: list[float]) -> None:
    """Each round's end of epoch (validation, checkpoint, ...)."""
    for run, (order, _, rates), loss in zip(runs, inputs, losses):
        run.end_epoch(order, taken, rates[-1], loss)


def run_epoch(steps: Alone | StackedTrainStep, runs: list[RoundRun]) -> None:
    """One epoch of each of `runs`, then each round's end of epoch."""
    end_epochs(runs, *train_epoch(steps, runs))


# --- how many at a time ------------------------------------------------------------------------------------

def fitting_stack(free_bytes: int, ticket_bytes: int, tickets: int, cap: int = MAX_STACK) -> int:
    """The most tickets (at least 1, at most `cap` and `tickets`) whose measured memory fits HEADROOM of what is free."""
    return max(1, min(tickets, cap, int(free_bytes * HEADROOM) // max(1, ticket_bytes)))


def probe_step(run: RoundRun, data: DeviceData) -> None:
    """One eager stacked step of `run` alone on a copy of its state: the round's weights, momentum and BatchNorm
    statistics are left as they were (its record's row of predictions is rewritten by its next epoch)."""
    probe = StackedTrainStep([run], data, run.train.batch_size)
    probe.capture = False
    probe.load()
    probe.first_step([run.epoch_inputs()])


def measured_ticket_bytes(run: RoundRun, data: DeviceData) -> int:
    """Device memory one more ticket in a stack takes: the peak of `probe_step` (its stacked weights, gradients,
    momentum and activations)."""
    device = run.device
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    probe_step(run, data)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    torch.cuda.empty_cache()
    return peak


def stack_size(requested: int | None, runs: Sequence[RoundRun], data: DeviceData, log: Log = None) -> int:
    """K: `requested` (runtime.stack_tickets) when set; else 1 on a CPU (stacking measured slower there:
    BENCHMARKS.md "stacked") and, on a CUDA device, as many as the free memory holds (1, said in a line, when a
    stacked step of the model fails there)."""
    if not runs:
        return 1
    if requested is not None:
        return max(1, min(requested, len(runs)))
    device = runs[0].device
    if device.type != "cuda" or len(runs) == 1:
        return 1
    return memory_stack(runs, data, torch.cuda.mem_get_info(device)[0], log)


def memory_stack(runs: Sequence[RoundRun], data: DeviceData, free_bytes: int, log: Log = None) -> int:
    """As many of `runs` as `free_bytes` holds, by the memory one probing stacked step takes; 1 if it fails."""
    try:
        ticket_bytes = measured_ticket_bytes(runs[0], data)
    except RuntimeError as exc:  # out of memory for even one, or a batching rule this torch lacks
        say(log, f"warning: tickets train one at a time: a stacked step failed ({one_line(exc, 200)})")
        return 1
    return fitting_stack(free_bytes, ticket_bytes, len(runs))
