"""Resident memory over the course of one engine run, to tell growth from a transient: RSS sampled every
0.2 s while `run_experiment` runs in-process, printed as the min and max of each window.

    .venv/bin/python bench/rss_trace.py [--preset fashion-conv] [--rounds 12] [--train-limit 3000] [--quick]

Rising window minima across rounds would be memory kept per round; a step that then stays flat is a
high-water mark (allocator, cached buffers). Last line: the max of the second half over the max of the
first half (1.00x: no growth after mid-run)."""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time

from memory import SHORT_ROUNDS
from prac.experiment import run_experiment
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="fashion-conv")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--train-limit", type=int, default=3000)
    parser.add_argument("--window", type=float, default=15.0, help="seconds per printed window")
    parser.add_argument("--quick", action="store_true", help="digits-smoke, 2 rounds, 2 s windows")
    args = parser.parse_args()
    preset, rounds, window = ("digits-smoke", 2, 2.0) if args.quick else (args.preset, args.rounds, args.window)
    samples: list[tuple[float, float]] = []
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            samples.append((time.monotonic(), rss_mib()))
            time.sleep(0.2)

    with tempfile.TemporaryDirectory() as out:
        overrides = [f"prune.rounds={rounds}", *SHORT_ROUNDS, f"runtime.output_dir={out}"]
        if preset.startswith("fashion"):
            overrides.append(f"data.train_limit={args.train_limit}")
        config = apply_overrides(preset_config(preset), overrides)
        sampler = threading.Thread(target=sample, daemon=True)
        start = time.monotonic()
        sampler.start()
        run_experiment(config)
        running.clear()
        sampler.join()
    elapsed = samples[-1][0] - start
    print(f"{preset}, {rounds} rounds, {elapsed:.0f} s; RSS (MiB) per {window:g} s window")
    for k in range(int(elapsed // window) + 1):
        values = [r for t, r in samples if start + k * window <= t < start + (k + 1) * window]
        if values:
            print(f"{k * window:6.0f} s  min {min(values):7.1f}  max {max(values):7.1f}")
    half = start + elapsed / 2
    first, second = [r for t, r in samples if t < half], [r for t, r in samples if t >= half]
    if not first or not second:
        print("too few samples")
        return 1
    print(f"peak RSS, second half of the run over the first: {max(second) / max(first):.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
