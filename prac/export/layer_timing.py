"""How long a computation takes on this CPU: the median of torch.utils.benchmark's blocked_autorange at a given thread
count, and the input shape each layer of a network sees (to time a layer alone on an input of its own shape).

The median, not the mean: on a machine shared with other work a block now and then waits for a core, and the median
of the blocks is what the computation takes when it gets the cores it asked for. No timing is asserted anywhere:
what these measure is this machine, now."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

# torch.utils.benchmark imports torch.utils.cpp_extension, which logs a warning about CUDA_HOME on a machine with a
# CUDA toolkit folder but no CUDA runtime: nothing the user asked about, so not on their terminal.
_CPP_EXTENSION_LOGGER = "torch.utils.cpp_extension"


@dataclass(frozen=True)
class Timing:
    median: float  # seconds per call
    iqr: float  # seconds, the spread of the blocks' times
    blocks: int  # how many blocks the median is of


def _benchmark_module():
    logger = logging.getLogger(_CPP_EXTENSION_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import benchmark
    finally:
        logger.setLevel(level)
    return benchmark


def measure(call: Callable[[], object], threads: int, min_run_time: float) -> Timing:
    """The median time of `call()` (run without autograd) with torch on `threads` threads, measured in blocks over
    at least `min_run_time` seconds (torch.utils.benchmark.Timer.blocked_autorange)."""
    benchmark = _benchmark_module()

    def run() -> None:
        with torch.no_grad():
            call()

    run()  # a first call outside the measurement: lazy initialisation, caches, the thread pool
    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=threads)
    result = timer.blocked_autorange(min_run_time=min_run_time)
    return Timing(median=result.median, iqr=result.iqr, blocks=len(result.times))


def machine_load() -> tuple[float, int] | None:
    """(the 1-minute load average, the CPUs there are) as the timings end, or None where the system keeps no load
    average (Windows): a load above the CPU count means other work shared the cores the timings ran on."""
    try:
        return os.getloadavg()[0], os.cpu_count() or 1
    except (AttributeError, OSError):
        return None


@torch.no_grad()
def layer_input_shapes(model: nn.Module, sample: torch.Tensor, names: list[str]) -> dict[str, tuple[int, ...]]:
    """The shape of the input each named submodule receives when `model` runs on `sample` (batch dimension
    included): read by forward hooks, on one forward pass in eval mode."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module: nn.Module, inputs: tuple, _output: object) -> None:  # None: the output stays
            shapes.setdefault(name, tuple(inputs[0].shape))
        return hook

    hooks = [model.get_submodule(name).register_forward_hook(record(name)) for name in names]
    was_training = model.training
    try:
        model.eval()
        model(sample)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    if missing := [name for name in names if name not in shapes]:
        raise ValueError(f"layer_input_shapes: {missing} did not run in the model's forward pass")
    return shapes
