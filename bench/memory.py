"""Benchmark 4: peak RSS of `prac-lth run` (engine) per offline preset, its growth with the number of
rounds (none expected: masks and PrAC sets go to disk) and with dataset size (linear: one copy).

    .venv/bin/python bench/memory.py [--repeats N] [--presets a,b] [--quick]

Exits non-zero when memory grows with rounds by more than 5 % or per image by more than 4x the raw
image bytes. Last line: the growth ratio from the fewest to the most rounds."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from process_stats import run_measured
from quick_runs import QUICK_ROUNDS, set_args

CLI = str(Path(sys.executable).parent / "prac-lth")
FASHION_IMAGE_BYTES = 28 * 28  # uint8
# Conv-4 trains ~400 images/s on 2 cores: 3,000 images keep its 22 runs to minutes (growth with dataset
# size is measured apart, on fashion-lenet).
TRAIN_LIMITS = {"fashion-conv": 3_000}
# Short rounds (2 epochs, no ticket retrains): memory per round, not training length. Shared with rss_trace.py.
SHORT_ROUNDS = ["runtime.evaluate_tickets=none", "train.epochs=2", "train.milestones=[]", "prune.rewind_epoch=1"]


def peak_mib(preset: str, rounds: int, extra: list[str], repeats: int, short: list[str] = SHORT_ROUNDS) -> float:
    """Median over `repeats` runs: one run's peak varies by up to ~7 % (a transient, not a trend)."""
    peaks = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            overrides = [f"prune.rounds={rounds}", *short]
            command = [CLI, "run", preset, "--engine-only", "--output-dir", out,
                       *set_args(overrides), *extra]
            peaks.append(run_measured(command, env={"OMP_NUM_THREADS": "2"}).peak_rss_mib)
    return statistics.median(peaks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="digits-smoke only, 1 and 2 rounds of 1 epoch")
    parser.add_argument("--repeats", type=int, default=1, help="runs per figure, median reported")
    parser.add_argument("--presets", default=None, help="comma-separated presets (default: the four offline ones)")
    args = parser.parse_args()
    presets = ["digits-smoke"] if args.quick else ["digits-smoke", "digits", "fashion-lenet", "fashion-conv"]
    if args.presets:
        presets = args.presets.split(",")
    rounds = [1, 2] if args.quick else [1, 3, 6, 12]
    print(f"{'preset':16s} " + " ".join(f"{f'{r} rounds':>12s}" for r in rounds) + "   growth")
    worst = 1.0
    for preset in presets:
        extra = ["--set", f"data.train_limit={TRAIN_LIMITS[preset]}"] if preset in TRAIN_LIMITS else []
        # a smoke run: 1-epoch rounds (its figures mean nothing)
        short = [*SHORT_ROUNDS, *QUICK_ROUNDS] if args.quick else SHORT_ROUNDS
        peaks = [peak_mib(preset, r, extra, args.repeats, short) for r in rounds]
        growth = peaks[-1] / peaks[0]
        worst = max(worst, growth)
        print(f"{preset:16s} " + " ".join(f"{p:10.1f} MiB" for p in peaks) + f"   {growth:.3f}x")
    failed = worst > 1.05
    if not args.quick:
        sizes = [10_000, 30_000, 60_000]
        peaks = [peak_mib("fashion-lenet", 1, ["--set", f"data.train_limit={n}"], args.repeats) for n in sizes]
        slope = (peaks[-1] - peaks[0]) * 2**20 / (sizes[-1] - sizes[0])
        print("fashion-lenet by train images: " + ", ".join(f"{n}: {p:.1f} MiB" for n, p in zip(sizes, peaks)))
        print(f"slope {slope:.0f} bytes per train image (raw image: {FASHION_IMAGE_BYTES} bytes)")
        failed |= slope > 4 * FASHION_IMAGE_BYTES
    print(f"peak RSS growth from {rounds[0]} to {rounds[-1]} rounds: {worst:.3f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
