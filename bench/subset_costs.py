"""Benchmark 2: what training on a PrAC subset costs beyond the SGD steps themselves.

    .venv/bin/python bench/subset_costs.py [--quick] [--threads N] [--repeats N]

(a) Throughput (images/s) of train_round on a 35 % subset (RoundSpec(subset=...)) against the full set:
    equal within noise (|ratio - 1| <= 10 %), since a subset is indexing into the one device tensor.
(b) The forgetting record (CorrectnessRecord.record_batch, one argmax per batch into a buffer, and
    end_epoch, one compare and one scatter per epoch): <= 2 % of an epoch.
(c) Mask application (MaskEnforcer.zero_pruned_gradients every step; apply_to_weights at the start of the
    round and after each epoch): <= 3 %.
(b) and (c) are measured three ways. A/B: the loop timed with the piece and without it (its methods
replaced by no-ops), the two arms interleaved (one pair of arms per claim), share = median over repeats
of (t_with - t_without) / t_with, with its interquartile range: on 2 shared cores the epoch-to-epoch noise
of a fast loop (LeNet) is wider than these limits. In loop: the piece's calls timed inside the "with"
epochs themselves (perf_counter around each call) over those epochs' time: precise. Alone: the same calls
timed by themselves over the median epoch. A claim holds when its in-loop share is within the limit and
the A/B does not clearly exceed it (its lower quartile above the limit would).
Evaluation at the end of each epoch is replaced by a stub in every arm here, so an "epoch" is the
training loop alone (which makes the shares larger, not smaller). Exit status 1 when (full run only) a
claim does not hold.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

import numpy as np
import torch

import common
import prac.training.round_run
from common import DEFAULT_MODELS, WORKLOADS, FastPath, finish, median, replaced, table, timed
from prac.training.forgetting import CorrectnessRecord
from prac.training.masks import MaskEnforcer

SUBSET_FRACTION = 0.35
SIZES = {"lenet300": (30_000, 512), "conv4": (2_048, 256), "resnet20": (3_072, 256)}
REPEATS = {"lenet300": 15, "conv4": 5, "resnet20": 5}
SUBSET_TOLERANCE = 0.10
PIECES = {  # claim -> (class, the methods the training loop calls, limit as a share of an epoch)
    "record": (CorrectnessRecord, ("record_batch", "end_epoch"), 0.02),
    "mask": (MaskEnforcer, ("zero_pruned_gradients", "apply_to_weights"), 0.03),
}


def no_op(*args, **kwargs) -> None:
    return None


@contextlib.contextmanager
def methods(owner: type, names: tuple[str, ...], make: Callable[[Callable], Callable]) -> Iterator[None]:
    """Replace each of `owner`'s methods `names` by make(original) for the duration."""
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(replaced(owner, name, make(getattr(owner, name))))
        yield


def timing_into(total: list[float]) -> Callable[[Callable], Callable]:
    def make(method: Callable) -> Callable:
        def timed_call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                total[0] += time.perf_counter() - start
        return timed_call
    return make


def iqr(values) -> str:
    low, high = np.percentile(values, [25, 75])
    return f"{low:+.1%} to {high:+.1%}"


