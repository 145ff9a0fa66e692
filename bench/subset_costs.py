"""Benchmark 2: what training on a PrAC subset costs beyond the SGD steps themselves.

    .venv/bin/python bench/subset_costs.py [--quick] [--threads N] [--repeats N]

(a) Throughput (images/s) of train_round on a 35 % subset (RoundSpec(subset=...)) against the full set:
    equal within noise (|ratio - 1| <= 10 %), since a subset is indexing into the one device tensor.
(b) The forgetting record (CorrectnessRecord.record_batch: argmax, compare, one scatter per batch):
    <= 2 % of an epoch.
(c) Mask application (MaskEnforcer.zero_pruned_gradients + apply_to_weights, every step): <= 3 %.
(b) and (c) time the loop with the piece and without it (the method replaced by a no-op), per repeat,
arms interleaved; the share is the median over repeats of (t_with - t_without) / t_with. Beside it, the
piece timed alone (the same calls, as many as an epoch makes) over the median epoch, as a cross-check.
Evaluation at the end of each epoch is replaced by a stub in every arm here, so an "epoch" is the
training loop alone (which makes the shares larger, not smaller). Exit status 1 when (full run only) a
claim does not hold.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

import common
import prac.train
from common import DEFAULT_MODELS, WORKLOADS, FastPath, finish, median, replaced, table, timed
from prac.forgetting import CorrectnessRecord
from prac.masks import MaskEnforcer

SUBSET_FRACTION = 0.35
SIZES = {"lenet300": (30_000, 512), "conv4": (2_048, 256), "resnet20": (3_072, 256)}
REPEATS = {"lenet300": 15, "conv4": 5, "resnet20": 5}
SUBSET_TOLERANCE = 0.10
LIMITS = {"record": 0.02, "mask": 0.03}


def no_op(*args, **kwargs) -> None:
    return None


def iqr(values) -> str:
    low, _, high = np.percentile(values, [25, 50, 75]) if len(values) > 1 else (values[0], 0, values[0])
    return f"{low:+.1%} to {high:+.1%}"


def isolated_costs(ours: FastPath) -> dict[str, float]:
    """Seconds per epoch of the pieces alone: the calls an epoch makes, on tensors of the epoch's shapes."""
    data, steps = ours.data, -(-ours.images // common.BATCH)
    record = CorrectnessRecord(1, ours.images, "cpu")
    generator = torch.Generator().manual_seed(0)
    positions = [torch.randperm(ours.images, generator=generator)[:common.BATCH] for _ in range(steps)]
    logits = torch.randn(common.BATCH, data.num_classes, generator=generator)
    labels = torch.randint(0, data.num_classes, (common.BATCH,), generator=generator)
    record_time = timed(lambda: [record.record_batch(0, p, logits, labels) for p in positions])

    enforcer = MaskEnforcer(ours.model, ours.mask)
    for p in ours.model.parameters():
        p.grad = torch.zeros_like(p)
    def mask_steps() -> None:
        for _ in range(steps):
            enforcer.zero_pruned_gradients()
            enforcer.apply_to_weights()
    mask_time = timed(mask_steps)
    for p in ours.model.parameters():
        p.grad = None
    return {"record": record_time, "mask": mask_time}


def measure(name: str, args) -> dict:
    workload = WORKLOADS[name]
    data = workload.make_data(SIZES[name][1 if args.quick else 0])
    subset = np.sort(np.random.default_rng(0).choice(len(data.train), round(SUBSET_FRACTION * len(data.train)),
                                                     replace=False))
    ours = FastPath(workload, data)
    subset_images = len(subset)

    def full(r: int) -> float:
        return ours.train_epochs(1, seed=r)

    def on_subset(r: int) -> float:
        return ours.train_epochs(1, seed=r, subset=subset)

    def without_record(r: int) -> float:
        with replaced(CorrectnessRecord, "record_batch", no_op):
            return ours.train_epochs(1, seed=r)

    def without_mask(r: int) -> float:
        with replaced(MaskEnforcer, "zero_pruned_gradients", no_op), replaced(MaskEnforcer, "apply_to_weights", no_op):
            return ours.train_epochs(1, seed=r)

    repeats = 1 if args.quick else args.repeats or REPEATS[name]
    with replaced(prac.train, "accuracy", lambda *a, **k: 0.0):  # the training loop alone
        ours.warm_up()
        seconds = common.interleave({"full": full, "subset": on_subset, "without record": without_record,
                                     "without mask": without_mask}, repeats)
    isolated = isolated_costs(ours)
    full_rate = [ours.images / s for s in seconds["full"]]
    subset_rate = [subset_images / s for s in seconds["subset"]]
    epoch = median(seconds["full"])
    return {
        "name": name, "images": ours.images, "subset_images": subset_images, "repeats": repeats,
        "full_rate": full_rate, "subset_rate": subset_rate,
        "subset_ratio": median(subset_rate) / median(full_rate),
        "record_pairs": common.paired_fractions(seconds["full"], seconds["without record"]),
        "mask_pairs": common.paired_fractions(seconds["full"], seconds["without mask"]),
        "record_alone": isolated["record"] / epoch, "mask_alone": isolated["mask"] / epoch,
        "epoch_s": epoch,
    }


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    common.start(args, "Training on a subset; costs of the forgetting record and of mask application")
    print(f"batch {common.BATCH}, {common.PRUNED:.0%} of the prunable weights pruned, augmentation on, "
          f"subset {SUBSET_FRACTION:.0%} of the training images (sorted random positions)")
    results = [measure(name, args) for name in DEFAULT_MODELS]
    for res in results:
        res["record"], res["mask"] = median(res["record_pairs"]), median(res["mask_pairs"])

    failures: list[str] = []
    rows_a, rows_bc = [], []
    for res in results:
        name, ratio = res["name"], res["subset_ratio"]
        ok_a = abs(ratio - 1) <= SUBSET_TOLERANCE
        ok_b, ok_c = res["record"] <= LIMITS["record"], res["mask"] <= LIMITS["mask"]
        if not common.finite(ratio, res["record"], res["mask"]):
            failures.append(f"{name}: a figure is not finite")
        if not args.quick:
            failures += [f"{name}: {msg}" for ok, msg in (
                (ok_a, f"subset throughput {ratio:.3f}x of the full set's (tolerance ±{SUBSET_TOLERANCE:.0%})"),
                (ok_b, f"forgetting record costs {res['record']:.2%} of an epoch (limit {LIMITS['record']:.0%})"),
                (ok_c, f"mask application costs {res['mask']:.2%} of an epoch (limit {LIMITS['mask']:.0%})"))
                if not ok]
        verdict = (lambda ok: ("yes" if ok else "no") if not args.quick else "not checked")
        label = WORKLOADS[name].label
        rows_a.append([label, res["repeats"], f"{res['images']:,}", f"{median(res['full_rate']):,.0f}",
                       f"{res['subset_images']:,}", f"{median(res['subset_rate']):,.0f}", f"{ratio:.3f}x",
                       verdict(ok_a)])
        rows_bc.append([label, f"{res['epoch_s']:.2f}",
                        f"{res['record']:+.2%} ({iqr(res['record_pairs'])})", f"{res['record_alone']:.2%}", verdict(ok_b),
                        f"{res['mask']:+.2%} ({iqr(res['mask_pairs'])})", f"{res['mask_alone']:.2%}", verdict(ok_c)])
    print("\n(a) Throughput on a 35 % subset against the full set (medians)")
    print(table(["model", "repeats", "full images", "full img/s", "subset images", "subset img/s",
                 "subset / full", f"within ±{SUBSET_TOLERANCE:.0%}"], rows_a))
    print("\n(b) forgetting record, (c) mask application: share of an epoch (with - without) / with, median "
          "of paired repeats (interquartile range: the noise); 'alone': the same calls timed by themselves "
          "over the median epoch")
    print(table(["model", "epoch s", "(b) record (IQR)", "(b) alone", f"<= {LIMITS['record']:.0%}",
                 "(c) mask (IQR)", "(c) alone", f"<= {LIMITS['mask']:.0%}"], rows_bc))
    summary = "; ".join(f"{r['name']} subset/full {r['subset_ratio']:.3f}x record {r['record']:+.2%} "
                        f"mask {r['mask']:+.2%}" for r in results)
    return finish(failures, f"subset costs ({args.threads} threads): {summary}")


if __name__ == "__main__":
    sys.exit(main())
