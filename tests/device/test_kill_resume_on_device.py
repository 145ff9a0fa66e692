"""A run killed with SIGKILL in the middle of a round on the device resumes from the round's last epoch
checkpoint when started again (`prac-lth run --engine-only`, as a user would); on the CPU its files are
byte-identical to an uninterrupted run's."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from device_runs import SHORT

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600


def command(device: str, data_dir: Path, output_dir: Path) -> list[str]:
    sets = [item for override in [*SHORT, "prune.rounds=1", f"runtime.device={device}"] for item in ("--set", override)]
    return [sys.executable, "-m", "prac_lth.cli", "run", "cifar10-resnet20", "--engine-only", "--verbose",
            "--method", "prac", "--data-dir", str(data_dir), "--output-dir", str(output_dir), *sets]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def run_to_end(device: str, data_dir: Path, output_dir: Path) -> str:
    proc = subprocess.run(command(device, data_dir, output_dir), capture_output=True, text=True, timeout=TIMEOUT_S,
                          cwd=ROOT, env=environment())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def files_of(output_dir: Path) -> dict[str, bytes]:
    run = next((output_dir / "cifar10-resnet20").glob("[0-9a-f]*"))
    return {name: (run / "round_00" / name).read_bytes() for name in ("mask.parquet", "prac_set.parquet")}


def test_a_run_killed_mid_round_resumes_from_its_last_epoch(device, cifar_dir, tmp_path):
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(command(device, cifar_dir, killed_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=environment(), start_new_session=True)
    watchdog = threading.Timer(TIMEOUT_S, proc.kill)
    watchdog.start()
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("round 0: epoch 3/"):
                os.killpg(proc.pid, signal.SIGKILL)  # no cleanup at all, like a lost machine
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    checkpoints = list(killed_dir.glob("cifar10-resnet20/round0-*/train.ckpt"))
    assert checkpoints, "round 0's epoch checkpoint should be there after the kill"

    output = run_to_end(device, cifar_dir, killed_dir)
    resumed = re.search(r"round 0: resumed from .*train\.ckpt after epoch (\d+)/8", output)
    assert resumed and 3 <= int(resumed.group(1)) < 8, output[-3000:]
    assert "round 0: epoch 1/8" not in output  # the finished epochs were not trained again
    assert re.search(r"^round 0: sparsity 0\.200", output, re.MULTILINE)
    assert not checkpoints[0].exists()  # removed once the round's result file was written
    if device == "cpu":  # bit-identical to a run that was never killed (GPU kernels are not deterministic)
        run_to_end(device, cifar_dir, tmp_path / "reference")
        assert files_of(killed_dir) == files_of(tmp_path / "reference")
