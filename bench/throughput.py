"""Benchmark 1: training-loop throughput of our path against the DataLoader/PIL/torch-prune baseline.

    .venv/bin/python bench/throughput.py [--quick] [--threads N] [--repeats N] [--workers 2,0]
        [--device cpu|cuda] [--models lenet300,conv4,resnet20] [--images N] [--no-check]

Images/s over one epoch after a short warm-up, for LeNet-300-100 and Conv-4 on real Fashion-MNIST and
ResNet-20 on CIFAR-shaped random images; same model, initial weights, mask (20 % pruned), batch 128,
device and thread count for every arm, in one process, arms interleaved, medians of the repeats. Our path
runs with the product's defaults on the device (bfloat16 autocast on a GPU, float32 on the CPU); the
baseline in float32, with each `--workers` count (the first is the reference; pin_memory on a GPU, as
the reference implementation has it). Targets (CPU): >= 4x for the small models, >= 1.3x for ResNet-20;
on a GPU the figures are reported, not checked. Then the science check: LeNet-300-100 trained a few
epochs on Fashion-MNIST by each path must reach the same test accuracy within noise, with the pruned
weights still zero (`--no-check` skips it, for a machine without Fashion-MNIST). A CPU target is
attainable only if training at target x the baseline's speed needs no more FLOP/s (FlopCounterMode's
count of a training step) than the fastest float32 kernel (matmul or convolution, common.compute_peak)
reaches on the same threads; exit status 1 when the science check fails or (full CPU run only) an
attainable target is missed.
"""
from __future__ import annotations

import sys

import numpy as np

import common
from common import DEFAULT_MODELS, WORKLOADS, Baseline, FastPath, finish, median, spread, step_flops, table

# Training images per workload (full run, --quick) and targets (ours / baseline with workers).
SIZES = {"lenet300": (20_000, 512), "conv4": (2_048, 256), "resnet20": (3_072, 256), "conv2": (2_048, 256)}
REPEATS = {"lenet300": 5, "conv4": 3, "resnet20": 3, "conv2": 3}
TARGETS = {"lenet300": 4.0, "conv4": 4.0, "resnet20": 1.3, "conv2": 4.0}
# Science check: LeNet-300-100 on Fashion-MNIST by both paths, tested on the 10k test set.
CHECK = {"full": (20_000, 3, 3, 2.0), "quick": (4_096, 2, 1, 5.0)}  # (images, epochs, seeds, tolerance in points)


def add_arguments(parser) -> None:
    parser.add_argument("--workers", default="2,0",
                        help="comma-separated DataLoader worker counts of the baseline arms; the first is the "
                             "reference for the targets (default 2,0)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated, of " + ",".join(WORKLOADS))
    parser.add_argument("--images", type=int, default=None, help="training images per epoch for every model "
                                                                 "(default: per model, see SIZES)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the LeNet science check (it needs Fashion-MNIST)")


def baseline_label(workers: int) -> str:
    return f"baseline, {workers} workers"


def measure(name: str, args) -> dict:
    workload = WORKLOADS[name]
    data = workload.make_data(args.images or SIZES[name][1 if args.quick else 0], device=args.device)
    arms = {"ours": FastPath(workload, data)}
    arms |= {baseline_label(w): Baseline(workload, data, workers=w) for w in args.worker_counts}
    for arm in arms.values():
        arm.warm_up()
    flops_per_image = step_flops(arms["ours"])[0] / common.BATCH
    repeats = 1 if args.quick else args.repeats or REPEATS[name]
    rates = common.interleave({label: arm.images_per_second for label, arm in arms.items()}, repeats)
    return {"name": name, "images": len(data.train), "repeats": repeats, "rates": rates, "flops": flops_per_image}


