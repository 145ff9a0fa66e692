"""Benchmark 3: ResNet-20 training FLOP/s on our path as a fraction of the machine's float32 peak.

    .venv/bin/python bench/machine_fraction.py [--quick] [--threads N] [--repeats N]

FLOPs of one training step (forward, loss, backward; batch 128, CIFAR-shaped, channels_last as our path
runs it) counted by torch.utils.flop_counter.FlopCounterMode, which counts matrix multiplications and
convolutions (BN, ReLU, the optimizer step and the data path add time, not counted FLOPs). Divided by the
step time measured on our path (train_round, one epoch, evaluation stubbed out; median of the repeats).
The peak: the fastest float32 kernel among square matmuls (512 to 4096) and 3x3 convolutions (64 to 256
channels), each the best of the repeats, on the same threads (common.compute_peak; on AMD CPUs MKL's
matmul runs at half the rate of oneDNN's convolutions, so a matmul alone is no limit). Exit status 1 when no FLOPs were counted, or (full run
only) the fraction is outside (0, 100 %]. A --quick run checks that the benchmark runs: its peak (two
small sizes, timed once) is no limit that training cannot beat, so its fraction is not checked.
"""
from __future__ import annotations

import sys

import common
import prac.training.round_run
from common import WORKLOADS, FastPath, finish, compute_peak, median, replaced, step_flops, table

SIZES = (3_072, 256)  # training images per timed epoch (full run, --quick)
REPEATS = 3


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    common.start(args, "Fraction of the machine: ResNet-20 training FLOP/s against the float32 peak")
    quick = 1 if args.quick else 0
    workload = WORKLOADS["resnet20"]
    ours = FastPath(workload, workload.make_data(SIZES[quick], precision="float32"))  # against the float32 peak
    repeats = 1 if args.quick else args.repeats or REPEATS
    with replaced(prac.training.round_run, "accuracy", lambda *a, **k: 0.0):  # the training loop alone
        ours.warm_up()
        train_flops, forward_flops = step_flops(ours)
        peak_before = compute_peak(args.quick, repeats)
        rates = [ours.images_per_second(r) for r in range(repeats)]
        peak_after = compute_peak(args.quick, repeats)  # before and after: a drift of the machine shows
    peak = peak_before if peak_before.flops >= peak_after.flops else peak_after
    rate = median(rates)
    achieved = train_flops / common.BATCH * rate
    fraction = achieved / peak.flops

    print(table(["figure", "value"], [
        ["training images per timed epoch", f"{ours.images:,}"],
        ["repeats", repeats],
        ["forward FLOPs per image (FlopCounterMode)", f"{forward_flops / common.BATCH / 1e6:,.1f} M"],
        ["training-step FLOPs per image (forward + backward)", f"{train_flops / common.BATCH / 1e6:,.1f} M"],
        ["our path, ResNet-20 training img/s (median, range)", f"{rate:,.0f} ({common.spread(rates)})"],
        ["our path, step time (batch 128)", f"{common.BATCH / rate * 1000:,.1f} ms"],
        ["achieved training FLOP/s", f"{achieved / 1e9:,.1f} GFLOP/s"],
        ["float32 peak, before training", peak_before.describe()],
        ["float32 peak, after training", peak_after.describe()],
        ["fraction of the float32 peak", f"{fraction:.1%}" + (" (--quick: not a measured limit)" if args.quick else "")],
    ]))
    failures = []
    if train_flops <= 0 or forward_flops <= 0:
        failures.append("FlopCounterMode counted no FLOPs")
    if not common.finite(fraction) or fraction <= 0:
        failures.append(f"fraction {fraction} is not a positive number")
    if not args.quick and fraction > 1:
        failures.append(f"training measured {fraction:.1%} of the float32 peak: the peak measurement is wrong")
    return finish(failures, f"ResNet-20 training at {achieved / 1e9:.1f} GFLOP/s = {fraction:.1%} of the "
                            f"{peak.flops / 1e9:.1f} GFLOP/s float32 peak ({args.threads} threads)")


if __name__ == "__main__":
    sys.exit(main())
