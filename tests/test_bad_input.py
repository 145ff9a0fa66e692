"""Bad input, one case each: the CLI ends with exactly one line on stderr (`prac-lth: error: ...`) and exit
code 2, never a traceback; a deployment's flow run with bad parameters fails with a one-line message naming
the problem; the Python API (prac.imp.ticket.load_ticket) raises a one-line UserError naming the file. And no
file of an earlier experiment changes: one small finished experiment is built once, every file's bytes and
mtime recorded, and checked after every case (the bad commands point --output-dir at its folder)."""
from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import datafiles  # tests/ is on sys.path (pytest rootdir-less import)
from prac.artifacts import read_prac_set, write_mask, write_prac_set
from prac.artifacts.prac_set_io import PracSet
from prac.errors import UserError
from prac.training.masks import prunable_parameters
from prac.models import build_model
from prac.imp.ticket import load_ticket
from prac_lth.cli import main
from test_cli import assert_user_error, cli

PRESET = "digits-smoke"
# The earlier experiment: one round, no ticket retrained (seconds on a CPU).
EARLIER = ["--set", "prune.rounds=1", "--set", "runtime.evaluate_tickets=none"]


# --------------------------------------------------------------------------------------------------
# The earlier experiment, its snapshot, and the check after every case


def snapshot(root: Path) -> dict[str, object]:
    """Every folder and file under `root`: a file by its bytes' sha256 and its mtime."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            if p.is_file() else "folder" for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A working directory and environment of the module's own: whatever a wrongly accepted case might
    write (a tracking store, ./prac-runs) lands here, never in the checkout."""
    root = tmp_path_factory.mktemp("bad-input")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        mp.setenv("PRAC_OUTPUT_DIR", str(root / "default-output"))
        mp.setenv("PREFECT_HOME", str(root / "prefect-home"))
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        mp.delenv("PRAC_DATA_DIR", raising=False)
        yield root


@pytest.fixture(scope="module")
def earlier(scratch):
    """(output dir, run folder) of a finished experiment."""
    out = scratch / "earlier"
    assert main(["run", PRESET, "--engine-only", *EARLIER, "--output-dir", str(out)]) == 0
    (run,) = [p for p in (out / PRESET).iterdir() if not p.name.startswith("round0-")]
    assert (run / "rounds.json").is_file() and (run / "round_00" / "prac_set.parquet").is_file()
    return out, run


@pytest.fixture(scope="module")
def before(earlier):
    return {"files": snapshot(earlier[0])}


@pytest.fixture(autouse=True)
def earlier_experiment_unchanged(earlier, before):
    yield
    now, then = snapshot(earlier[0]), before["files"]
    before["files"] = now  # a failure is this case's alone, not every later one's
    changed = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
    assert not changed, f"a bad-input case changed or added files of the earlier experiment: {changed[:10]}"


