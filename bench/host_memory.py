"""Benchmark 9: a CPU training process with freed host memory kept for reuse (prac.hardware.host_memory, what the
product does when it trains on the CPU) against glibc's defaults.

    .venv/bin/python bench/host_memory.py [--quick] [--threads N] [--repeats N] [--models lenet300,conv4,resnet20]

The setting is process-wide, so each arm is a fresh process: our path (prac.training.train.train_round on the
benchmark's data, the product's precision) trains `EPOCHS` epochs and prints its images/s; the two arms
alternate, pair by pair, and the median of each is reported with the ratio. Nothing else runs in those
processes (in bench/throughput.py the baseline arms share our arm's process and change how glibc's
thresholds move, so its figures cannot show this).
"""
from __future__ import annotations

import argparse
import subprocess
import sys

import common
from common import WORKLOADS, median, table

# (full, --quick: one batch; a smoke run checks that each arm runs in its own process)
SIZES = {"lenet300": (20_000, 128), "conv4": (2_048, 128), "resnet20": (3_072, 128), "conv2": (2_048, 128)}
EPOCHS = 3  # --quick: 1
ARMS = {"glibc defaults": False, "freed memory kept": True}


def child(model: str, images: int, threads: int, keep: bool, epochs: int = EPOCHS) -> None:
    """One arm in this fresh process: print the median images/s of `epochs` epochs after a warm-up, and the
    process's peak resident memory in MiB."""
    import resource

    import torch

    from prac.hardware.host_memory import keep_freed_memory

    if keep and not keep_freed_memory():
        raise SystemExit("malloc is not glibc's: nothing to measure")
    torch.set_num_threads(threads)
    workload = WORKLOADS[model]
    arm = common.FastPath(workload, workload.make_data(images))
    arm.warm_up()
    rate = median([arm.images_per_second(r) for r in range(epochs)])
    print(rate, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def add_arguments(parser) -> None:
    parser.add_argument("--models", default="lenet300,conv4,resnet20")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "IMAGES", "KEEP"), help=argparse.SUPPRESS)


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0], add_arguments)
    if args.child:
        model, images, keep = args.child
        child(model, int(images), args.threads, keep == "1", 1 if args.quick else EPOCHS)
        return 0
    common.start(args, "A CPU training process with freed host memory kept (prac.hardware.host_memory) against glibc's defaults")
    repeats = 1 if args.quick else args.repeats or 4
    rows, ratios = [], []
    for name in [n for n in args.models.split(",") if n]:
        images = SIZES[name][1 if args.quick else 0]

        peaks: dict[str, list[float]] = {label: [] for label in ARMS}

        def arm(label: str, keep: bool):
            def run(_repeat: int) -> float:
                out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", name,
                                      str(images), "1" if keep else "0", *(["--quick"] if args.quick else [])],
                                     capture_output=True, text=True, check=True)
                rate, peak = (float(x) for x in out.stdout.strip().splitlines()[-1].split())
                peaks[label].append(peak)
                return rate
            return run
        rates = common.interleave({label: arm(label, keep) for label, keep in ARMS.items()}, repeats)
        default, kept = (median(rates[label]) for label in ARMS)
        rows.append([WORKLOADS[name].label, f"{images:,}", repeats, f"{default:,.0f} ({common.spread(rates['glibc defaults'])})",
                     f"{kept:,.0f} ({common.spread(rates['freed memory kept'])})", f"{kept / default:.2f}x",
                     " / ".join(f"{median(peaks[label]):,.0f}" for label in ARMS)])
        ratios.append(f"{name} {kept / default:.2f}x")
    print(table(["model", "train images", "process pairs", "glibc defaults img/s", "freed memory kept img/s",
                 "kept / defaults", "peak RSS MiB (defaults / kept)"], rows))
    return common.finish([], f"freed host memory kept / glibc defaults ({args.threads} threads): " + ", ".join(ratios))


if __name__ == "__main__":
    sys.exit(main())
