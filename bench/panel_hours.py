"""Benchmark 10c: the paper's CIFAR-10/ResNet-20 panel in wall-hours on a pool of K GPUs, from a measured rate.

Every training of the panel (each seed's shared round 0, each method's rounds, prac's ticket retrains) is a job of
known length on one GPU, in the order its inputs allow, and K GPUs take the ready jobs, longest remaining chain
first (list scheduling). Two ways of cutting the work:

- experiments: each experiment is one flow run on one GPU (what the fleet runs: prac_lth/flows/fleet.py), the
  seed's round 0 first; a prac experiment retrains each ticket before its next round;
- retrains apart: as above, but each ticket retrain a job of its own that any free GPU takes as soon as its mask
  exists (the design's aim; on one GPU, runtime.retrain_alongside only shares the GPU: BENCHMARKS.md section 8).

    .venv/bin/python bench/panel_hours.py [--rate 44531] [--gpus 1,4,8] [--prac-fraction 1.0]

Every round's training is counted on all of D0 unless --prac-fraction says what share of D0 prac's rounds 1..15
train on (an upper bound by default). Evaluation, CEP passes and start-up are left out: training only."""
from __future__ import annotations

import argparse
import heapq
from dataclasses import dataclass, field

METHODS = ("prac", "lt", "random")  # the panel's arms
SEEDS, ROUNDS, EPOCHS, D0 = 3, 16, 182, 45_000


@dataclass
class Job:
    seconds: float
    after: list[str] = field(default_factory=list)  # jobs that must end first
    unit: str = ""  # jobs of one unit run on one GPU one after another (an experiment's flow run); "" = alone


def panel_jobs(full_s: float, prac_fraction: float, retrains_apart: bool) -> dict[str, Job]:
    """`full_s`: one training of the full schedule on all of D0."""
    jobs: dict[str, Job] = {}
    for seed in range(SEEDS):
        round0 = f"s{seed}/round0"
        jobs[round0] = Job(full_s)
        for method in METHODS:
            unit, before = f"s{seed}/{method}", round0
            for r in range(1, ROUNDS):
                share = prac_fraction if method == "prac" else 1.0
                if method == "prac":  # the ticket of mask r-1: all of D0, the full schedule
                    retrain = f"{unit}/retrain{r - 1}"
                    jobs[retrain] = Job(full_s, [before], "" if retrains_apart else unit)
                    if not retrains_apart:
                        before = retrain
                jobs[f"{unit}/round{r}"] = Job(full_s * share, [before], unit)
                before = f"{unit}/round{r}"
            # the last mask's ticket (lt and random: earlier tickets are their next rounds' trainings)
            jobs[f"{unit}/retrain{ROUNDS - 1}"] = Job(full_s, [before], "" if retrains_apart and method == "prac"
                                                      else unit)
    return jobs


def _chains(jobs: dict[str, Job]) -> dict[str, float]:
    """Each job's longest chain of work from its start to the end of the panel (its priority)."""
    after: dict[str, list[str]] = {name: [] for name in jobs}
    for name, job in jobs.items():
        for first in job.after:
            after[first].append(name)
    chain: dict[str, float] = {}

    def of(name: str) -> float:
        if name not in chain:
            chain[name] = jobs[name].seconds + max((of(n) for n in after[name]), default=0.0)
        return chain[name]

    for name in jobs:
        of(name)
    return chain


def wall_seconds(jobs: dict[str, Job], gpus: int) -> float:
    """List scheduling on `gpus` GPUs. A unit (an experiment's flow run) holds its GPU from its first job to its
    last, as a worker does; a job of no unit takes any free GPU."""
    chain = _chains(jobs)
    unit_left = {}
    for job in jobs.values():
        if job.unit:
            unit_left[job.unit] = unit_left.get(job.unit, 0) + 1
    done: set[str] = set()
    gpu_of_unit: dict[str, int] = {}
    free = list(range(gpus))
    running: list[tuple[float, str, int]] = []  # (end, job, gpu)
    held: dict[int, str] = {}  # gpu -> the unit holding it
    now, waiting = 0.0, set(jobs)
    while waiting or running:
        ready = sorted((n for n in waiting if all(a in done for a in jobs[n].after)), key=lambda n: -chain[n])
        for name in ready:
            unit = jobs[name].unit
            if unit and unit in gpu_of_unit:
                gpu = gpu_of_unit[unit]
                if any(g == gpu for _, _, g in running):
                    continue  # its GPU is busy with the unit's previous job
            elif free:
                gpu = free.pop(0)
                if unit:
                    gpu_of_unit[unit], held[gpu] = gpu, unit
            else:
                continue
            waiting.discard(name)
            heapq.heappush(running, (now + jobs[name].seconds, name, gpu))
        now, name, gpu = heapq.heappop(running)
        done.add(name)
        unit = jobs[name].unit
        if unit:
            unit_left[unit] -= 1
            if unit_left[unit] == 0:
                held.pop(gpu)
                free.append(gpu)
        else:
            free.append(gpu)
    return now


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=44_531.0,
                        help="images/s of one training on one GPU (BENCHMARKS.md section 8: one process, H100)")
    parser.add_argument("--gpus", default="1,4,8")
    parser.add_argument("--prac-fraction", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="accepted for the smoke runs: this one is quick anyway")
    args = parser.parse_args()
    full_s = EPOCHS * D0 / args.rate
    print(f"# The paper's CIFAR-10/ResNet-20 panel ({len(METHODS)} methods x {SEEDS} seeds x {ROUNDS} rounds x "
          f"{EPOCHS} epochs of {D0:,} images) at {args.rate:,.0f} img/s per GPU: one training {full_s:.0f} s; "
          f"prac's rounds on {args.prac_fraction:.0%} of D0")
    ways = {"experiments": panel_jobs(full_s, args.prac_fraction, False),
            "retrains apart": panel_jobs(full_s, args.prac_fraction, True)}
    work = {way: sum(job.seconds for job in jobs.values()) / 3600 for way, jobs in ways.items()}
    print(f"work: {work['experiments']:.1f} GPU-hours ({len(ways['experiments'])} trainings)")
    print("| GPUs | experiments (wall h) | retrains apart (wall h) | ratio |")
    print("|------|----------------------|-------------------------|-------|")
    walls = {}
    for gpus in (int(g) for g in args.gpus.split(",")):
        walls[gpus] = {way: wall_seconds(jobs, gpus) / 3600 for way, jobs in ways.items()}
        w = walls[gpus]
        print(f"| {gpus} | {w['experiments']:.2f} | {w['retrains apart']:.2f} | "
              f"{w['experiments'] / w['retrains apart']:.2f}x |")
    most, least = max(walls), min(walls)
    one = walls[least]["experiments"]
    print(f"{most} GPUs: {walls[most]['experiments']:.2f} h as experiments ({one / walls[most]['experiments']:.2f}x "
          f"{least} GPU), {walls[most]['retrains apart']:.2f} h with retrains apart "
          f"({one / walls[most]['retrains apart']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