def refused(capsys, *argv: str, fragments: tuple[str, ...] = ()) -> str:
    """Run the CLI in-process: exit code 2, exactly one non-empty line on stderr, no traceback."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2, (code, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("prac-lth: error: ") and lines[0][len("prac-lth: error: "):].strip()
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --------------------------------------------------------------------------------------------------
# Configuration: --set keys and values


SET_CASES = {
    # ill-typed or unknown
    "string-for-int": ("train.epochs=abc", "train.epochs"),
    "list-for-float": ("lr=[0.1,0.2]", "train.lr"),
    "fraction-for-int": ("batch_size=2.5", "train.batch_size"),
    "unknown-nested-key": ("train.nonexistent=1", "train.nonexistent"),
    "key-below-a-leaf": ("prune.rate.value=0.5", "prune.rate.value"),
    "section-as-key": ("train={}", "'train'"),
    "empty-key": ("=3", "key=value"),
    "null-for-required-int": ("epochs=null", "train.epochs"),
    "null-for-bool": ("augment=null", "data.augment"),
    "unknown-choice": ("runtime.device=tpu", "runtime.device"),
    "unknown-method-via-set": ("method=foo", "method"),
    "unknown-model": ("model.name=resnet99", "model.name"),
    "width-0": ("model.width=0", "model.width"),
    "unknown-dataset": ("data.dataset=imagenet", "imagenet"),
    # ρ, the prune rate, must be in (0, 1)
    "rate-0": ("prune.rate=0", "prune.rate"),
    "rate-1": ("prune.rate=1", "prune.rate"),
    "rate-negative": ("prune.rate=-0.2", "prune.rate"),
    "rate-above-1": ("prune.rate=1.5", "prune.rate"),
    "type-rate-1": ("prune.conv_rate=1", "prune.conv_rate"),
    # a removed setting says what replaced it
    "prune-linear-removed": ("prune_linear=true", "prune.prune_linear was removed"),
    "prune-linear-removed-by-path": ("prune.prune_linear=false", "prune.linear_rate and prune.output_rate"),
    # schedules
    "epochs-0": ("train.epochs=0", "train.epochs"),
    "epochs-negative": ("train.epochs=-3", "train.epochs"),
    "rounds-0": ("prune.rounds=0", "prune.rounds"),
    "batch-size-0": ("train.batch_size=0", "train.batch_size"),
    "milestone-beyond-epochs": ("milestones=[9]", "milestones"),
    "milestones-unsorted": ("milestones=[6,3]", "milestones"),
    "milestone-0": ("milestones=[0,6]", "milestones"),
    "warmup-not-below-epochs": ("warmup_epochs=8", "warmup_epochs"),
    "rewind-beyond-epochs": ("rewind_epoch=9", "rewind_epoch"),
    "early-stop-window-0": ("early_stop_window=0", "prac.early_stop_window"),
    # data split
    "val-fraction-0": ("data.val_fraction=0", "data.val_fraction"),
    "val-fraction-1": ("data.val_fraction=1", "data.val_fraction"),
    "val-fraction-negative": ("data.val_fraction=-0.1", "data.val_fraction"),
    "train-limit-tiny": ("train_limit=5", "data.train_limit"),
    # bounds from the data and the model (prac/imp/bounds.py): what no run can complete, with the limit
    "rounds-beyond-the-model": ("prune.rounds=100000", "at most 83"),
    "batch-larger-than-d0": ("train.batch_size=5000", "at most 1293"),
    "val-split-fewer-than-classes": ("data.val_fraction=0.001", "fewer than the 10 classes: at least 0.007"),
    "split-seed-negative": ("split_seed=-1", "data.split_seed"),
    # numbers JSON allows and no setting means
    "lr-infinite": ("lr=Infinity", "train.lr"),
    "lr-nan": ("lr=NaN", "train.lr"),
    "weight-decay-overflow": ("weight_decay=1e999", "train.weight_decay"),
    # runtime
    "threads-0": ("runtime.threads=0", "runtime.threads"),
    "output-dir-empty": ("runtime.output_dir=", "runtime.output_dir"),
}


@pytest.mark.parametrize("item, fragment", SET_CASES.values(), ids=SET_CASES.keys())
def test_a_bad_set_is_refused(capsys, earlier, item, fragment):
    out, _ = earlier
    refused(capsys, "run", PRESET, "--engine-only", *EARLIER, "--output-dir", str(out), "--set", item,
            fragments=(fragment,))


def test_a_bad_set_is_refused_before_the_flow_too(capsys, earlier):
    # without --engine-only: refused before Prefect or MLflow is touched
    out, _ = earlier
    refused(capsys, "run", PRESET, *EARLIER, "--output-dir", str(out), "--set", "prune.rate=1.5",
            fragments=("prune.rate",))
    refused(capsys, "compare", PRESET, *EARLIER, "--output-dir", str(out), "--set", "epochs=0",
            fragments=("train.epochs",))


# --------------------------------------------------------------------------------------------------
# Command-line arguments


ARG_CASES = {
    "seed-not-an-int": (["run", PRESET, "--seed", "x"], "invalid int value: 'x'"),
    "seed-negative": (["run", PRESET, "--seed", "-1"], "seed"),
    "method-unknown": (["run", PRESET, "--method", "foo"], "unknown method 'foo' (known: prac, lt,"),
    "option-unknown": (["run", PRESET, "--frobnicate"], "--frobnicate"),
    "preset-unknown": (["run", "digits-smok"], "unknown preset 'digits-smok'"),
    "seeds-not-ints": (["compare", PRESET, "--seeds", "a,b"], "--seeds expects comma-separated integers"),
    "seeds-fraction": (["compare", PRESET, "--seeds", "1.5"], "--seeds"),
    "seeds-negative": (["compare", PRESET, "--seeds", "0,-2"], "seed"),
    "seeds-twice": (["compare", PRESET, "--seeds", "0,0"], "twice"),
    "methods-twice": (["compare", PRESET, "--methods", "prac,lt,prac"], "twice"),
    "methods-unknown": (["compare", PRESET, "--methods", "prac,foo"], "method"),
    "seeds-empty": (["compare", PRESET, "--seeds", ","], "at least one value"),
    "parallel-0": (["compare", PRESET, "--parallel", "0"], "--parallel must be at least 1"),
    "parallel-negative": (["compare", PRESET, "--parallel", "-1"], "--parallel must be at least 1"),
    "parallel-not-an-int": (["compare", PRESET, "--parallel", "two"], "invalid int value: 'two'"),
    "pool-with-engine-only": (["compare", PRESET, "--pool", "gpu"], "--pool runs the experiments as Prefect flow runs"),
    "margin-negative": (["compare", PRESET, "--margin", "-0.5"], "margin must be a number of accuracy points"),
    "margin-100": (["compare", PRESET, "--margin", "100"], "in [0, 100), got 100"),
    "margin-nan": (["compare", PRESET, "--margin", "nan"], "margin"),
    "margin-not-a-number": (["compare", PRESET, "--margin", "half"], "invalid float value: 'half'"),
}


@pytest.mark.parametrize("argv, fragment", ARG_CASES.values(), ids=ARG_CASES.keys())
def test_a_bad_argument_is_refused(capsys, earlier, argv, fragment):
    out, _ = earlier
    refused(capsys, *argv, "--engine-only", *EARLIER, "--output-dir", str(out), fragments=(fragment,))


def _file(scratch: Path, name: str) -> Path:
    path = scratch / name
    path.write_text("a file, not a folder\n")
    return path


@pytest.mark.parametrize("where, fragment", [
    ("file", "cannot be created"), ("under-a-file", "cannot be created"), ("/proc/nope", "cannot be created"),
], ids=["is-a-file", "under-a-file", "unwritable"])
def test_an_output_directory_that_cannot_be_written(capsys, scratch, where, fragment):
    path = {"file": lambda: _file(scratch, "output-file"),
            "under-a-file": lambda: _file(scratch, "output-parent") / "runs"}.get(where, lambda: Path(where))()
    refused(capsys, "run", PRESET, "--engine-only", *EARLIER, "--output-dir", str(path), fragments=(fragment,))


# --------------------------------------------------------------------------------------------------
# Data: missing, empty, not a folder, corrupt files in the real formats


def _cifar10(root: Path) -> Path:
    datafiles.write_cifar10(root)
    return root / "cifar-10-batches-py"


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _bad_cifar(kind: str, root: Path) -> Path:
    folder = _cifar10(root)
    batch = folder / "data_batch_2"
    if kind == "truncated":
        _truncated(batch)
    elif kind == "not-a-pickle":
        batch.write_bytes(b"this is not a pickle\n" * 10)
    elif kind == "wrong-keys":
        with open(batch, "wb") as f:
            pickle.dump({"images": np.zeros((3, 3072), np.uint8), "targets": [0, 1, 2]}, f, protocol=2)
    elif kind == "not-a-dict":
        with open(batch, "wb") as f:
            pickle.dump([1, 2, 3], f, protocol=2)
    elif kind == "wrong-shape":
        with open(batch, "wb") as f:
            pickle.dump({"data": np.zeros((3, 100), np.uint8), "labels": [0, 1, 2]}, f, protocol=2)
    return root


def _bad_cifar100(root: Path) -> Path:
    datafiles.write_cifar100(root)
    with open(root / "cifar-100-python" / "train", "wb") as f:  # coarse labels only
        pickle.dump({"data": np.zeros((3, 3072), np.uint8), "coarse_labels": [0, 1, 2]}, f, protocol=2)
    return root


def _bad_fashion(kind: str, root: Path) -> Path:
    datafiles.write_fashion_mnist(root)
    images = root / "train-images-idx3-ubyte.gz"
    if kind == "wrong-magic":
        with gzip.open(images, "rb") as f:
            data = bytearray(f.read())
        data[2] = 0x0D  # float data, not unsigned bytes
        with gzip.open(images, "wb") as f:
            f.write(bytes(data))
    elif kind == "truncated-gz":
        _truncated(images)
    elif kind == "short-data":
        with gzip.open(images, "rb") as f:
            data = f.read()
        with gzip.open(images, "wb") as f:
            f.write(data[:-100])
    return root


def _tiny(kind: str, root: Path) -> Path:
    base = root / "tiny-imagenet-200"
    if kind == "empty-tree":
        (base / "train").mkdir(parents=True)
        (base / "val" / "images").mkdir(parents=True)
        (base / "wnids.txt").write_text("")
        (base / "val" / "val_annotations.txt").write_text("")
    elif kind == "no-images":
        datafiles.write_tiny_imagenet(root)
        for jpeg in (base / "train").rglob("*.JPEG"):
            jpeg.unlink()
    return root


DATA_CASES = {
    "cifar10-missing": ("cifar10-resnet20", lambda d: d / "nowhere", ("cifar10", "does not exist")),
    "cifar10-empty": ("cifar10-resnet20", lambda d: d, ("cifar10", "no cifar-10-batches-py/")),
    "cifar10-a-file": ("cifar10-resnet20", lambda d: _file(d, "cifar.tar"), ("cifar10", "not a folder")),
    "cifar10-truncated": ("cifar10-resnet20", lambda d: _bad_cifar("truncated", d), ("data_batch_2", "cannot read")),
    "cifar10-not-a-pickle": ("cifar10-resnet20", lambda d: _bad_cifar("not-a-pickle", d),
                             ("data_batch_2", "cannot read")),
    "cifar10-wrong-keys": ("cifar10-resnet20", lambda d: _bad_cifar("wrong-keys", d), ("data_batch_2", "'data'")),
    "cifar10-not-a-dict": ("cifar10-resnet20", lambda d: _bad_cifar("not-a-dict", d), ("data_batch_2",)),
    "cifar10-wrong-shape": ("cifar10-resnet20", lambda d: _bad_cifar("wrong-shape", d), ("data_batch_2", "(N, 3072)")),
    "cifar100-no-fine-labels": ("cifar100-resnet20", _bad_cifar100, ("cifar-100-python/train", "'fine_labels'")),
    "fashion-empty": ("fashion-lenet", lambda d: d, ("fashion-mnist", "no idx files")),
    "fashion-a-file": ("fashion-lenet", lambda d: _file(d, "fashion.gz"), ("fashion-mnist", "not a folder")),
    "fashion-wrong-magic": ("fashion-lenet", lambda d: _bad_fashion("wrong-magic", d),
                            ("train-images-idx3-ubyte.gz", "magic number")),
    "fashion-truncated-gz": ("fashion-lenet", lambda d: _bad_fashion("truncated-gz", d),
                             ("train-images-idx3-ubyte.gz", "cannot read")),
    "fashion-short-data": ("fashion-lenet", lambda d: _bad_fashion("short-data", d),
                           ("train-images-idx3-ubyte.gz", "header says")),
    "tiny-empty": ("tinyimagenet-resnet18", lambda d: d, ("tiny-imagenet", "wnids.txt")),
    "tiny-empty-tree": ("tinyimagenet-resnet18", lambda d: _tiny("empty-tree", d), ("wnids.txt", "no classes")),
    "tiny-no-images": ("tinyimagenet-resnet18", lambda d: _tiny("no-images", d), ("tiny-imagenet", "no .JPEG")),
}


@pytest.mark.parametrize("preset, make, fragments", DATA_CASES.values(), ids=DATA_CASES.keys())
def test_bad_data_is_refused(capsys, earlier, tmp_path, preset, make, fragments):
    out, _ = earlier
    data_dir = make(tmp_path)
    refused(capsys, "run", preset, "--engine-only", "--set", "runtime.device=cpu", "--data-dir", str(data_dir),
            "--output-dir", str(out), fragments=fragments)


# --------------------------------------------------------------------------------------------------
# transfer: another run's PrAC sets


def copy_run(earlier, dest: Path) -> Path:
    """A copy of the earlier experiment's folders (run and shared round 0) under dest; its run folder."""
    out, run = earlier
    for folder in (out / PRESET).iterdir():
        shutil.copytree(folder, dest / PRESET / folder.name)
    return dest / PRESET / run.name