def accuracy_check(args) -> tuple[float, float, list[str]]:
    """Mean test accuracy of each path over SEEDS data orders (same initial weights and mask)."""
    train_count, epochs, seeds, tolerance = CHECK["quick" if args.quick else "full"]
    milestones = (epochs - 1,)  # the last epoch at a tenth of the LR: end-of-training accuracy, less noisy
    workload = WORKLOADS["lenet300"]
    workers = args.worker_counts[0]
    data = workload.make_data(train_count, test_count=10_000, device=args.device)
    accs: dict[str, list[float]] = {"ours": [], "baseline": []}
    zeroed: dict[str, bool] = {"ours": True, "baseline": True}
    for seed in range(seeds):
        ours, baseline = FastPath(workload, data), Baseline(workload, data, workers=workers)
        ours.train_epochs(epochs, seed=seed, milestones=milestones)
        baseline.train_epochs(epochs, seed=seed, milestones=milestones)
        for label, arm in (("ours", ours), ("baseline", baseline)):
            accs[label].append(arm.test_accuracy())
            zeroed[label] &= common.pruned_fraction(arm.model, arm.mask) == 1.0
    mean = {k: float(np.mean(v)) for k, v in accs.items()}
    difference = 100 * (mean["ours"] - mean["baseline"])
    failures = []
    if not abs(difference) < tolerance:
        failures.append(f"mean test accuracy ours {mean['ours']:.4f} vs baseline {mean['baseline']:.4f}: "
                        f"differ by more than {tolerance} points")
    failures += [f"{label}: pruned weights are not all zero after training" for label, ok in zeroed.items() if not ok]
    print(f"\nScience check: LeNet-300-100 on {train_count:,} Fashion-MNIST training images, {epochs} epochs "
          f"(LR {workload.lr}, x{common.GAMMA} from epoch {milestones[0] + 1}), same initial weights and mask, "
          f"{seeds} data-order seed(s) per path, test on 10,000 images")
    rows = [[label if label == "ours" else f"baseline ({workers} workers)",
             " ".join(f"{a:.4f}" for a in accs[label]), f"{mean[label]:.4f}",
             f"{np.std(accs[label], ddof=1) * 100:.2f}" if seeds > 1 else "-", "yes" if zeroed[label] else "NO"]
            for label in accs]
    print(table(["path", "test accuracy per seed", "mean", "sd (points)", "pruned weights at zero"], rows))
    print(f"difference of the means {difference:+.2f} points (tolerance ±{tolerance})")
    return mean["ours"], mean["baseline"], failures


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0], add_arguments)
    try:
        args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        args.worker_counts = []
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not args.worker_counts:
        print(f"unknown models {unknown} (known: {', '.join(WORKLOADS)})" if unknown else
              f"--workers expects comma-separated integers, got {args.workers!r}", file=sys.stderr)
        return 2
    common.start(args, "Training-loop throughput: ours (train_round) vs DataLoader + PIL + torch.nn.utils.prune")
    on_gpu = args.device.startswith("cuda")
    reference = baseline_label(args.worker_counts[0])
    print(f"batch {common.BATCH}, SGD momentum {common.MOMENTUM} wd {common.WEIGHT_DECAY}, {common.PRUNED:.0%} of the "
          f"prunable weights pruned, augmentation on; baseline DataLoader num_workers in {args.worker_counts}"
          f"{', pin_memory' if on_gpu else ''}")
    results = [measure(name, args) for name in names]
    peak = common.compute_peak(args.quick, device=args.device)

    rows, failures, ratios, notes = [], [], [], []
    for res in results:
        name, rates = res["name"], res["rates"]
        ours, base = median(rates["ours"]), median(rates[reference])
        ratio, target = ours / base, TARGETS[name]
        met = ratio >= target
        needed = target * base * res["flops"]  # FLOP/s that training at the target speed would take
        attainable = needed <= peak.flops
        checked = not args.quick and not on_gpu
        if not common.finite(*(median(r) for r in rates.values())):
            failures.append(f"{name}: a throughput is not finite")
        if checked and not met and attainable:
            failures.append(f"{name}: {ratio:.2f}x is below the {target}x target")
        if checked and not met and not attainable:
            notes.append(f"{name}: {target}x the baseline would take {needed / 1e9:,.0f} GFLOP/s of training "
                         f"({res['flops'] / 1e6:,.0f} MFLOP per image), above this machine's float32 peak "
                         f"({peak.flops / 1e9:,.0f} GFLOP/s): the target is out of reach in float32 here")
        ratios.append(f"{name} {ratio:.2f}x")
        row = [WORKLOADS[name].label, f"{res['images']:,}", res["repeats"], f"{ours:,.0f} ({spread(rates['ours'])})"]
        for w in args.worker_counts:
            baseline = median(rates[baseline_label(w)])
            row += [f"{baseline:,.0f} ({spread(rates[baseline_label(w)])})", f"{ours / baseline:.2f}x"]
        row += [f">= {target}x", ("yes" if met else "no" if attainable else "no (out of reach)") if checked else
                "not checked", f"{res['flops'] / 1e6:,.1f}", f"{ours * res['flops'] / 1e9:,.1f}"]
        rows.append(row)
    print()
    headers = ["model", "train images", "repeats", "ours img/s (range)"]
    for w in args.worker_counts:
        headers += [f"baseline {w} workers img/s", f"ratio vs {w} workers"]
    print(table(headers + ["target", "met", "MFLOP/image (train step)", "ours GFLOP/s"], rows))
    print(f"float32 peak on {args.device} ({args.threads} threads): {peak.describe()}")
    for note in notes:
        print(f"note: {note}")

    summary = (f"throughput ratio ours/baseline ({args.worker_counts[0]} workers, {args.device}, {args.threads} threads): "
               + ", ".join(ratios))
    if not args.check:
        print("\nScience check: skipped (--no-check)")
        return finish(failures, summary)
    acc_ours, acc_base, check_failures = accuracy_check(args)
    failures += check_failures
    return finish(failures, summary + f"; LeNet mean test accuracy {acc_ours:.4f} vs {acc_base:.4f}")


if __name__ == "__main__":
    sys.exit(main())
