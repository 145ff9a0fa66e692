"""Benchmark 10a: one comparison over a work pool of 1 worker and of 2 workers (the loopback stack of
prac_lth/deployments/stack.py: PostgreSQL, MLflow and Prefect servers, process workers of one torch thread each),
`prac-lth compare PRESET --pool NAME` as a user types it, paired A/B in one run, alternating which goes first.

    .venv/bin/python bench/fleet.py [--preset digits-smoke] [--methods prac,lt] [--seeds 0,1] [--rounds 3]
                                    [--repeats 2] [--quick]

Each run pins a code version of its own (runtime.code_version), so nothing of an earlier run is reused: fresh
flow runs, stages and rounds 0. Needs PostgreSQL's binaries (Debian's `postgresql`). `--stack FOLDER`: a stack that
is up already, 2 of its workers used (the test of the stack runs the smoke run so). Last line: the ratio
1 worker / 2 workers (median of the pairs; above 1: the second worker helps), and whether the masks of the two
are the same bytes (checked in every pair; exit 1 if not)."""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from prac_lth.deployments import processes, stack as stack_module  # noqa: E402

CLI = str(Path(sys.executable).parent / "prac-lth")


def compare(args: argparse.Namespace, stack: stack_module.Stack) -> float:
    command = [CLI, "compare", args.preset, "--pool", stack.pool, "--methods", args.methods, "--seeds", args.seeds,
               "--output-dir", str(stack.folder / "runs"), "--set", f"prune.rounds={args.rounds}",
               "--set", f"runtime.code_version={secrets.token_hex(8)}", *(f"--set={item}" for item in args.sets)]
    started = time.perf_counter()
    done = subprocess.run(command, env=stack.env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compare failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def masks(runs: Path) -> dict[str, bytes]:
    return {str(p.relative_to(runs)): p.read_bytes() for p in sorted(runs.rglob("mask.parquet"))}


def set_workers(stack: stack_module.Stack, count: int, settle: bool = True) -> None:
    """The first `count` of the stack's workers poll the pool; the others are stopped. `settle`: give a worker
    started now the time to poll the pool (not needed when no comparison follows)."""
    workers = sorted(name for name in stack.pids if "-worker-" in name)
    running = stack.running()
    for index, name in enumerate(workers):
        if index >= count and name in running:
            processes.stop(stack.pids[name])
        elif index < count and name not in running:
            stack.start(name, stack_module.worker_command(stack.pool, name), stack.worker_env(stack.folder / "runs"))
            if settle:
                time.sleep(5)  # it polls the pool


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits-smoke")
    parser.add_argument("--methods", default="prac,lt")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="one pair, one experiment, 1 round, no ticket retrained (a smoke run)")
    parser.add_argument("--stack", type=Path, help="a stack already up (2 workers) to use, instead of its own")
    args = parser.parse_args()
    args.sets = []
    if args.quick:
        args.methods, args.seeds, args.rounds, args.repeats = "prac", "0", 1, 1
        args.sets = ["runtime.evaluate_tickets=none"]  # the masks compared are those of training and pruning
    os.environ.update(OMP_NUM_THREADS="1", PREFECT_WORKER_QUERY_SECONDS="2")  # the workers inherit them
    folder = Path(tempfile.mkdtemp(prefix="prac-fleet-"))
    folder.chmod(0o755)  # PostgreSQL runs as `postgres` under root
    own = args.stack is None
    print(f"# {args.preset}: methods {args.methods} x seeds {args.seeds}, {args.rounds} rounds, over a pool of 1 and "
          f"of 2 process workers (one torch thread each), compare --pool from the CLI")
    print("| pair | 1 worker (s) | 2 workers (s) | 1 / 2 | masks same |")
    print("|------|--------------|---------------|-------|------------|")
    ratios, differ = [], False
    try:
        stack = stack_module.up(folder / "stack", workers=2) if own else stack_module.Stack.load(args.stack)
        for pair in range(args.repeats):
            walls, found = {}, {}
            for count in (1, 2) if pair % 2 == 0 else (2, 1):
                set_workers(stack, count)
                walls[count] = compare(args, stack)
                found[count] = masks(stack.folder / "runs")  # the next run rewrites them (its own code version)
            ratios.append(walls[1] / walls[2])
            same = bool(found[1]) and found[1] == found[2]
            differ |= not same
            print(f"| {pair} | {walls[1]:.1f} | {walls[2]:.1f} | {ratios[-1]:.2f}x | {same} |")
        set_workers(stack, len([name for name in stack.pids if "-worker-" in name]), settle=False)  # as found
    finally:
        if own:
            stack_module.down(folder / "stack")
        shutil.rmtree(folder, ignore_errors=True)
    print(f"1 worker / 2 workers: {statistics.median(ratios):.2f}x (median of {len(ratios)} pairs)")
    if differ:
        print("the masks of 1 and 2 workers differ", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
