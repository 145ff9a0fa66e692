"""Benchmark 5: wall time of one experiment through the Prefect flow with MLflow logging, against the
engine alone (`--engine-only`, the same steps in-process), paired A/B in one run; and the cached re-run.

    .venv/bin/python bench/orchestration.py [--preset fashion-lenet] [--rounds 3] [--repeats 2] [--quick]

Last line: the overhead ratio flow/engine (median of the pairs). Exits non-zero if a run fails or the
flow's masks differ from the engine's (orchestration must not change the science)."""
from __future__ import annotations

import argparse
import filecmp
import statistics
import sys
import tempfile
from pathlib import Path

from process_stats import run_measured

CLI = str(Path(sys.executable).parent / "prac-lth")


def run(preset: str, overrides: list[str], workdir: Path, engine: bool) -> float:
    command = [CLI, "run", preset, "--output-dir", str(workdir / "out"), *sum((["--set", o] for o in overrides), [])]
    env = {"PREFECT_HOME": str(workdir / "prefect"), "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return run_measured(command + (["--engine-only"] if engine else []), env=env, cwd=str(workdir)).wall_s


def masks(workdir: Path) -> list[Path]:
    return sorted((workdir / "out").glob("*/*/round_*/mask.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="fashion-lenet")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="digits-smoke, 2 rounds, 1 pair")
    args = parser.parse_args()
    preset, rounds, repeats = ("digits-smoke", 2, 1) if args.quick else (args.preset, args.rounds, args.repeats)
    overrides = [f"prune.rounds={rounds}"]
    flow_s, engine_s, cached_s = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            flow_s.append(run(preset, overrides, Path(a), engine=False))
            engine_s.append(run(preset, overrides, Path(b), engine=True))
            cached_s.append(run(preset, overrides, Path(a), engine=False))
            same = [filecmp.cmp(x, y, shallow=False) for x, y in zip(masks(Path(a)), masks(Path(b)))]
            if len(same) != rounds or not all(same):
                print(f"masks differ between the flow and the engine: {same}")
                return 1
    ratios = [f / e for f, e in zip(flow_s, engine_s)]
    print(f"{preset}, {rounds} rounds, {repeats} pair(s)")
    print(f"engine alone      median {statistics.median(engine_s):7.1f} s   {engine_s}")
    print(f"flow + MLflow     median {statistics.median(flow_s):7.1f} s   {flow_s}")
    print(f"cached re-run     median {statistics.median(cached_s):7.1f} s   {cached_s}")
    print(f"overhead (flow - engine) median {statistics.median(f - e for f, e in zip(flow_s, engine_s)):.1f} s")
    print(f"flow/engine wall ratio {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
