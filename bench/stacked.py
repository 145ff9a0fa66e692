"""Benchmark 11: K tickets trained at once as one stacked computation (prac.training.stacked), aggregate images/s
against K, and the paper's panel in device-hours at the measured rates.

    .venv/bin/python bench/stacked.py [--quick] [--threads N] [--repeats N] [--device cpu|cuda]
        [--models lenet300,resnet20] [--stacks 1,2,4] [--images N]

Per model and K: K tickets of the workload (each its own initial weights, 20 % pruned mask and data order), one
epoch of each, as train_stacked trains them (K = 1: the round alone, train_round's step; K > 1: one vmapped step,
captured as a CUDA graph on a GPU), evaluation of the one-batch validation split included; K x images / seconds,
medians of interleaved repeats after a warm-up epoch of every arm. The ratio is against K = 1 in the same run: how
many times one ticket's rate the device reaches with K at once. Defaults: on a CPU, LeNet-300-100 (Fashion-MNIST)
and ResNet-20 (CIFAR-shaped) with K = 1, 2, 4; on a GPU, Conv-4 and ResNet-20 with K = 1, 2, 4, 8, 16.
Then the paper's CIFAR-10/ResNet-20 panel (bench/panel_hours.py: its trainings of 182 epochs on 45,000 images) in
device-hours at ResNet-20's rate at K = 1 and at the best K: an upper bound of the saving, as if every training of
the panel could be stacked (retrains of one experiment and rounds of lt-like arms of several seeds can; prac's own
rounds, each on its PrAC set, only with others of their size).
"""
from __future__ import annotations

import sys

import torch

import common
from common import BATCH, WORKLOADS, FastPath, finish, median, spread, table
from panel_hours import panel_jobs
from prac.training.round_run import RoundRun
from prac.training.round_types import RoundSpec
from prac.training import stacked_step
from prac.training.stacked import train_stacked

IMAGES = {"lenet300": (20_000, 128), "conv4": (4_096, 128), "resnet20": (4_096, 128)}  # (full, --quick: one batch), a CPU
GPU_IMAGES = 45_000  # a GPU: CIFAR-10's D0


def add_arguments(parser) -> None:
    parser.add_argument("--models", default=None, help="comma-separated, of " + ",".join(WORKLOADS)
                        + " (default: lenet300,resnet20 on a CPU, conv4,resnet20 on a GPU)")
    parser.add_argument("--stacks", default=None, help="comma-separated K (default: 1,2,4 on a CPU, 1,2,4,8,16 on a GPU)")
    parser.add_argument("--images", type=int, default=None, help="training images per ticket's epoch")
    parser.add_argument("--layout", choices=("channels_last", "nchw"), default="channels_last",
                        help="the stacked images' memory layout (prac.training.stacked_step.STACKED_CHANNELS_LAST)")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")


def tickets(workload, data, k: int, seed: int) -> list[RoundRun]:
    """K tickets of one epoch each: their own initial weights and masks (FastPath's), data orders."""
    runs = []
    for i in range(k):
        path = FastPath(workload, data, seed=seed * 100 + i)
        spec = RoundSpec(common.schedule(1, workload.lr), seed=seed * 100 + i)
        runs.append(RoundRun(path.model, path.mask, data, path.train, spec))
    return runs


def measure(name: str, stacks: list[int], images: int, args) -> dict[int, list[float]]:
    workload = WORKLOADS[name]
    data = workload.make_data(images, device=args.device)

    def arm(k: int):
        def once(repeat: int) -> float:
            runs = tickets(workload, data, k, seed=repeat + 1)
            rate = k * images / common.timed(lambda: train_stacked(runs, data, stack=k), data)
            # as it goes: a run stopped at its time limit still tells what it had measured
            print(f"# {name} K={k} {'warm-up' if repeat < 0 else f'repeat {repeat + 1}'}: {rate:,.0f} images/s",
                  file=sys.stderr, flush=True)
            return rate
        return once
    arms = {k: arm(k) for k in stacks}
    for once in arms.values():  # warm-up: allocations, cuDNN's choices, the graph's capture
        once(-1)
    repeats = args.repeats or (1 if args.quick else 3)
    return {int(k): rates for k, rates in common.interleave(arms, repeats).items()}


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0], add_arguments)
    gpu = args.device.startswith("cuda")
    models = (args.models or ("conv4,resnet20" if gpu else "lenet300,resnet20")).split(",")
    stacks = [int(k) for k in (args.stacks or ("1,2,4,8,16" if gpu else "1,2,4")).split(",")]
    if args.quick:
        stacks = stacks[:2]
    if 1 not in stacks:
        stacks = [1, *stacks]
    stacked_step.STACKED_CHANNELS_LAST = args.layout == "channels_last"
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    common.start(args, "K tickets trained at once as one stacked computation: aggregate images/s")
    print(f"stacked layout {args.layout}; cudnn.benchmark {args.cudnn_benchmark}")
    rows, best = [], {}
    for name in models:
        images = args.images or (GPU_IMAGES if gpu and not args.quick else IMAGES[name][args.quick])
        rates = measure(name, stacks, images, args)
        alone = median(rates[1])
        for k in stacks:
            rows.append([WORKLOADS[name].label, k, f"{images:,}", f"{median(rates[k]):,.0f}", spread(rates[k]),
                         f"{median(rates[k]) / alone:.2f}x"])
        best[name] = max(stacks, key=lambda k: median(rates[k])), alone, {k: median(rates[k]) for k in stacks}
    print(f"batch {BATCH}; one epoch per ticket, validation of one batch included; medians of interleaved repeats")
    print(table(["model", "K", "images/ticket", "images/s (all K)", "range", "vs K=1"], rows))
    failures: list[str] = [f"{name}: a non-finite rate" for name, (_, _, r) in best.items()
                           if not common.finite(*r.values())]
    if "resnet20" in best:
        k, alone, rates = best["resnet20"]
        jobs = panel_jobs(1.0, 1.0, False)  # each a training of the full schedule on all of D0
        work = len(jobs)
        retrains = sum(1 for name in jobs if "/prac/retrain" in name)  # stacked by the product today
        hours = lambda trainings, rate: trainings * 182 * 45_000 / rate / 3600  # noqa: E731
        print(f"the paper's CIFAR-10/ResNet-20 panel ({work} trainings of 182 epochs x 45,000 images, {retrains} of "
              f"them prac's ticket retrains) on one {common.describe_device(args.device)}: "
              f"{hours(work, alone):.1f} device-hours one training at a time; "
              f"{hours(work - retrains, alone) + hours(retrains, rates[k]):.1f} with prac's retrains stacked K={k} "
              f"at a time (what the product stacks); {hours(work, rates[k]):.1f} were every training stacked")
    name = "resnet20" if "resnet20" in best else models[-1]
    k, alone, rates = best[name]
    return finish(failures, f"{WORKLOADS[name].label}: {rates[k] / alone:.2f}x one ticket's images/s with K={k} "
                            f"at once ({rates[k]:,.0f} vs {alone:,.0f})")


if __name__ == "__main__":
    sys.exit(main())
