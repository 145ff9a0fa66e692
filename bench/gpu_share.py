"""Benchmark 8: experiments sharing one device. N processes each train a model with our path (the product's
defaults on the device: on a GPU bfloat16 and the step captured as a CUDA graph) on their own data, started
together; the aggregate is every process's images over the time from the first start to the last end.

    .venv/bin/python bench/gpu_share.py [--device cuda] [--processes 1,2,4] [--model resnet20]
        [--images 45000] [--epochs 2] [--quick]

Each process builds its data and model and warms up (the CUDA context, cuDNN's choices) before a common
start signal, so the figures are training alone. The first count is the baseline of the ratios (one
experiment at a time, the same run, the same machine). From the best aggregate it states what the paper's
CIFAR-10/ResNet-20 panel would take on this device: 3 methods x 3 seeds x 16 rounds x 182 epochs of 45,000
images (an upper bound: PrAC's rounds train on subsets), training only.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import common

PANEL_IMAGES = 3 * 3 * 16 * 182 * 45_000  # the paper's CIFAR-10/ResNet-20 panel, every round on all of D0


def worker(args: argparse.Namespace) -> None:
    """One process: warm up, say ready, wait for the start signal, train, write what it measured."""
    torch.set_num_threads(args.threads)
    workload = common.WORKLOADS[args.model]
    arm = common.FastPath(workload, workload.make_data(args.images, device=args.device))
    arm.warm_up()
    arm.train_epochs(1, seed=999)  # a full epoch too: the captured step's sizes, the allocator's pools
    common.synchronize(args.device)
    Path(args.ready).touch()
    while not Path(args.go).exists():
        time.sleep(0.005)
    start = time.time()
    arm.train_epochs(args.epochs, seed=0)
    common.synchronize(args.device)
    end = time.time()
    Path(args.result).write_text(json.dumps({"start": start, "end": end, "images": args.epochs * args.images}))


def run_together(count: int, args: argparse.Namespace, folder: Path) -> dict:
    """Start `count` worker processes, release them together, return the aggregate figures."""
    folder.mkdir()
    go = folder / "go"
    procs = []
    for i in range(count):
        command = [sys.executable, __file__, "--worker", "--ready", str(folder / f"ready{i}"), "--go", str(go),
                   "--result", str(folder / f"result{i}.json"), "--device", args.device, "--model", args.model,
                   "--images", str(args.images), "--epochs", str(args.epochs), "--threads", str(args.threads)]
        procs.append(subprocess.Popen(command))
    while not all((folder / f"ready{i}").exists() for i in range(count)):
        if any(p.poll() not in (None, 0) for p in procs):
            raise SystemExit(f"a worker of {count} failed before its start")
        time.sleep(0.05)
    go.touch()
    if any(p.wait() != 0 for p in procs):
        raise SystemExit(f"a worker of {count} failed")
    results = [json.loads((folder / f"result{i}.json").read_text()) for i in range(count)]
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    epoch_seconds = [(r["end"] - r["start"]) / args.epochs for r in results]
    return {"processes": count, "aggregate": sum(r["images"] for r in results) / wall,
            "epoch_seconds": epoch_seconds, "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--model", default="resnet20", choices=list(common.WORKLOADS))
    parser.add_argument("--images", type=int, default=45_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 128 images (one batch), 1 epoch, 1 and 2 processes")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("ready", "go", "result"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.quick:
        args.images, args.epochs, args.processes = 128, 1, "1,2"
    counts = [int(c) for c in args.processes.split(",")]
    print(f"# Experiments sharing one device{' (--quick: smoke run, figures not meaningful)' if args.quick else ''}")
    print(f"torch {torch.__version__}; device {common.describe_device(args.device)}; {args.model}, "
          f"{args.images:,} images an epoch, {args.epochs} timed epochs per process, batch {common.BATCH}, "
          f"{args.threads} CPU thread(s) per process")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_together(c, args, Path(tmp) / f"n{c}") for c in counts]
    base = runs[0]["aggregate"]
    rows = [[r["processes"], f"{r['aggregate']:,.0f}", f"{r['aggregate'] / base:.2f}x",
             " ".join(f"{s:.2f}" for s in r["epoch_seconds"]), f"{r['wall']:.1f}"] for r in runs]
    print(common.table(["processes", "aggregate img/s", f"vs {counts[0]}", "epoch s per process", "wall s"], rows))
    best = max(runs, key=lambda r: r["aggregate"])
    hours = PANEL_IMAGES / best["aggregate"] / 3600
    print(f"{best['processes']} at once: {best['aggregate']:,.0f} img/s, {best['aggregate'] / base:.2f}x {counts[0]} at "
          f"once; the paper's CIFAR-10/{args.model} panel ({PANEL_IMAGES / 1e9:.2f} billion training images) at that "
          f"rate: {hours:.1f} device-hours of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