def _rows_cut(run: Path) -> None:
    """prac_set.parquet rewritten, verifiable (its run's fingerprint, its own checksum), over half of D0."""
    path = run / "round_00" / "prac_set.parquet"
    stored = read_prac_set(path)
    half = PracSet(**{name: getattr(stored.prac_set, name)[::2].copy() for name in
                      ("index", "label", "trained", "forget_events", "in_cet", "in_cep", "in_prac")})
    write_prac_set(path, half, fingerprint=stored.fingerprint, round=0)


TRANSFER_CASES = {
    "other-dataset": ("fashion-lenet", [], "data.dataset='digits'"),
    "other-val-fraction": (PRESET, ["data.val_fraction=0.2"], "data.val_fraction=0.1"),
    "other-train-limit": (PRESET, ["data.train_limit=500"], "data.train_limit=None"),
    "too-few-rounds": (PRESET, ["prune.rounds=3"], "no PrAC set of round 1"),
}


@pytest.mark.parametrize("preset, items, fragment", TRANSFER_CASES.values(), ids=TRANSFER_CASES.keys())
def test_a_transfer_source_of_other_data_is_refused(capsys, earlier, preset, items, fragment):
    out, run = earlier
    sets = [x for item in ["prune.rounds=2", *items] for x in ("--set", item)]
    refused(capsys, "run", preset, "--engine-only", "--method", "transfer", "--output-dir", str(out),
            "--set", f"transfer.source={PRESET}/{run.name}", *sets, fragments=(fragment,))


