"""Benchmark 10b: a prac experiment with its ticket retrains beside the next rounds (runtime.retrain_alongside:
a second process, half the cores each) against in turn (each retrain before the next round, all the cores),
paired A/B in one run, the engine alone (`prac-lth run --engine-only`), fresh output folders each.

    .venv/bin/python bench/retrain_alongside.py [--preset fashion-lenet] [--rounds 3] [--limit 10000]
                                                [--repeats 2] [--quick]

Last line: the ratio in turn / alongside (median of the pairs; above 1: alongside is faster), and whether the
masks and tickets of the two ways are the same bytes (they are when both train with the same threads per
process; here in turn uses all the cores, so they may differ in the last bits). Fashion-MNIST is used where its
Debian package is installed, else digits."""
from __future__ import annotations

import argparse
import filecmp
import statistics
import sys
import tempfile
from pathlib import Path

from process_stats import run_measured
from quick_runs import QUICK_ROUNDS, set_args

CLI = str(Path(sys.executable).parent / "prac-lth")
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def run(args: argparse.Namespace, output: Path, alongside: bool) -> float:
    command = [CLI, "run", args.preset, "--engine-only", "--method", "prac", "--output-dir", str(output),
               "--set", f"prune.rounds={args.rounds}", "--set", "runtime.evaluate_tickets=all",
               "--set", f"runtime.retrain_alongside={str(alongside).lower()}", *set_args(args.short)]
    if args.preset.startswith("fashion"):
        command += ["--set", f"data.train_limit={args.limit}"]
    return run_measured(command).wall_s


def same_files(a: Path, b: Path, name: str) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob(name))
    return bool(files) and files == sorted(p.relative_to(b) for p in b.rglob(name)) and all(
        filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fashion-lenet" if FASHION.exists() else "digits")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=10_000, help="training images of a fashion preset")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="digits-smoke, 2 rounds of 1 epoch, one pair (a smoke run)")
    args = parser.parse_args()
    args.short = []
    if args.quick:
        # 2 rounds: round 0's ticket retrain then runs beside round 1; 1 epoch each is enough for a smoke run
        args.preset, args.rounds, args.repeats = "digits-smoke", 2, 1
        args.short = QUICK_ROUNDS
    print(f"# {args.preset} · prac · {args.rounds} rounds, every ticket retrained; engine alone")
    print("| pair | in turn (s) | alongside (s) | in turn / alongside | masks same | tickets same |")
    print("|------|-------------|---------------|---------------------|------------|--------------|")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.repeats):
            # Alternate the order so that neither way always runs on a warmer machine.
            order = (False, True) if pair % 2 == 0 else (True, False)
            walls, outputs = {}, {}
            for alongside in order:
                outputs[alongside] = Path(tmp) / f"pair{pair}-{'alongside' if alongside else 'in-turn'}"
                walls[alongside] = run(args, outputs[alongside], alongside)
            ratios.append(walls[False] / walls[True])
            masks, tickets = (same_files(outputs[False], outputs[True], name)
                              for name in ("mask.parquet", "ticket.json"))
            print(f"| {pair} | {walls[False]:.1f} | {walls[True]:.1f} | {ratios[-1]:.2f}x | {masks} | {tickets} |")
    print(f"in turn / alongside: {statistics.median(ratios):.2f}x (median of {len(ratios)} pairs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
