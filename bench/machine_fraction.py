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

import common
import prac.train
from common import WORKLOADS, FastPath, finish, matmul_flops_per_second, median, replaced, step_flops, table

SIZES = (3_072, 256)  # training images per timed epoch (full run, --quick)
MATMUL_N = (common.MATMUL_N, 1024)
REPEATS = 3


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