def isolated_costs(ours: FastPath) -> dict[str, float]:
    """Seconds per epoch of the pieces alone: the calls a one-epoch train_round makes, on tensors of its shapes."""
    data, steps = ours.data, -(-ours.images // common.BATCH)
    record = CorrectnessRecord(1, ours.images, "cpu")
    generator = torch.Generator().manual_seed(0)
    starts = list(range(0, ours.images, common.BATCH))
    order = torch.randperm(ours.images, generator=generator)
    labels = torch.randint(0, data.num_classes, (ours.images,), generator=generator)
    logits = [torch.randn(min(common.BATCH, ours.images - s), data.num_classes, generator=generator) for s in starts]

    visits = [torch.arange(s, s + len(batch_logits)) for s, batch_logits in zip(starts, logits)]

    def record_epoch() -> None:
        for batch_visits, batch_logits in zip(visits, logits):
            record.record_batch(batch_visits, batch_logits)
        record.end_epoch(0, order, labels)

    enforcer = MaskEnforcer(ours.model, ours.mask)
    for p in ours.model.parameters():
        p.grad = torch.zeros_like(p)

    def mask_epoch() -> None:
        enforcer.apply_to_weights()
        for _ in range(steps):
            enforcer.zero_pruned_gradients()
        enforcer.apply_to_weights()

    costs = {"record": timed(record_epoch), "mask": timed(mask_epoch)}
    for p in ours.model.parameters():
        p.grad = None
    return costs


def measure(name: str, args) -> dict:
    workload = WORKLOADS[name]
    data = workload.make_data(SIZES[name][1 if args.quick else 0])
    subset = np.sort(np.random.default_rng(0).choice(len(data.train), round(SUBSET_FRACTION * len(data.train)),
                                                     replace=False))
    ours = FastPath(workload, data)
    repeats = 1 if args.quick else args.repeats or REPEATS[name]
    res: dict = {"name": name, "images": ours.images, "subset_images": len(subset), "repeats": repeats}

    def arms(piece: str) -> dict[str, Callable[[int], float]]:
        owner, names, _ = PIECES[piece]
        in_loop = res.setdefault(f"{piece}_in_loop", [])

        def with_piece(r: int) -> float:
            spent = [0.0]
            with methods(owner, names, timing_into(spent)):
                seconds = ours.train_epochs(1, seed=r)
            in_loop.append(spent[0] / seconds)
            return seconds

        def without(r: int) -> float:
            with methods(owner, names, lambda method: no_op):
                return ours.train_epochs(1, seed=r)
        return {"with": with_piece, "without": without}

    with replaced(prac.training.round_run, "accuracy", lambda *a, **k: 0.0):  # the training loop alone
        ours.warm_up()
        # One interleaved pair per claim, so each comparison has its own neighbours in time.
        a = common.interleave({"full": lambda r: ours.train_epochs(1, seed=r),
                               "subset": lambda r: ours.train_epochs(1, seed=r, subset=subset)}, repeats)
        timings = {piece: common.interleave(arms(piece), repeats) for piece in PIECES}
    full_rate = [ours.images / s for s in a["full"]]
    subset_rate = [len(subset) / s for s in a["subset"]]
    epoch = median(a["full"] + [s for t in timings.values() for s in t["with"]])
    res.update(full_rate=median(full_rate), subset_rate=median(subset_rate),
               subset_ratio=median(subset_rate) / median(full_rate), epoch_s=epoch)
    for piece, t in timings.items():
        res[f"{piece}_pairs"] = common.paired_fractions(t["with"], t["without"])
    for piece, seconds in isolated_costs(ours).items():
        res[f"{piece}_alone"] = seconds / epoch
    return res


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    common.start(args, "Training on a subset; costs of the forgetting record and of mask application")
    print(f"batch {common.BATCH}, {common.PRUNED:.0%} of the prunable weights pruned, augmentation on, "
          f"subset {SUBSET_FRACTION:.0%} of the training images (sorted random positions)")
    results = [measure(name, args) for name in DEFAULT_MODELS]

    failures: list[str] = []
    rows_a, rows_bc = [], []
    verdict = (lambda ok: ("yes" if ok else "no") if not args.quick else "not checked")
    for res in results:
        name, label, ratio = res["name"], WORKLOADS[res["name"]].label, res["subset_ratio"]
        ok_a = abs(ratio - 1) <= SUBSET_TOLERANCE
        if not args.quick and not ok_a:
            failures.append(f"{name}: subset throughput {ratio:.3f}x of the full set's "
                            f"(tolerance ±{SUBSET_TOLERANCE:.0%})")
        rows_a.append([label, res["repeats"], f"{res['images']:,}", f"{res['full_rate']:,.0f}",
                       f"{res['subset_images']:,}", f"{res['subset_rate']:,.0f}", f"{ratio:.3f}x", verdict(ok_a)])
        row = [label, f"{res['epoch_s']:.2f}"]
        for piece, (_, _, limit) in PIECES.items():
            in_loop, pairs = median(res[f"{piece}_in_loop"]), res[f"{piece}_pairs"]
            ab, ab_low = median(pairs), float(np.percentile(pairs, 25))
            ok = in_loop <= limit and ab_low <= limit
            res[piece] = in_loop
            if not common.finite(in_loop, ab):
                failures.append(f"{name}: {piece}: a figure is not finite")
            if not args.quick and not ok:
                failures.append(f"{name}: {piece} costs {in_loop:.2%} of an epoch in the loop, A/B {ab:+.2%} "
                                f"(lower quartile {ab_low:+.2%}); limit {limit:.0%}")
            row += [f"{in_loop:.2%}", f"{ab:+.2%} ({iqr(pairs)})", f"{res[f'{piece}_alone']:.2%}", verdict(ok)]
        rows_bc.append(row)
    print("\n(a) Throughput on a 35 % subset against the full set (medians)")
    print(table(["model", "repeats", "full images", "full img/s", "subset images", "subset img/s",
                 "subset / full", f"within ±{SUBSET_TOLERANCE:.0%}"], rows_a))
    print("\n(b) forgetting record, (c) mask application, as shares of an epoch: in loop (median over the "
          "'with' epochs), A/B (median of paired (with - without) / with, interquartile range), alone")
    headers = ["model", "epoch s"]
    for piece, (_, _, limit) in PIECES.items():
        tag = "(b) record" if piece == "record" else "(c) mask"
        headers += [f"{tag} in loop", f"{tag} A/B (IQR)", f"{tag} alone", f"<= {limit:.0%}"]
    print(table(headers, rows_bc))
    summary = "; ".join(f"{r['name']} subset/full {r['subset_ratio']:.3f}x record {r['record']:.2%} "
                        f"mask {r['mask']:.2%}" for r in results)
    return finish(failures, f"subset costs ({args.threads} threads; record and mask: in-loop shares of an epoch): "
                            f"{summary}")


if __name__ == "__main__":
    sys.exit(main())
