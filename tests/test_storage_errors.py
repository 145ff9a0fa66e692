"""Writes that fail for want of room or permission, simulated (ENOSPC raised where the writer writes): one line
naming the file, its folder and the free space, exit 2, no partial file, and the same command resumes. A real full
disk (a tmpfs) is tests/test_faults.py's d., run where mounting is allowed."""
from __future__ import annotations

import errno
import os
import sqlite3

import pytest
import sqlalchemy.exc
import torch

from prac.artifacts import atomic_write, read_mask, read_prac_set, save_torch
from prac.artifacts.storage import free_space, storage_cause, storage_errors_in_one_line
from prac.errors import StorageError
from prac_lth.cli import main

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
ARGS = ["run", "digits-smoke", "--engine-only", "--set", "prune.rounds=2", "--set", "runtime.evaluate_tickets=none"]


def _torch_style_failure() -> RuntimeError:
    """What torch.save raises when the file object it writes to fails: its own RuntimeError, the OSError as context."""
    try:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError:
        try:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
        except RuntimeError as error:
            return error


def _sqlalchemy_failure() -> sqlalchemy.exc.OperationalError:
    """What MLflow's SQLite store raises on a full disk."""
    return sqlalchemy.exc.OperationalError("INSERT INTO metrics ...", {}, sqlite3.OperationalError(
        "database or disk is full"))


@pytest.mark.parametrize("exc, found", [
    (ENOSPC, errno.ENOSPC),
    (OSError(errno.EROFS, "Read-only file system"), errno.EROFS),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), errno.EDQUOT),
    (_torch_style_failure(), errno.ENOSPC),
    (_sqlalchemy_failure(), errno.ENOSPC),
    (OSError(errno.ENOENT, "No such file or directory"), None),  # not the storage kind: the writer's own error
    (RuntimeError("unexpected pos 704 vs 598"), None),
    (ValueError("disk is full"), None),
])
def test_the_storage_cause_is_found_behind_each_writers_error(exc, found):
    cause = storage_cause(exc)
    assert (cause.errno if cause is not None else None) == found


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    path = tmp_path / "runs" / "mask.parquet"
    path.parent.mkdir()
    path.write_bytes(b"the old mask")
    with pytest.raises(StorageError) as info:
        with atomic_write(path) as tmp:
            tmp.write_bytes(b"half a ne")
            raise ENOSPC
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write mask.parquet in {path.parent}: no space left on device (")
    assert "free there when it failed); free some space and run the same command again (it resumes)" in message
    assert path.read_bytes() == b"the old mask"
    assert sorted(p.name for p in path.parent.iterdir()) == ["mask.parquet"]


def test_errors_that_are_not_storage_ones_pass_through_unchanged(tmp_path):
    with pytest.raises(KeyError):
        with atomic_write(tmp_path / "a.json"):
            raise KeyError("a bug stays a bug")
    with pytest.raises(ValueError):
        with storage_errors_in_one_line():
            raise ValueError("so does this")


def test_a_full_mlflow_store_is_one_line():
    with pytest.raises(StorageError) as info:
        with storage_errors_in_one_line():
            raise _sqlalchemy_failure()
    assert str(info.value) == ("a write failed: no space left on device; free some space and run the same command "
                               "again (it resumes)")


def test_free_space_reads_the_nearest_existing_folder(tmp_path):
    text = free_space(tmp_path / "not" / "yet" / "made")
    number, unit = text.split()
    assert float(number) >= 0 and unit in {"B", "kB", "MB", "GB"}


def test_a_full_disk_mid_run_is_one_line_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    saves = {"n": 0}
    real_save = torch.save

    def save_onto_a_full_disk(obj, file, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] < 2:  # the first checkpoint fits
            return real_save(obj, file, *args, **kwargs)
        file.write(b"PK\x03\x04 a part of a checkpoint")
        raise _torch_style_failure()

    out = tmp_path / "out"
    monkeypatch.setattr(torch, "save", save_onto_a_full_disk)
    assert main([*ARGS, "--output-dir", str(out)]) == 2
    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("prac-lth: error: cannot write ") and "no space left on device" in lines[0]
    assert str(out / "digits-smoke") in lines[0]
    assert not list(out.rglob("*.tmp")), "a partial file was left"
    for path in out.rglob("*.ckpt"):  # what has a final name is whole
        torch.load(path, weights_only=True)

    monkeypatch.setattr(torch, "save", real_save)
    assert main([*ARGS, "--output-dir", str(out)]) == 0
    assert main([*ARGS, "--output-dir", str(tmp_path / "uninterrupted")]) == 0
    capsys.readouterr()
    (run,) = [p for p in (out / "digits-smoke").iterdir() if not p.name.startswith("round0-")]
    reference = tmp_path / "uninterrupted" / "digits-smoke" / run.name
    for name, read in (("mask.parquet", read_mask), ("prac_set.parquet", read_prac_set)):
        for r in range(2):
            resumed, fresh = run / f"round_{r:02d}" / name, reference / f"round_{r:02d}" / name
            read(resumed, expected_fingerprint=run.name)
            assert resumed.read_bytes() == fresh.read_bytes(), resumed


def test_save_torch_still_writes_what_torch_load_reads(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "step": 3}
    save_torch(tmp_path / "a.pt", state)
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 3