@pytest.mark.parametrize("damage, fragment", [
    ("missing", "not a run folder"),
    ("config-not-json", "config.json"),
    ("config-without-data", "config.json"),
    ("rows", "prac_set.parquet"),
    ("prac-set-garbage", "prac_set.parquet"),
    ("prac-set-other-run", "fingerprint"),
    ("no-source", "needs transfer.source"),
])
def test_a_damaged_transfer_source_is_refused_before_anything_runs(capsys, earlier, tmp_path, damage, fragment):
    out, _ = earlier
    source = copy_run(earlier, tmp_path / "copy")
    if damage == "missing":
        shutil.rmtree(source)
    elif damage == "config-not-json":
        (source / "config.json").write_text("{not json")
    elif damage == "config-without-data":
        (source / "config.json").write_text(json.dumps({"fingerprint": source.name}))
    elif damage == "rows":
        _rows_cut(source)
    elif damage == "prac-set-garbage":
        (source / "round_00" / "prac_set.parquet").write_bytes(b"PAR1 garbage")
    elif damage == "prac-set-other-run":
        path = source / "round_00" / "prac_set.parquet"
        write_prac_set(path, read_prac_set(path).prac_set, fingerprint="0123456789abcdef", round=0)
    items = [] if damage == "no-source" else ["--set", f"transfer.source={source}"]
    refused(capsys, "run", PRESET, "--engine-only", "--method", "transfer", "--set", "prune.rounds=2", *items,
            "--output-dir", str(out), fragments=(fragment,))


