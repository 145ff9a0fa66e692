"""Benchmark 1: training-loop throughput of our path against the DataLoader/PIL/torch-prune baseline.

    .venv/bin/python bench/throughput.py [--quick] [--threads N] [--repeats N] [--workers N]

Images/s over one epoch after a short warm-up, for LeNet-300-100 and Conv-4 on real Fashion-MNIST and
ResNet-20 on CIFAR-shaped random images; same model, initial weights, mask (20 % pruned), batch 128 and
thread count for both, in one process, arms interleaved, medians of the repeats. Targets: >= 4x for
the small models, >= 1.3x for ResNet-20. Then the science check: LeNet-300-100 trained a few epochs on
Fashion-MNIST by each path must reach the same test accuracy within noise, with the pruned weights
still zero. Exit status 1 when the check fails or (full run only) a target is missed.
"""
from __future__ import annotations

import sys

import common
from common import DEFAULT_MODELS, WORKLOADS, Baseline, FastPath, finish, median, spread, table

# Training images per workload (full run, --quick) and targets (ours / baseline with workers).
SIZES = {"lenet300": (10_000, 512), "conv4": (2_048, 256), "resnet20": (3_072, 256), "conv2": (2_048, 256)}
REPEATS = {"lenet300": 5, "conv4": 3, "resnet20": 3, "conv2": 3}
TARGETS = {"lenet300": 4.0, "conv4": 4.0, "resnet20": 1.3, "conv2": 4.0}
# Science check: LeNet-300-100, EPOCHS epochs on TRAIN Fashion-MNIST images, tested on the 10k test set.
CHECK = {"full": (20_000, 3, 2.0), "quick": (4_096, 2, 5.0)}  # (train images, epochs, tolerance in points)


def add_arguments(parser) -> None:
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the baseline (default 2)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated, of " + ",".join(WORKLOADS))


def measure(name: str, args) -> dict:
    workload = WORKLOADS[name]
    data = workload.make_data(SIZES[name][1 if args.quick else 0])
    ours = FastPath(workload, data)
    baseline = Baseline(workload, data, workers=args.workers)
    no_workers = Baseline(workload, data, workers=0)
    arms = {"ours": ours, "baseline": baseline, "baseline, 0 workers": no_workers}
    for arm in arms.values():
        arm.warm_up()
    repeats = 1 if args.quick else args.repeats or REPEATS[name]
    rates = common.interleave({label: arm.images_per_second for label, arm in arms.items()}, repeats)
    return {"name": name, "images": len(data.train), "repeats": repeats, "rates": rates}


def accuracy_check(args) -> tuple[float, float, float, float, list[str]]:
    train_count, epochs, tolerance = CHECK["quick" if args.quick else "full"]
    workload = WORKLOADS["lenet300"]
    data = workload.make_data(train_count, test_count=10_000)
    ours, baseline = FastPath(workload, data), Baseline(workload, data, workers=args.workers)
    ours.train_epochs(epochs, seed=0)
    for epoch in range(epochs):
        baseline.images_per_second(epoch)
    acc_ours, acc_base = ours.test_accuracy(), baseline.test_accuracy()
    failures = []
    if not abs(acc_ours - acc_base) * 100 < tolerance:
        failures.append(f"test accuracy ours {acc_ours:.4f} vs baseline {acc_base:.4f}: differ by more than "
                        f"{tolerance} points")
    for label, arm in (("ours", ours), ("baseline", baseline)):
        if common.pruned_fraction(arm.model, arm.mask) != 1.0:
            failures.append(f"{label}: pruned weights are not all zero after training")
    print(f"\nScience check: LeNet-300-100, {epochs} epochs on {train_count:,} Fashion-MNIST training images, "
          f"same initial weights and mask, test on 10,000 images")
    print(table(["path", "test accuracy", "pruned weights at zero"],
                [["ours (train_round)", f"{acc_ours:.4f}", "yes" if common.pruned_fraction(ours.model, ours.mask) == 1 else "NO"],
                 [f"baseline ({args.workers} workers)", f"{acc_base:.4f}",
                  "yes" if common.pruned_fraction(baseline.model, baseline.mask) == 1 else "NO"]]))
    print(f"difference {100 * (acc_ours - acc_base):+.2f} points (tolerance ±{tolerance})")
    return acc_ours, acc_base, tolerance, epochs, failures


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0], add_arguments)
    common.start(args, "Training-loop throughput: ours (train_round) vs DataLoader + PIL + torch.nn.utils.prune")
    print(f"batch {common.BATCH}, SGD momentum {common.MOMENTUM} wd {common.WEIGHT_DECAY}, {common.PRUNED:.0%} of the "
          f"prunable weights pruned, augmentation on; baseline DataLoader num_workers={args.workers}")
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown models {unknown} (known: {', '.join(WORKLOADS)})", file=sys.stderr)
        return 2
    results = [measure(name, args) for name in names]

    rows, failures, ratios = [], [], []
    for res in results:
        name, rates = res["name"], res["rates"]
        ours, base, base0 = (median(rates[k]) for k in ("ours", "baseline", "baseline, 0 workers"))
        ratio, target = ours / base, TARGETS[name]
        met = ratio >= target
        if not common.finite(ours, base, base0):
            failures.append(f"{name}: a throughput is not finite")
        if not met and not args.quick:
            failures.append(f"{name}: {ratio:.2f}x is below the {target}x target")
        ratios.append(f"{name} {ratio:.2f}x")
        rows.append([WORKLOADS[name].label, f"{res['images']:,}", res["repeats"],
                     f"{ours:,.0f} ({spread(rates['ours'])})", f"{base:,.0f} ({spread(rates['baseline'])})",
                     f"{ratio:.2f}x", f">= {target}x", ("yes" if met else "no") if not args.quick else "not checked",
                     f"{base0:,.0f} ({spread(rates['baseline, 0 workers'])})", f"{ours / base0:.2f}x"])
    print()
    print(table(["model", "train images", "repeats", "ours img/s (range)", f"baseline {args.workers} workers img/s",
                 "ratio", "target", "met", "baseline 0 workers img/s", "ratio vs 0 workers"], rows))

    acc_ours, acc_base, tolerance, epochs, check_failures = accuracy_check(args)
    failures += check_failures
    return finish(failures, f"throughput ratio ours/baseline ({args.workers} workers, {args.threads} threads): "
                            + ", ".join(ratios) + f"; LeNet test accuracy after {epochs} epochs "
                            f"{acc_ours:.4f} vs {acc_base:.4f}")


if __name__ == "__main__":
    sys.exit(main())
