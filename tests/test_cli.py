"""The `prac-lth` command line, run as a user runs it: bad input is one line on stderr and exit code 2."""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

from prac.settings.presets import PRESETS
from prac.strategies.methods import METHODS
from tests.prefect_homes import migrated_prefect_home

SCRIPT = Path(sys.executable).with_name("prac-lth")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "prac_lth.cli"]
    # A fresh tracking store and Prefect home per call: nothing is written into the checkout.
    scratch = Path(tempfile.mkdtemp(prefix="prac-cli-"))
    atexit.register(shutil.rmtree, scratch, True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db",
           "PREFECT_HOME": str(migrated_prefect_home(scratch / "prefect")), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, cwd=cwd or scratch, env=env)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("prac-lth: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_presets_lists_every_preset_with_dataset_and_model():
    result = cli("presets")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    assert [row[0] for row in rows] == list(PRESETS)
    for row in rows:
        assert row[1] == PRESETS[row[0]]["data"]["dataset"]
        assert row[2] == PRESETS[row[0]]["model"]["name"]


def test_run_and_compare_help_list_every_method_in_one_line_each():
    for command in ("run", "compare"):
        result = cli(command, "--help")
        assert result.returncode == 0, result.stderr
        listed = result.stdout.split("methods (prac.strategies.methods):\n", 1)[1].splitlines()
        assert [line.split()[0] for line in listed] == list(METHODS)
        assert all(METHODS.get(line.split()[0]).summary in line for line in listed)


def test_python_dash_m_works_too():
    result = subprocess.run([sys.executable, "-m", "prac_lth.cli", "presets"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "digits-smoke" in result.stdout


def test_unknown_preset(tmp_path):
    line = assert_user_error(cli("run", "cifar10-resnet21", "--output-dir", str(tmp_path)), "cifar10-resnet21")
    assert "unknown preset" in line
    assert not any(tmp_path.iterdir()), "nothing may be written for a bad command"


def test_bad_set_key(tmp_path):
    assert_user_error(cli("run", "digits-smoke", "--output-dir", str(tmp_path), "--set", "train.epoch=3"),
                      "train.epoch")


def test_set_without_equals(tmp_path):
    assert_user_error(cli("run", "digits-smoke", "--output-dir", str(tmp_path), "--set", "epochs"), "key=value")


@pytest.mark.parametrize(
    "item, fragment",
    [("train.epochs=-1", "train.epochs"), ("epochs=5", "milestones"), ("method=foo", "method"),
     ("lr=abc", "train.lr"), ("evaluate_tickets=at:0.5,1.2", "runtime.evaluate_tickets: Value error, sparsity 1.2")],
)
def test_bad_set_value(tmp_path, item, fragment):
    assert_user_error(cli("run", "digits-smoke", "--output-dir", str(tmp_path), "--set", item), fragment)
    assert not any(tmp_path.iterdir())


def test_bad_method(tmp_path):
    assert_user_error(cli("run", "digits-smoke", "--method", "foo", "--output-dir", str(tmp_path)), "foo")


def test_bad_seed(tmp_path):
    assert_user_error(cli("run", "digits-smoke", "--seed", "zero", "--output-dir", str(tmp_path)), "zero")
    assert_user_error(cli("run", "digits-smoke", "--seed", "-1", "--output-dir", str(tmp_path)), "seed")
    assert_user_error(cli("compare", "digits-smoke", "--seeds", "0,-2", "--engine-only", "--output-dir", str(tmp_path)),
                      "seed")


@pytest.mark.parametrize("text, seeds", [
    ("0", [0]), ("0,1,2", [0, 1, 2]), ("0-15", list(range(16))), ("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]),
    ("5-5", [5]), (" 2 - 4 , 7 ", [2, 3, 4, 7]), ("0-2,", [0, 1, 2]),
])
def test_seeds_take_ranges(text, seeds):
    from prac_lth.cli import _int_list

    assert _int_list(text, "seeds") == seeds


@pytest.mark.parametrize("text, fragment", [
    ("3-1", "'3-1' runs backwards: write 1-3"), ("a-b", "got 'a-b'"), ("-", "got '-'"), ("0-", "got '0-'"),
    ("1-2-3", "got '1-2-3'"), ("0,x", "got 'x'"),
])
def test_bad_seed_ranges_are_one_line(text, fragment):
    from prac.errors import UserError
    from prac_lth.cli import _int_list

    with pytest.raises(UserError, match="--seeds") as raised:
        _int_list(text, "seeds")
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_a_backwards_seed_range_exits_2(tmp_path):  # before anything is built or written
    assert_user_error(cli("compare", "digits-smoke", "--seeds", "0-3,3-1", "--engine-only", "--output-dir",
                          str(tmp_path)), "--seeds", "runs backwards")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("where, message", [("/proc/nope", "cannot be created"), ("/proc/nope/deeper", "cannot be created")])
def test_an_output_directory_that_cannot_be_written(where, message):
    for command in (("run", "digits-smoke", "--engine-only"), ("run", "digits-smoke"),
                    ("compare", "digits-smoke", "--engine-only")):
        assert_user_error(cli(*command, "--output-dir", where), message)


def test_empty_seeds_or_methods(tmp_path):
    for flag in ("--seeds", "--methods"):
        assert_user_error(cli("compare", "digits-smoke", flag, ",", "--engine-only", "--output-dir", str(tmp_path)),
                          "at least one value")
    assert_user_error(cli("compare", "digits-smoke", "--parallel", "0", "--engine-only", "--output-dir", str(tmp_path)),
                      "--parallel must be at least 1")


def test_no_command_and_unknown_command():
    assert_user_error(cli())
    assert_user_error(cli("frobnicate"), "frobnicate")
    assert_user_error(cli("run"))  # no preset


def test_missing_data_dir(tmp_path):
    missing = tmp_path / "nonexistent"
    line = assert_user_error(
        cli("run", "cifar10-resnet20", "--data-dir", str(missing), "--output-dir", str(tmp_path / "out"),
            "--set", "runtime.device=cpu"),
        "cifar10",
        str(missing),
    )
    assert "does not exist" in line or "no " in line


def test_no_data_dir_for_a_dataset_that_needs_one(tmp_path):
    assert_user_error(
        cli("run", "cifar100-vgg16", "--output-dir", str(tmp_path / "out"), "--set", "runtime.device=cpu"),
        "cifar100",
        "--data-dir",
    )


def test_help_exits_zero():
    result = cli("run", "--help")
    assert result.returncode == 0
    for option in ("--method", "--seed", "--set", "--data-dir", "--output-dir"):
        assert option in result.stdout


def test_an_output_dir_that_looks_like_a_number_stays_a_path(tmp_path):
    # `--output-dir 2024` must not become the integer 2024 (and fail validation as "not a string").
    line = assert_user_error(cli("run", "digits-smoke", "--output-dir", "2024", "--set", "rounds=0", cwd=tmp_path),
                             "prune.rounds")
    assert "output_dir" not in line


def test_sigterm_mid_run_is_one_line_and_exit_143(tmp_path):
    """`kill` (or a job scheduler's stop) while the engine trains: one line, the shell's code for SIGTERM, no
    partial file (prac_lth/stops.py)."""
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([str(SCRIPT), "run", "digits-smoke", "--engine-only", "--output-dir", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("*/*/split.parquet")):  # prepared: round 0's training starts now (seconds of it)
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, stdout[-2000:], stderr[-2000:])
    assert stderr.splitlines() == ["prac-lth: terminated"], stderr
    assert not list(out.rglob("*.tmp"))


def test_a_signal_that_comes_out_as_a_library_error_is_still_a_stop():
    """A cancel's SIGTERM that lands inside torch.save reaches us as torch's own RuntimeError, raised while handling
    Prefect's TerminationSignal (seen on the stack: the cancelled run's MLflow run was marked FAILED, not KILLED)."""
    from prefect.exceptions import TerminationSignal

    from prac_lth.stops import run_status, stop_kind

    def torch_save_interrupted():
        try:
            raise TerminationSignal(signal=15)
        except TerminationSignal:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 161088 vs 160984")

    with pytest.raises(RuntimeError) as caught:
        torch_save_interrupted()
    assert stop_kind(caught.value) == "terminated" and run_status(caught.value) == "KILLED"
    try:
        raise RuntimeError("a real failure") from ValueError("its cause")
    except RuntimeError as failure:
        assert stop_kind(failure) is None and run_status(failure) == "FAILED"
    interrupted = RuntimeError("wrapped")
    interrupted.__context__ = KeyboardInterrupt()
    assert stop_kind(interrupted) == "interrupted"