# --------------------------------------------------------------------------------------------------
# Masks a user loads: prac.imp.ticket.load_ticket (the Python API; the CLI reads no mask a user gives)


def _mask_of(model_name: str, fingerprint: str, path: Path) -> None:
    model = build_model(model_name, in_channels=1, num_classes=10, image_size=8)
    mask = {name: torch.ones_like(p, dtype=torch.bool) for name, p in prunable_parameters(model).items()}
    write_mask(path, mask, fingerprint=fingerprint, round=0)


@pytest.mark.parametrize("damage, fragments", [
    ("other-architecture", ("mask.parquet", "conv2")),
    ("other-shapes", ("mask.parquet", "shape")),
    ("other-run", ("mask.parquet", "fingerprint")),
    ("garbage", ("mask.parquet", "Parquet")),
    ("missing", ("mask.parquet", "not found")),
    ("config-not-json", ("config.json",)),
    ("not-a-run-folder", ("not a run folder",)),
])
def test_a_bad_mask_or_run_folder_for_a_ticket_is_a_one_line_error(earlier, tmp_path, damage, fragments):
    run = copy_run(earlier, tmp_path / "copy")
    mask = run / "round_00" / "mask.parquet"
    if damage == "other-architecture":
        _mask_of("lenet300", run.name, mask)  # this run's fingerprint, another model's layers
    elif damage == "other-shapes":
        model = build_model("conv2", in_channels=1, num_classes=10, image_size=8)
        layers = prunable_parameters(model)
        shaped = {name: torch.ones(p.shape[::-1] if p.dim() == 2 else p.shape, dtype=torch.bool)
                  for name, p in layers.items()}
        write_mask(mask, shaped, fingerprint=run.name, round=0)
    elif damage == "other-run":
        _mask_of("conv2", "0123456789abcdef", mask)
    elif damage == "garbage":
        mask.write_bytes(b"not parquet at all")
    elif damage == "missing":
        mask.unlink()
    elif damage == "config-not-json":
        (run / "config.json").write_text("{not json")
    elif damage == "not-a-run-folder":
        run = run / "round_00"
    with pytest.raises(UserError) as info:
        load_ticket(run, 0)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --------------------------------------------------------------------------------------------------
