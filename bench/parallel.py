"""Benchmark 7: wall time of a comparison run one experiment after another against `--parallel N` experiments
at once (processes), paired A/B in one run, with the engine alone (`compare --engine-only`, no Prefect/MLflow:
what is timed is the experiments and the processes).

    .venv/bin/python bench/parallel.py [--preset digits-smoke] [--methods prac,lt] [--seeds 0,1] [--rounds 3]
                                       [--parallel 2] [--threads 1] [--repeats 2] [--quick]

Each run writes into a fresh output folder. Last line: the ratio sequential/parallel (median of the pairs;
above 1: running at once is faster). Exits non-zero if a run fails or the two ways' masks differ."""
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


def compare(args: argparse.Namespace, output: Path, parallel: int) -> float:
    command = [CLI, "compare", args.preset, "--engine-only", "--methods", args.methods, "--seeds", args.seeds,
               "--parallel", str(parallel), "--output-dir", str(output), "--set", f"prune.rounds={args.rounds}",
               "--set", f"runtime.threads={args.threads}", *set_args(args.short)]
    return run_measured(command).wall_s


def same_masks(a: Path, b: Path) -> bool:
    masks = sorted(p.relative_to(a) for p in a.rglob("mask.parquet"))
    return bool(masks) and masks == sorted(p.relative_to(b) for p in b.rglob("mask.parquet")) and all(
        filecmp.cmp(a / m, b / m, shallow=False) for m in masks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits-smoke")
    parser.add_argument("--methods", default="prac,lt")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each experiment")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one pair, seed 0, one round of 1 epoch (a smoke run)")
    args = parser.parse_args()
    args.short = []
    if args.quick:
        # a smoke run checks that the two ways run and agree: 2 experiments (2 at once), 1-epoch rounds are enough
        args.rounds, args.repeats, args.seeds = 1, 1, "0"
        args.short = QUICK_ROUNDS
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.repeats):
            # Alternate the order so that neither way always runs on a warmer machine.
            order = (1, args.parallel) if pair % 2 == 0 else (args.parallel, 1)
            walls, outputs = {}, {}
            for parallel in order:
                outputs[parallel] = Path(tmp) / f"pair{pair}-parallel{parallel}"
                walls[parallel] = compare(args, outputs[parallel], parallel)
            if not same_masks(outputs[1], outputs[args.parallel]):
                print("masks differ between the sequential and the parallel run", file=sys.stderr)
                return 1
            ratios.append(walls[1] / walls[args.parallel])
            print(f"pair {pair}: one after another {walls[1]:.1f} s, {args.parallel} at once "
                  f"{walls[args.parallel]:.1f} s, masks identical")
    print(f"{args.preset} {args.methods} seeds {args.seeds}, {args.rounds} rounds, {args.threads} thread(s) each: "
          f"sequential / {args.parallel} at once = {statistics.median(ratios):.2f}x (median of {len(ratios)} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
