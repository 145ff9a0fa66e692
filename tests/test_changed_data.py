"""Data that changed under the same name (prac/data/digest.py): CIFAR-10 files replaced under --data-dir give new
results, with one line saying why, instead of the old files' results; the same files give the same digest."""
from __future__ import annotations

import json
from types import SimpleNamespace

from prac.data.digest import data_digest, loaded_data_digest
from prac.data.registry import load_dataset
from prac.layout.run_paths import finished_rows
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac_lth.cli import main
from prac_lth.tasks import context as task_context
from prac_lth.tasks.caching import stage_cache_key
from tests import datafiles

# CIFAR-10 in its real format, 100 training images: Conv-2, 2 short epochs, one round, no ticket retrained.
SETTINGS = ["model.name=conv2", "train.batch_size=16", "train.epochs=2", "train.milestones=[]", "prune.rewind_epoch=0",
            "prune.rounds=1", "runtime.evaluate_tickets=none", "runtime.device=cpu"]


def _run(data, out, capsys) -> str:
    sets = [arg for item in SETTINGS for arg in ("--set", item)]
    assert main(["run", "cifar10-resnet20", "--engine-only", "--data-dir", str(data), "--output-dir", str(out),
                 *sets]) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err


def _config(data, out):
    return apply_overrides(preset_config("cifar10-resnet20"),
                           [*SETTINGS, f"runtime.data_dir={data}", f"runtime.output_dir={out}"])


def test_the_digest_follows_the_content_not_the_name(tmp_path):
    datafiles.write_cifar10(tmp_path / "a", per_batch=4, seed=0)
    datafiles.write_cifar10(tmp_path / "b", per_batch=4, seed=0)
    datafiles.write_cifar10(tmp_path / "c", per_batch=4, seed=1)
    a, b, c = (data_digest(load_dataset("cifar10", tmp_path / name)) for name in "abc")
    assert a == b != c and len(a) == 16


def test_replaced_files_give_new_results_with_one_line_saying_why(tmp_path, capsys):
    data, out = tmp_path / "cifar", tmp_path / "out"
    datafiles.write_cifar10(data, per_batch=20, seed=0)
    first = _run(data, out, capsys)
    assert "data changed" not in first
    config = _config(data, out)
    (run,) = [p for p in (out / "cifar10-resnet20").iterdir() if not p.name.startswith("round0-")]
    (round0,) = [p for p in (out / "cifar10-resnet20").iterdir() if p.name.startswith("round0-")]
    old = json.loads((run / "config.json").read_text())["data_digest"]
    assert json.loads((round0 / "round0.json").read_text())["data_digest"] == old
    assert finished_rows(config, lambda: old) is not None
    old_mask = (run / "round_00" / "mask.parquet").read_bytes()

    assert "reusing the shared dense round" in _run(data, out, capsys)  # same files: round 0 found again

    datafiles.write_cifar10(data, per_batch=20, seed=7)  # other images under the same names
    loaded_data_digest.cache_clear()
    again = _run(data, out, capsys)
    new = json.loads((run / "config.json").read_text())["data_digest"]
    assert new != old
    line = (f"the cifar10 data changed since {run} ran (content digest {old}, now {new}): its results are "
            f"computed again")
    assert line in again.splitlines(), again
    assert "reusing the shared dense round" not in again  # round 0 trained on the new images
    assert json.loads((round0 / "round0.json").read_text())["data_digest"] == new
    assert (run / "round_00" / "mask.parquet").read_bytes() != old_mask
    assert finished_rows(config, lambda: old) is None and finished_rows(config, lambda: new) is not None


def test_the_stage_keys_follow_the_data(tmp_path):
    data = tmp_path / "cifar"
    config = _config(data, tmp_path / "out")
    flow = SimpleNamespace(task=SimpleNamespace(name="train-round"))
    keys = []
    for seed in (0, 0, 3):
        datafiles.write_cifar10(data, per_batch=20, seed=seed)
        task_context._current.clear()  # a new process (or flow run) loads the data afresh
        keys.append([stage_cache_key(flow, {"config": config, "round_index": r, "inputs": {}}) for r in (0, 1)])
    assert keys[0] == keys[1]  # the same content: the same keys
    assert all(new != old for new, old in zip(keys[2], keys[0]))  # other content: round 0 and on computed again
    task_context._current.clear()