# As a user runs it: a real process


def test_bad_input_in_a_real_process(earlier, tmp_path):
    out, run = earlier
    assert_user_error(cli("run", PRESET, "--set", "prune.rate=1.5", "--output-dir", str(out)), "prune.rate")
    assert_user_error(cli("compare", PRESET, "--seeds", "a,b", "--output-dir", str(out)), "--seeds")
    fashion = _bad_fashion("wrong-magic", tmp_path / "fashion")
    assert_user_error(cli("run", "fashion-lenet", "--engine-only", "--data-dir", str(fashion), "--output-dir", str(out)),
                      "magic number")
    source = copy_run(earlier, tmp_path / "copy")
    _rows_cut(source)
    assert_user_error(cli("run", PRESET, "--method", "transfer", "--engine-only", "--set", f"transfer.source={source}",
                          "--set", "prune.rounds=2", "--output-dir", str(out)), "prac_set.parquet")


@pytest.mark.slow
def test_bad_data_through_the_flow_in_a_real_process(earlier, tmp_path):
    # without --engine-only: the preflight reads the data while Prefect's local server starts, then stops it
    out, _ = earlier
    cifar = _bad_cifar("truncated", tmp_path / "cifar")
    assert_user_error(cli("run", "cifar10-resnet20", "--data-dir", str(cifar), "--output-dir", str(out),
                          "--set", "runtime.device=cpu"), "data_batch_2")


# --------------------------------------------------------------------------------------------------
# Deployments: the flows called in-process through Prefect (one temporary server for the module)


@pytest.fixture(scope="module")
def prefect(scratch):
    from tests.prefect_homes import prefect_harness

    with prefect_harness():
        yield


def failed_with(state, *fragments: str) -> str:
    assert state.is_failed(), (state.type, state.message)
    message = state.message or ""
    assert "\n" not in message and "Traceback" not in message, message
    assert "Error: " in message, message  # the exception's class and its one line
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def _where(out: Path) -> list[str]:
    return [f"runtime.output_dir={out}", *EARLIER[1::2]]


FLOW_CASES = {
    "preset-unknown": (dict(preset="nope"), "unknown preset 'nope'"),
    "method-unknown": (dict(method="foo"), "method"),
    "seed-negative": (dict(seed=-1), "seed"),
    "seed-not-an-int": (dict(seed="x"), "seed"),
    "override-bad-value": (dict(overrides=["train.epochs=0"]), "train.epochs"),
    "override-unknown-key": (dict(overrides=["train.nope=1"]), "train.nope"),
    "overrides-not-a-list": (dict(overrides="train.epochs=3"), "overrides"),
    "rounds-beyond-the-model": (dict(overrides=["prune.rounds=100000"]), "at most 83"),
    "transfer-source-missing": (dict(method="transfer", overrides=["prune.rounds=2", "transfer.source=nowhere/00"]),
                                "not a run folder"),
    "transfer-of-other-data": (dict(preset="fashion-lenet", method="transfer",
                                    overrides=["prune.rounds=2", "transfer.source=digits-smoke/{run}"]),
                               "data.dataset='digits'"),
}


@pytest.mark.parametrize("params, fragment", FLOW_CASES.values(), ids=FLOW_CASES.keys())
def test_a_deployment_run_with_bad_parameters_fails_in_one_line(prefect, earlier, params, fragment):
    from prac_lth.flows.experiment_flow import prac_lth

    out, run = earlier
    if isinstance(params.get("overrides", []), list):
        extra = [item.format(run=run.name) for item in params.get("overrides", [])]
        params = {**params, "overrides": [*_where(out), *extra]}
    failed_with(prac_lth(**params, return_state=True), fragment)


