"""Benchmark 3: ResNet-20 training FLOP/s on our path as a fraction of the machine's matmul peak.

    .venv/bin/python bench/machine_fraction.py [--quick] [--threads N] [--repeats N]

FLOPs of one training step (forward, loss, backward; batch 128, CIFAR-shaped, channels_last as our path
runs it) counted by torch.utils.flop_counter.FlopCounterMode, which counts matrix multiplications and
convolutions (BN, ReLU, the optimizer step and the data path add time, not counted FLOPs). Divided by the
step time measured on our path (train_round, one epoch, evaluation stubbed out). The peak: a float32
N x N matmul (N = 4096) on the same threads. Both measured interleaved; medians. Exit status 1 when a
figure is impossible (no FLOPs counted, or a fraction outside (0, 100 %]).
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import common
import prac.train
from common import WORKLOADS, FastPath, finish, median, replaced, table, timed

SIZES = (3_072, 256)  # training images per timed epoch (full run, --quick)
MATMUL_N = (4096, 1024)
MATMULS_PER_REPEAT = 3
REPEATS = 3


def step_flops(ours: FastPath) -> tuple[int, int]:
    """(training-step FLOPs, forward FLOPs) for one batch of BATCH images, as train_round runs it."""
    data = ours.data
    generator = torch.Generator().manual_seed(0)
    images = data.prepare(data.train.images[:common.BATCH], generator, ours.train.channels_last)
    labels = data.train.labels[:common.BATCH]
    ours.model.train()
    with FlopCounterMode(display=False) as forward_counter:
        with torch.no_grad():
            ours.model(images)
    with FlopCounterMode(display=False) as step_counter:
        loss = F.cross_entropy(ours.model(images), labels)
        loss.backward()
    ours.model.zero_grad(set_to_none=True)
    return step_counter.get_total_flops(), forward_counter.get_total_flops()


def matmul_flops_per_second(n: int):
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up

    def run(_repeat: int) -> float:
        seconds = timed(lambda: [torch.mm(a, b, out=out) for _ in range(MATMULS_PER_REPEAT)])
        return 2 * n**3 * MATMULS_PER_REPEAT / seconds
    return run


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    common.start(args, "Fraction of the machine: ResNet-20 training FLOP/s against a float32 matmul's")
    quick = 1 if args.quick else 0
    workload = WORKLOADS["resnet20"]
    ours = FastPath(workload, workload.make_data(SIZES[quick]))
    n = MATMUL_N[quick]
    with replaced(prac.train, "accuracy", lambda *a, **k: 0.0):  # the training loop alone
        ours.warm_up()
        train_flops, forward_flops = step_flops(ours)
        repeats = 1 if args.quick else args.repeats or REPEATS
        results = common.interleave({"train": ours.images_per_second, "matmul": matmul_flops_per_second(n)},
                                    repeats)
    rate = median(results["train"])
    achieved = train_flops / common.BATCH * rate
    peak = median(results["matmul"])
    fraction = achieved / peak

    print(table(["figure", "value"], [
        ["training images per timed epoch", f"{ours.images:,}"],
        ["repeats (interleaved)", repeats],
        ["forward FLOPs per image (FlopCounterMode)", f"{forward_flops / common.BATCH / 1e6:,.1f} M"],
        ["training-step FLOPs per image (forward + backward)", f"{train_flops / common.BATCH / 1e6:,.1f} M"],
        ["our path, ResNet-20 training img/s (median, range)", f"{rate:,.0f} ({common.spread(results['train'])})"],
        ["our path, step time (batch 128)", f"{common.BATCH / rate * 1000:,.1f} ms"],
        ["achieved training FLOP/s", f"{achieved / 1e9:,.1f} GFLOP/s"],
        [f"float32 {n}x{n} matmul peak (median)", f"{peak / 1e9:,.1f} GFLOP/s "
                                                  f"({min(results['matmul']) / 1e9:,.1f}–{max(results['matmul']) / 1e9:,.1f})"],
        ["fraction of the matmul peak", f"{fraction:.1%}"],
    ]))
    failures = []
    if train_flops <= 0 or forward_flops <= 0:
        failures.append("FlopCounterMode counted no FLOPs")
    if not (common.finite(fraction) and 0 < fraction <= 1):
        failures.append(f"fraction {fraction} outside (0, 100 %]")
    return finish(failures, f"ResNet-20 training at {achieved / 1e9:.1f} GFLOP/s = {fraction:.1%} of the "
                            f"{peak / 1e9:.1f} GFLOP/s float32 matmul peak ({args.threads} threads)")


if __name__ == "__main__":
    sys.exit(main())
