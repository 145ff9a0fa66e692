"""Benchmark 1: training-loop throughput of our path against two baselines: the DataLoader/PIL/torch-prune
loop most users write, and a loop written the way the reference implementation's is (bench/reference_loop.py).

    .venv/bin/python bench/throughput.py [--quick] [--threads N] [--repeats N] [--workers 2,0]
        [--device cpu|cuda] [--models lenet300,conv4,resnet20] [--images N] [--variants float32,eager]
        [--no-reference] [--no-check]

Images/s over one epoch after a short warm-up, for LeNet-300-100 and Conv-4 on real Fashion-MNIST and
ResNet-20 on CIFAR-shaped random images; same model, initial weights, mask (20 % pruned), batch 128,
device and thread count for every arm, in one process, arms interleaved, medians of the repeats. Our path
runs with the product's defaults on the device (`runtime.precision=auto`: bfloat16 autocast on a GPU and on
a CPU with native bfloat16; the step captured as a CUDA graph on a GPU); `--variants` adds our path changed
one way each: float32, bfloat16, eager (no CUDA graph), nchw (no channels_last). The baselines train in
float32: the DataLoader loop with each `--workers` count (the first is the reference for the targets;
pin_memory on a GPU, as the reference implementation has it), and the reference implementation's loop
(main process, per-sample forgetting record and meters). Targets (CPU): our path >= TARGETS x the
DataLoader loop and >= REFERENCE_TARGETS x the reference loop; on a GPU the figures are reported, not
checked. Then the science check: LeNet-300-100 trained a few epochs on Fashion-MNIST by our path (in its
default precision) and the DataLoader loop must reach the same test accuracy within noise, with the pruned
weights still zero (`--no-check` skips it, for a machine without Fashion-MNIST). A CPU target is attainable
only if training at target x the baseline's speed needs no more FLOP/s (FlopCounterMode's count of a
training step) than the fastest kernel (matmul or convolution, common.compute_peak) reaches on the same
threads in our path's precision; exit status 1 when the science check fails or (full CPU run only) an
attainable target is missed.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np
import torch

import common
from common import DEFAULT_MODELS, WORKLOADS, Baseline, FastPath, finish, median, spread, step_flops, table
from prac.hardware.host_memory import keep_freed_memory
from reference_loop import ReferenceLoop

# Training images per workload (full run, --quick) and targets (ours / baseline with workers, ours / the
# reference loop; None: not a target).
SIZES = {"lenet300": (20_000, 512), "conv4": (2_048, 256), "resnet20": (3_072, 256), "conv2": (2_048, 256)}
REPEATS = {"lenet300": 5, "conv4": 3, "resnet20": 3, "conv2": 3}
TARGETS = {"lenet300": 4.0, "conv4": 3.0, "resnet20": 3.0, "conv2": 4.0}
REFERENCE_TARGETS = {"lenet300": None, "conv4": 2.0, "resnet20": 2.0, "conv2": None}
REFERENCE = "reference loop"
# Science check: LeNet-300-100 on Fashion-MNIST by both paths, tested on the 10k test set.
CHECK = {"full": (20_000, 3, 3, 2.0), "quick": (4_096, 2, 1, 5.0)}  # (images, epochs, seeds, tolerance in points)


# Our path changed one way each (`--variants`): (changes to the data, changes to the training config).
VARIANTS = {"float32": ({"autocast": None}, {}), "bfloat16": ({"autocast": torch.bfloat16}, {}),
            "eager": ({"graphs": False}, {}), "nchw": ({}, {"channels_last": False})}


def variant_arm(workload, data, name: str) -> FastPath:
    data_changes, train_changes = VARIANTS[name]
    arm = FastPath(workload, dataclasses.replace(data, **data_changes))
    arm.train = arm.train.model_copy(update=train_changes)
    return arm


def add_arguments(parser) -> None:
    parser.add_argument("--workers", default="2,0",
                        help="comma-separated DataLoader worker counts of the baseline arms; the first is the "
                             "reference for the targets (default 2,0)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated, of " + ",".join(WORKLOADS))
    parser.add_argument("--images", type=int, default=None, help="training images per epoch for every model "
                                                                 "(default: per model, see SIZES)")
    parser.add_argument("--variants", default="", help="comma-separated extra arms of our path, of " + ",".join(VARIANTS))
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="leave out the reference implementation's loop")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the LeNet science check (it needs Fashion-MNIST)")


def baseline_label(workers: int) -> str:
    return f"baseline, {workers} workers"


def measure(name: str, args) -> dict:
    workload = WORKLOADS[name]
    data = workload.make_data(args.images or SIZES[name][1 if args.quick else 0], device=args.device)
    arms = {"ours": FastPath(workload, data)}
    arms |= {f"ours {v}": variant_arm(workload, data, v) for v in args.variant_names}
    arms |= {baseline_label(w): Baseline(workload, data, workers=w) for w in args.worker_counts}
    if args.reference:
        arms[REFERENCE] = ReferenceLoop(workload, data)
    for arm in arms.values():
        arm.warm_up()
    flops_per_image = step_flops(arms["ours"])[0] / common.BATCH
    repeats = 1 if args.quick else args.repeats or REPEATS[name]
    rates = common.interleave({label: arm.images_per_second for label, arm in arms.items()}, repeats)
    return {"name": name, "images": len(data.train), "repeats": repeats, "rates": rates, "flops": flops_per_image,
            "precision": "float32" if data.autocast is None else str(data.autocast).removeprefix("torch.")}


def accuracy_check(args) -> tuple[float, float, list[str]]:
    """Mean test accuracy of each path over SEEDS data orders (same initial weights and mask): ours and the
    DataLoader loop (the reference for the tolerance), and the reference implementation's loop unless
    --no-reference."""
    train_count, epochs, seeds, tolerance = CHECK["quick" if args.quick else "full"]
    milestones = (epochs - 1,)  # the last epoch at a tenth of the LR: end-of-training accuracy, less noisy
    workload = WORKLOADS["lenet300"]
    workers = args.worker_counts[0]
    data = workload.make_data(train_count, test_count=10_000, device=args.device)
    precision = "float32" if data.autocast is None else str(data.autocast).removeprefix("torch.")
    paths = {f"ours ({precision})": lambda: FastPath(workload, data),
             f"baseline ({workers} workers, float32)": lambda: Baseline(workload, data, workers=workers)}
    if args.reference:
        paths[f"{REFERENCE} (float32)"] = lambda: ReferenceLoop(workload, data)
    accs: dict[str, list[float]] = {label: [] for label in paths}
    zeroed: dict[str, bool] = {label: True for label in paths}
    for seed in range(seeds):
        for label, make in paths.items():
            arm = make()
            arm.train_epochs(epochs, seed=seed, milestones=milestones)
            accs[label].append(arm.test_accuracy())
            zeroed[label] &= common.pruned_fraction(arm.model, arm.mask) == 1.0
    mean = {k: float(np.mean(v)) for k, v in accs.items()}
    ours, *baselines = paths
    failures = []
    for baseline in baselines:
        if not abs(100 * (mean[ours] - mean[baseline])) < tolerance:
            failures.append(f"mean test accuracy {ours} {mean[ours]:.4f} vs {baseline} {mean[baseline]:.4f}: "
                            f"differ by more than {tolerance} points")
    if common.FASHION_STAND_IN and failures:  # 4,096 generated images, not Fashion-MNIST: no claim to check
        print(f"not checked (a smoke run on generated images): {'; '.join(failures)}")
        failures = []
    failures += [f"{label}: pruned weights are not all zero after training" for label, ok in zeroed.items() if not ok]
    print(f"\nScience check: LeNet-300-100 on {train_count:,} Fashion-MNIST training images, {epochs} epochs "
          f"(LR {workload.lr}, x{common.GAMMA} from epoch {milestones[0] + 1}), same initial weights and mask, "
          f"{seeds} data-order seed(s) per path, test on 10,000 images")
    rows = [[label, " ".join(f"{a:.4f}" for a in accs[label]), f"{mean[label]:.4f}",
             f"{np.std(accs[label], ddof=1) * 100:.2f}" if seeds > 1 else "-", "yes" if zeroed[label] else "NO"]
            for label in accs]
    print(table(["path", "test accuracy per seed", "mean", "sd (points)", "pruned weights at zero"], rows))
    print("difference of the means, ours minus each baseline: "
          + ", ".join(f"{100 * (mean[ours] - mean[b]):+.2f} points ({b})" for b in baselines) + f" (tolerance ±{tolerance})")
    return mean[ours], mean[baselines[0]], failures


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0], add_arguments)
    try:
        args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        args.worker_counts = []
    names = [n for n in args.models.split(",") if n]
    args.variant_names = [v for v in args.variants.split(",") if v]
    unknown = [n for n in names if n not in WORKLOADS] + [v for v in args.variant_names if v not in VARIANTS]
    if unknown or not args.worker_counts:
        print(f"unknown models or variants {unknown} (models: {', '.join(WORKLOADS)}; variants: {', '.join(VARIANTS)})"
              if unknown else f"--workers expects comma-separated integers, got {args.workers!r}", file=sys.stderr)
        return 2
    common.start(args, "Training-loop throughput: ours (train_round) vs DataLoader + PIL + torch.nn.utils.prune "
                       "and the reference implementation's loop")
    if not args.device.startswith("cuda") and keep_freed_memory():
        # as the product's process does on the CPU (prac.hardware.host_memory); process-wide, so the baselines get it too
        print("this process keeps freed host memory for reuse (prac.hardware.host_memory), as the product's does on the CPU")
    on_gpu = args.device.startswith("cuda")
    dataloader = baseline_label(args.worker_counts[0])
    print(f"batch {common.BATCH}, SGD momentum {common.MOMENTUM} wd {common.WEIGHT_DECAY}, {common.PRUNED:.0%} of the "
          f"prunable weights pruned, augmentation on; baseline DataLoader num_workers in {args.worker_counts}"
          f"{', pin_memory' if on_gpu else ''}; baselines in float32")
    results = [measure(name, args) for name in names]
    peaks = {p: common.compute_peak(args.quick, device=args.device, dtype=getattr(torch, p))
             for p in sorted({res["precision"] for res in results})}

    rows, failures, ratios, notes = [], [], [], []
    for res in results:
        name, rates, peak = res["name"], res["rates"], peaks[res["precision"]]
        ours = median(rates["ours"])
        checked = not args.quick and not on_gpu
        if not common.finite(*(median(r) for r in rates.values())):
            failures.append(f"{name}: a throughput is not finite")
        met_all, reachable_all = [], []
        for baseline, target in ((dataloader, TARGETS[name]), (REFERENCE, REFERENCE_TARGETS[name])):
            if target is None or baseline not in rates:
                continue
            base = median(rates[baseline])
            ratio = ours / base
            needed = target * base * res["flops"]  # FLOP/s that training at the target speed would take
            met, attainable = ratio >= target, needed <= peak.flops
            met_all.append(met)
            reachable_all.append(met or attainable)
            if checked and not met and attainable:
                failures.append(f"{name}: {ratio:.2f}x the {baseline} is below the {target}x target")
            if checked and not met and not attainable:
                notes.append(f"{name}: {target}x the {baseline} would take {needed / 1e9:,.0f} GFLOP/s of training "
                             f"({res['flops'] / 1e6:,.0f} MFLOP per image), above this machine's {peak.dtype} peak "
                             f"({peak.flops / 1e9:,.0f} GFLOP/s): the target is out of reach here")
            ratios.append(f"{name} {ratio:.2f}x {'DataLoader' if baseline == dataloader else 'reference'}")
        row = [WORKLOADS[name].label, f"{res['images']:,}", res["repeats"], res["precision"],
               f"{ours:,.0f} ({spread(rates['ours'])})"]
        for label in [label for label in rates if label != "ours"]:
            other = median(rates[label])
            row.append(f"{other:,.0f} ({ours / other:.2f}x)")
        targets = [f">= {t}x" for t in (TARGETS[name], REFERENCE_TARGETS[name]) if t is not None]
        row += [" and ".join(targets), ("yes" if all(met_all) else "no" if all(reachable_all) else "no (out of reach)")
                if checked else "not checked", f"{res['flops'] / 1e6:,.1f}", f"{ours * res['flops'] / 1e9:,.1f}"]
        rows.append(row)
    print()
    others = [label for label in results[0]["rates"] if label != "ours"]
    headers = ["model", "train images", "repeats", "ours precision", "ours img/s (range)"]
    headers += [f"{label} img/s (ours/it)" for label in others]
    print(table(headers + ["target (DataLoader, reference)", "met", "MFLOP/image (train step)", "ours GFLOP/s"], rows))
    for peak in peaks.values():
        print(f"peak on {args.device} ({args.threads} threads): {peak.describe()}")
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