# A config built by the caller (the CLI, the compare flow) and passed serialised: read back, checked against
# the names beside it, never silently preferred to them.
CONFIG_CASES = {
    "config-of-another-method": (dict(method="lt"), "is digits-smoke · prac · seed 0, not digits-smoke · lt · seed 0"),
    "config-and-overrides": (dict(overrides=["train.epochs=2"]), "give one or the other"),
    "config-not-a-config": (dict(config={"preset": 1}), "parameter config is not an experiment config"),
}


@pytest.mark.parametrize("params, fragment", CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_a_run_given_a_config_that_is_not_its_own_fails_in_one_line(prefect, earlier, params, fragment):
    from prac.build_config import build_config
    from prac_lth.flows.experiment_flow import prac_lth

    out, _ = earlier
    config = build_config(PRESET, "prac", 0, _where(out)).model_dump(mode="json")
    given = {"preset": PRESET, "method": "prac", "seed": 0, "config": config, **params}
    failed_with(prac_lth(**given, return_state=True), fragment)


COMPARE_CASES = {
    "method-unknown": (dict(methods=["prac", "foo"]), "method"),
    "methods-not-a-list": (dict(methods="prac"), "methods"),
    "seeds-empty": (dict(seeds=[]), "seeds"),
    "seeds-twice": (dict(seeds=[0, 0]), "twice"),
    "seeds-not-ints": (dict(seeds=["a"]), "seeds"),
    "parallel-0": (dict(parallel=0), "parallel"),
    "parallel-not-an-int": (dict(parallel="x"), "parallel"),
    "pool-not-a-name": (dict(pool=3), "parameter pool must be a work pool's name"),
    "pool-without-the-deployment": (dict(pool="gpu"), "no deployment prac-lth/digits on the Prefect server"),
    "margin-negative": (dict(margin=-1), "non-inferiority margin"),
    "margin-not-a-number": (dict(margin="half"), "non-inferiority margin"),
}


@pytest.mark.parametrize("params, fragment", COMPARE_CASES.values(), ids=COMPARE_CASES.keys())
def test_a_comparison_deployment_run_with_bad_parameters_fails_in_one_line(prefect, earlier, params, fragment):
    from prac_lth.flows.compare import compare

    out, _ = earlier
    failed_with(compare(**{"preset": PRESET, "overrides": _where(out), **params}, return_state=True), fragment)


def test_a_pool_is_checked_before_the_comparison_starts(capsys, prefect, earlier):
    """compare --pool: a pool without the deployment, or no Prefect server to find it on, is refused in one line
    before the comparison's flow run is created (no worker online: tests/test_pool_retrains.py)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prac_lth.deployments.processes import free_port

    out, _ = earlier
    argv = ["compare", PRESET, *EARLIER, "--output-dir", str(out), "--pool", "gpu"]
    refused(capsys, *argv, fragments=("no deployment prac-lth/digits on the Prefect server at http://",))
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        refused(capsys, *argv, fragments=("--pool gpu needs PREFECT_API_URL",))
    nobody = f"http://127.0.0.1:{free_port()}/api"  # a port nothing listens on
    with temporary_settings(updates={PREFECT_API_URL: nobody}):
        refused(capsys, *argv, fragments=(f"cannot reach the Prefect server at {nobody}",))


def test_a_gpu_limit_the_server_does_not_have_fails_in_one_line(prefect, earlier, monkeypatch, tmp_path):
    from prac_lth.flows.experiment_flow import prac_lth

    monkeypatch.setenv("PRAC_GPU_LIMIT", "gpu-7")  # as a worker's environment sets it (prac_lth/flows/device_slot.py)
    overrides = [f"runtime.output_dir={tmp_path}", *EARLIER[1::2]]
    failed_with(prac_lth(preset=PRESET, overrides=overrides, return_state=True),
                "PRAC_GPU_LIMIT=gpu-7", "prefect gcl create gpu-7")
    assert not list(tmp_path.rglob("*.parquet"))  # refused before any stage ran


def test_a_preset_of_another_dataset_on_a_deployment_fails_in_one_line(prefect, earlier, monkeypatch):
    from prac_lth.flows.compare import compare
    from prac_lth.flows.experiment_flow import prac_lth

    out, _ = earlier
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__NAME", "digits")  # as if run as prac-lth/digits
    for flow_function in (prac_lth, compare):
        failed_with(flow_function(preset="fashion-lenet", overrides=_where(out), return_state=True),
                    "fashion-lenet", "fashion-mnist", "digits")
