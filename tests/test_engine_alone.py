"""The engine runs where Prefect and MLflow are not installed (a GPU machine with its own torch, docs/howto/gpu.md
"Without internet"): `prac-lth run --engine-only` and the device test suite import neither. Checked in a
subprocess in which importing either fails."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Importing a module whose sys.modules entry is None raises ImportError: as if it were not installed.
WITHOUT = "import sys; sys.modules.update(prefect=None, mlflow=None); "


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT + code], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_engine_only_run_needs_neither_prefect_nor_mlflow(tmp_path):
    proc = run_python("from prac_lth.cli import main; "
                      "sys.exit(main(['run', 'digits-smoke', '--engine-only', '--set', 'prune.rounds=1', "
                      f"'--output-dir', {str(tmp_path / 'runs')!r}]))", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "round 0: sparsity 0.189" in proc.stdout  # digits-smoke's conv 10 %, linear 20 %, output 10 %
    assert list((tmp_path / "runs" / "digits-smoke").glob("*/round_00/mask.parquet"))


def test_the_device_test_suite_collects_without_prefect_or_mlflow(tmp_path):
    # -o addopts: in this process, as bench/gpu_check.sh runs it (no pytest-xdist workers, which would import afresh)
    proc = run_python(f"import pytest; sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', "
                      f"'-o', 'addopts=-ra', {str(ROOT / 'tests' / 'device')!r}]))", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test_every_method_runs_end_to_end" in proc.stdout
