"""The ticket users take away: m ⊙ θ_rewind in plain PyTorch in one call (prac.imp.ticket), its per-layer
sparsity measured from its zeros; the trained ticket (`trained=True`), the retrain's best-validation weights kept
beside ticket.json (prac.imp.trained_ticket), scoring ticket.json's accuracy; and both as MLflow models of the parent
run, each logged once: ticket-init-rNN (every round) and ticket-rNN (the trained ticket, retrained rounds only).

Tiny digits-smoke experiments (2 rounds of 3 epochs) run once in-process for the fast tests: prac without retrains,
random-reinit, and lt with every ticket (round 0's read from round 1's training, round 1's retrained); the slow
test runs the Prefect flow through the CLI, as a user does, against its own sqlite store: twice, then once more
without a round's trained ticket."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus

from prac.artifacts import read_mask
from prac.artifacts.refs import make_ref
from prac.errors import ArtifactError, UserError
from prac.experiment import run_experiment
from prac.imp.trained_ticket import TRAINED_FILE, checked_ticket
from prac.models.small_conv import SmallConv
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.training.round_file import load_round
from prac.layout.run_paths import run_paths
from prac.imp.ticket import layer_sparsity, load_ticket, ticket_context, total_sparsity, write_sparsity_report
from prac.training.evaluate import accuracy, probabilities
from prac_lth.tasks import tracking, tracking_runs
from tests.prefect_homes import migrated_prefect_home
from prac_lth.tasks.ticket_logging import (INIT, TRAINED, find_ticket_model, log_round_ticket, log_trained_ticket,
                                           model_name)
from tests.mlflow_store import temporary_store

ROUNDS = 2
SETTINGS = [f"prune.rounds={ROUNDS}", "train.epochs=3", "train.milestones=[2]", "runtime.evaluate_tickets=none"]


def _run(out: Path, method: str, *extra: str):
    """(config, run folder, round records) of a finished engine run."""
    config = apply_overrides(preset_config("digits-smoke"), [f"runtime.output_dir={out}", "runtime.device=cpu",
                                                              f"method={method}", *SETTINGS, *extra])
    result = run_experiment(config, log=lambda _: None)
    return config, result.output_dir, result.rounds


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ticket-runs")


@pytest.fixture(scope="module")
def experiment(out):
    return _run(out, "prac")


@pytest.fixture(scope="module")
def reinit_experiment(out, experiment):
    return _run(out, "random-reinit")  # after prac: reuses its round 0


@pytest.fixture(scope="module")
def lt_experiment(out, experiment):
    # after prac: reuses its round 0; trains round 1 (round 0's ticket) and retrains round 1's mask
    return _run(out, "lt", "runtime.evaluate_tickets=all")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with temporary_store(tmp_path_factory, "ticket-mlflow") as (_, _, client):
        yield client


def _rewind_state(config) -> dict[str, torch.Tensor]:
    return load_round(run_paths(config).shared_round0 / "train.pt").rewind_state


def _mask(config, r: int):
    return read_mask(run_paths(config).round(r) / "mask.parquet")


# --------------------------------------------------------------------------------------------------
# prac.imp.ticket


def test_ticket_is_the_mask_applied_to_theta_rewind(experiment):
    config, folder, _ = experiment
    rewind = _rewind_state(config)
    for r in range(ROUNDS):
        ticket = load_ticket(folder, r)
        assert isinstance(ticket, SmallConv) and not ticket.training
        state = ticket.state_dict()
        assert all(t.device.type == "cpu" for t in state.values())
        mask = _mask(config, r).mask
        assert set(mask) == {"features.conv1.weight", "features.conv2.weight", "fc1.weight", "fc2.weight",
                             "fc3.weight"}
        for name, value in state.items():
            if name in mask:
                assert torch.equal(value == 0, ~mask[name]), f"round {r} {name}: zeros are not the mask's"
                assert torch.equal(value[mask[name]], rewind[name][mask[name]]), f"round {r} {name}"
            else:  # biases, BN parameters and statistics: θ_rewind's, never pruned
                assert torch.equal(value, rewind[name]), f"round {r} {name}"


def test_random_reinit_tickets_start_from_its_fresh_initialisation(reinit_experiment):
    config, folder, _ = reinit_experiment
    reinit = ticket_context(config).reinit_state()
    rewind = _rewind_state(config)
    ticket = load_ticket(folder, ROUNDS - 1).state_dict()
    mask = _mask(config, ROUNDS - 1).mask
    for name, kept in mask.items():
        assert torch.equal(ticket[name] == 0, ~kept)
        assert torch.equal(ticket[name][kept], reinit[name][kept])
        assert not torch.equal(ticket[name][kept], rewind[name][kept])
    ctx = ticket_context(config)
    path = write_sparsity_report(ctx, ROUNDS - 1, layer_sparsity(load_ticket(ctx, ROUNDS - 1)))
    assert json.loads(path.read_text())["ticket"] == "mask applied to theta_reinit"


def test_ticket_from_config_equals_ticket_from_folder(experiment, tmp_path, monkeypatch):
    config, folder, _ = experiment
    from_config = load_ticket(config, ROUNDS - 1).state_dict()
    monkeypatch.chdir(tmp_path)  # a run folder is read from anywhere
    from_folder = load_ticket(str(folder), ROUNDS - 1).state_dict()
    assert from_config.keys() == from_folder.keys()
    assert all(torch.equal(from_config[k], from_folder[k]) for k in from_config)


def test_loading_a_ticket_leaves_the_global_rng_alone(experiment):
    _, folder, _ = experiment
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_ticket(folder, 0)
    assert torch.equal(torch.rand(3), expected)


def test_sparsity_report_matches_the_mask(experiment):
    config, folder, records = experiment
    for r in range(ROUNDS):
        mask_file = _mask(config, r)
        layers = layer_sparsity(load_ticket(folder, r))
        assert [row.layer for row in layers] == list(mask_file.mask)
        for row in layers:
            kept = mask_file.mask[row.layer]
            assert row.numel == kept.numel() and row.zeros == int((~kept).sum())
            assert row.sparsity == pytest.approx(row.zeros / row.numel)
        assert total_sparsity(layers) == pytest.approx(mask_file.sparsity, abs=1e-12)
        assert total_sparsity(layers) == pytest.approx(records[r].sparsity, abs=1e-12)
        for kind in ("conv", "linear", "output"):  # the record's per-type sparsity, counted from the zeros
            of_type = [row for row in layers if row.type == kind]
            zeros = sum(row.zeros for row in of_type) / sum(row.numel for row in of_type)
            assert getattr(records[r], f"{kind}_sparsity") == pytest.approx(zeros, abs=1e-12)
    assert 0 < total_sparsity(layer_sparsity(load_ticket(folder, 0))) < total_sparsity(layers)


def test_sparsity_is_counted_from_zeros_not_from_the_rate(experiment):
    _, folder, _ = experiment
    ticket = load_ticket(folder, 0)
    before = {row.layer: row.zeros for row in layer_sparsity(ticket)}
    with torch.no_grad():
        ticket.fc3.weight.zero_()
    after = {row.layer: row for row in layer_sparsity(ticket)}
    assert after["fc3.weight"].zeros == after["fc3.weight"].numel and after["fc3.weight"].sparsity == 1.0
    assert all(after[k].zeros == before[k] for k in before if k != "fc3.weight")
    assert {row.layer: row.type for row in after.values()} == {
        "features.conv1.weight": "conv", "features.conv2.weight": "conv", "fc1.weight": "linear",
        "fc2.weight": "linear", "fc3.weight": "output"}


def test_bad_requests_are_one_line_errors(experiment, tmp_path):
    config, folder, _ = experiment
    with pytest.raises(UserError, match="rounds 0..1"):
        load_ticket(folder, ROUNDS)
    with pytest.raises(ArtifactError, match="not a run folder"):
        load_ticket(tmp_path, 0)


# --------------------------------------------------------------------------------------------------
# The trained ticket (prac.imp.trained_ticket)


def _ticket_json(config, r: int) -> dict:
    return json.loads((run_paths(config).round(r) / "ticket.json").read_text())


def test_trained_ticket_is_the_retrains_best_weights_and_scores_its_accuracy(lt_experiment):
    config, folder, records = lt_experiment
    ctx = ticket_context(config)  # the run's data and precision, on the CPU as it trained
    round1 = load_round(run_paths(config).round(1) / "train.pt")
    for r in range(ROUNDS):
        ticket = load_ticket(folder, r, trained=True)
        assert isinstance(ticket, SmallConv) and not ticket.training
        assert all(t.device.type == "cpu" for t in ticket.state_dict().values())
        recorded = _ticket_json(config, r)
        assert recorded["trained"]["file"] == TRAINED_FILE
        # evaluated as the training loop evaluates the best-validation weights: the same test accuracy, exactly
        assert accuracy(ticket, ctx.data.test, ctx.data, config.train.channels_last) == recorded["ticket_test_acc"]
        assert records[r].ticket_test_acc == recorded["ticket_test_acc"]
        mask = _mask(config, r).mask
        state = ticket.state_dict()
        for name, kept in mask.items():
            assert torch.equal(state[name] == 0, ~kept), f"round {r} {name}: zeros are not the mask's"
        if r == 0:  # lt: round 1's training is round 0's retrain
            assert recorded["source"] == "round 1 training"
            assert all(torch.equal(state[k], v) for k, v in round1.final.best_state.items())
        else:
            assert recorded["source"] == "retrain"
    untrained = load_ticket(folder, 1).state_dict()
    assert not all(torch.equal(v, untrained[k]) for k, v in state.items())


def test_a_round_not_retrained_has_no_trained_ticket(experiment):
    _, folder, _ = experiment  # runtime.evaluate_tickets=none
    with pytest.raises(UserError, match=r"round 1: its ticket was not retrained \(runtime.evaluate_tickets=none\)"
                       ) as excinfo:
        load_ticket(folder, 1, trained=True)
    assert "\n" not in str(excinfo.value) and not isinstance(excinfo.value, ArtifactError)
    assert not list(Path(folder).glob(f"round_*/{TRAINED_FILE}"))


def test_a_lost_or_damaged_trained_ticket_is_a_one_line_error(lt_experiment):
    config, folder, _ = lt_experiment
    ticket = run_paths(config).round(1) / "ticket.json"
    path = ticket.with_name(TRAINED_FILE)
    saved = path.read_bytes()
    try:
        for damage, match in ((lambda: path.unlink(), "file not found"),
                              (lambda: path.write_bytes(saved[:-100]), "checksum differs")):
            damage()
            with pytest.raises(ArtifactError, match=match) as excinfo:
                load_ticket(folder, 1, trained=True)
            assert str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)
            with pytest.raises(ArtifactError, match=match):  # how a cached retrain is found not done
                checked_ticket(make_ref(ticket))
    finally:
        path.write_bytes(saved)
    assert checked_ticket(make_ref(ticket)) == ticket


# --------------------------------------------------------------------------------------------------
# MLflow (prac_lth.tasks.ticket_logging), against a temporary sqlite store


def _parent_run(name: str, records=()) -> tuple[str, str]:
    """(experiment id, parent run id), the round records' metrics logged at step = round, as the flow logs them."""
    experiment_id = tracking.ensure_experiment(name)
    run_id = tracking_runs.parent_run(experiment_id, f"fp-{name}", "prac", 0, {"train.lr": 0.05}, run_name="prac-seed0")
    for record in records:
        tracking.log_round_metrics(run_id, record.round, record.metrics())
    return experiment_id, run_id


def test_logged_ticket_loads_with_its_sparsity_and_is_logged_once(experiment, store):
    config, folder, records = experiment
    experiment_id, run_id = _parent_run("ticket-test", records)
    source = ticket_context(config)
    ids = [log_round_ticket(source, experiment_id, run_id, r) for r in range(ROUNDS)]
    report = run_paths(config).round(ROUNDS - 1) / "ticket_sparsity.json"
    stamp = report.stat().st_mtime_ns
    assert [log_round_ticket(source, experiment_id, run_id, r) for r in range(ROUNDS)] == ids  # found again
    assert report.stat().st_mtime_ns == stamp, "an unchanged report must not be rewritten"
    # runtime.evaluate_tickets=none: no trained ticket, said in one line, and no model logged
    with pytest.raises(UserError, match="its ticket was not retrained"):
        log_trained_ticket(source, experiment_id, run_id, ROUNDS - 1)
    assert mlflow.active_run() is None

    models = store.search_logged_models([experiment_id])
    assert sorted(m.name for m in models) == [model_name(r, INIT) for r in range(ROUNDS)] == [
        f"ticket-init-r{r:02d}" for r in range(ROUNDS)]
    assert {m.model_id for m in models} == set(ids)
    assert all(m.source_run_id == run_id and m.status == LoggedModelStatus.READY for m in models)
    assert all(m.tags["prac.kind"] == "ticket-init" and m.tags["prac.round"] == str(int(m.name[-2:])) for m in models)
    outputs = store.get_run(run_id).outputs.model_outputs
    assert sorted((o.model_id, o.step) for o in outputs) == sorted(zip(ids, range(ROUNDS)))

    recorded = {m.step: m.value for m in store.get_metric_history(run_id, "sparsity")}
    # an untrained ticket carries its sparsity, no accuracy (not the round's: they are of other weights)
    assert [{m.key: (m.step, m.value) for m in store.get_logged_model(model_id).metrics} for model_id in ids] == [
        {"sparsity": (r, recorded[r])} for r in range(ROUNDS)]
    for r, model_id in enumerate(ids):
        loaded = mlflow.pytorch.load_model(f"models:/{model_id}")
        assert isinstance(loaded, SmallConv)
        assert total_sparsity(layer_sparsity(loaded)) == pytest.approx(recorded[r], abs=1e-12)
        expected = load_ticket(folder, r).state_dict()
        assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())
        table = store.load_table(experiment_id, f"round_{r:02d}/ticket_sparsity.json", run_ids=[run_id])
        assert list(table.columns) == ["layer", "type", "numel", "zeros", "sparsity"]
        local = json.loads((run_paths(config).round(r) / "ticket_sparsity.json").read_text())
        assert table[["layer", "type", "numel", "zeros"]].to_dict("records") == [
            {k: row[k] for k in ("layer", "type", "numel", "zeros")} for row in local["layers"]]
        # (pandas' JSON writer keeps 10 decimals)
        assert table["sparsity"].tolist() == pytest.approx([row["sparsity"] for row in local["layers"]], abs=1e-9)
        assert local["sparsity"] == pytest.approx(recorded[r], abs=1e-12) and local["round"] == r
    info = mlflow.models.get_model_info(f"models:/{ids[-1]}")
    assert info.metadata["round"] == ROUNDS - 1 and len(info.metadata["mean"]) == 1
    assert info.metadata["trained"] is False and "untrained" in info.metadata["ticket"]
    requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{ids[-1]}")).read_text().split()
    assert {"torch", "cloudpickle", "prac-lth"} <= {line.split("==")[0] for line in requirements}


def test_logged_trained_ticket_predicts_as_the_trained_ticket_and_scores_its_accuracy(lt_experiment, store):
    config, folder, records = lt_experiment  # every round's ticket trained: round 0's by round 1's training
    experiment_id, run_id = _parent_run("trained-ticket-test", records)
    ctx = ticket_context(config)
    ids = [log_trained_ticket(ctx, experiment_id, run_id, r) for r in range(ROUNDS)]
    init_ids = [log_round_ticket(ctx, experiment_id, run_id, r) for r in range(ROUNDS)]
    assert [log_trained_ticket(ctx, experiment_id, run_id, r) for r in range(ROUNDS)] == ids  # found again
    assert [log_round_ticket(ctx, experiment_id, run_id, r) for r in range(ROUNDS)] == init_ids

    models = {m.model_id: m for m in store.search_logged_models([experiment_id])}
    assert sorted(m.name for m in models.values()) == sorted(
        [model_name(r, INIT) for r in range(ROUNDS)] + [model_name(r, TRAINED) for r in range(ROUNDS)])
    assert set(models) == {*ids, *init_ids}
    outputs = store.get_run(run_id).outputs.model_outputs
    assert sorted((o.model_id, o.step) for o in outputs) == sorted([*zip(ids, range(ROUNDS)),
                                                                    *zip(init_ids, range(ROUNDS))])
    for r, (model_id, init_id) in enumerate(zip(ids, init_ids)):
        model, init = models[model_id], models[init_id]
        assert (model.name, model.tags["prac.kind"], model.tags["prac.round"]) == (
            f"ticket-r{r:02d}", "trained-ticket", str(r))
        assert (init.name, init.tags["prac.kind"], init.tags["prac.round"]) == (
            f"ticket-init-r{r:02d}", "ticket-init", str(r))
        assert model.status == init.status == LoggedModelStatus.READY
        assert model.tags["prac.method"] == "prac" and model.params["train.lr"] == "0.05"  # the run's tags and params
        recorded = _ticket_json(config, r)

        # the trained model: the trained ticket's predictions, and the accuracy ticket.json records, exactly
        loaded = mlflow.pytorch.load_model(f"models:/{model_id}")
        expected = load_ticket(folder, r, trained=True)
        assert isinstance(loaded, SmallConv)
        assert torch.equal(probabilities(loaded, ctx.data.test, ctx.data, config.train.channels_last),
                           probabilities(expected, ctx.data.test, ctx.data, config.train.channels_last))
        assert accuracy(loaded, ctx.data.test, ctx.data, config.train.channels_last) == recorded["ticket_test_acc"]
        # its metrics: ticket.json's accuracies and the round's sparsity, at step = round; the run's own history
        # keeps one value a step
        metrics = {m.key: m for m in model.metrics}
        assert {k: m.value for k, m in metrics.items()} == {
            "ticket_test_acc": recorded["ticket_test_acc"], "ticket_best_val_acc": recorded["ticket_best_val_acc"],
            "sparsity": records[r].sparsity,
            "ticket_bytes": (run_paths(config).round(r) / TRAINED_FILE).stat().st_size}
        assert {m.step for m in metrics.values()} == {r}
        assert total_sparsity(layer_sparsity(loaded)) == pytest.approx(records[r].sparsity, abs=1e-12)
        info = mlflow.models.get_model_info(f"models:/{model_id}")
        assert info.metadata["trained"] is True and "best-validation" in info.metadata["ticket"]
        assert info.metadata["ticket_test_acc"] == recorded["ticket_test_acc"]
        assert info.metadata["source"] == recorded["source"] and info.metadata["round"] == r

        # the init model: the untrained ticket m ⊙ θ_rewind
        untrained = load_ticket(folder, r).state_dict()
        assert all(torch.equal(v, untrained[k])
                   for k, v in mlflow.pytorch.load_model(f"models:/{init_id}").state_dict().items())
        assert mlflow.models.get_model_info(f"models:/{init_id}").metadata["trained"] is False
    for key in ("ticket_test_acc", "ticket_best_val_acc", "sparsity"):
        steps = [m.step for m in store.get_metric_history(run_id, key)]
        assert sorted(steps) == list(range(ROUNDS)), f"{key}: {steps}"


def test_a_model_left_pending_by_an_interrupted_attempt_is_replaced(lt_experiment, store):
    config, _, _ = lt_experiment
    experiment_id, run_id = _parent_run("ticket-pending")
    ctx = ticket_context(config)
    stale = {kind: store.create_logged_model(experiment_id, name=model_name(0, kind), source_run_id=run_id,
                                             tags={"prac.kind": kind.tag}) for kind in (INIT, TRAINED)}  # PENDING
    # an earlier version's ticket-r00: the untrained ticket, finished, under the trained ticket's name
    legacy = store.create_logged_model(experiment_id, name="ticket-r00", source_run_id=run_id,
                                       tags={"prac.kind": "ticket", "prac.round": "0"})
    store.finalize_logged_model(legacy.model_id, LoggedModelStatus.READY)
    model_id = log_trained_ticket(ctx, experiment_id, run_id, 0)  # not the earlier version's
    init_id = log_round_ticket(ctx, experiment_id, run_id, 0)
    assert model_id not in (stale[TRAINED].model_id, legacy.model_id) and init_id != stale[INIT].model_id
    assert [m.model_id for m in find_ticket_model(experiment_id, run_id, 0, TRAINED)] == [model_id]
    assert [m.model_id for m in find_ticket_model(experiment_id, run_id, 0, INIT)] == [init_id]
    # the earlier version's model is gone once the same weights are logged as ticket-init-r00
    assert sorted(m.model_id for m in store.search_logged_models([experiment_id])) == sorted([model_id, init_id])


# --------------------------------------------------------------------------------------------------
# The flow, as a user runs it


@pytest.mark.slow
def test_flow_logs_every_rounds_ticket_once_and_keeps_the_trained_ticket(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(PREFECT_HOME=str(migrated_prefect_home(tmp_path / "prefect-home")), MLFLOW_TRACKING_URI=uri, OMP_NUM_THREADS="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONWARNINGS="ignore")
    settings = [*SETTINGS, "runtime.evaluate_tickets=last"]  # round 1's ticket retrained, round 0's not
    argv = [str(Path(sys.executable).parent / "prac-lth"), "run", "digits-smoke", "--output-dir", str(tmp_path / "out"),
            *[arg for item in settings for arg in ("--set", item)]]

    def run(attempt: str) -> str:
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, f"{attempt}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-6000:]}"
        output = done.stdout + done.stderr
        assert "log-ticket-init-r01' - Finished in state Completed" in output
        assert "log-trained-ticket-r01' - Finished in state Completed" in output
        assert "log-trained-ticket-r00" not in output  # round 0's ticket not retrained: no trained model
        return output

    run("first")
    (trained,) = (tmp_path / "out").glob(f"digits-smoke/*/round_*/{TRAINED_FILE}")
    assert trained.parent.name == "round_01"
    stamp, data = trained.stat().st_mtime_ns, trained.read_bytes()
    rerun = run("re-run")
    # from cache: round 1's retrain neither ran nor rewrote its trained ticket
    assert "Task run 'retrain-r01' - Finished in state Cached" in rerun
    assert trained.stat().st_mtime_ns == stamp

    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.get_experiment_by_name("prac-lth/digits-smoke").experiment_id
    (parent,) = client.search_runs([experiment_id], filter_string="tags.`prac.kind` = 'experiment'")
    # every round's ticket-init-rNN, round 1's trained ticket-r01, each once
    names = [model_name(0, INIT), model_name(1, INIT), model_name(1, TRAINED)]
    models = client.search_logged_models([experiment_id])
    assert sorted(m.name for m in models) == names == ["ticket-init-r00", "ticket-init-r01", "ticket-r01"], \
        "a re-run logged a model twice"
    assert len(client.get_run(parent.info.run_id).outputs.model_outputs) == len(names)
    final = next(m for m in models if m.name == model_name(ROUNDS - 1, TRAINED))
    assert final.source_run_id == parent.info.run_id and final.tags["prac.round"] == str(ROUNDS - 1)
    assert final.tags["prac.kind"] == "trained-ticket"
    recorded = {m.step: m.value for m in client.get_metric_history(parent.info.run_id, "sparsity")}
    ticket_json = json.loads(trained.with_name("ticket.json").read_text())
    assert {m.key: m.value for m in final.metrics} == {
        "ticket_test_acc": ticket_json["ticket_test_acc"], "ticket_best_val_acc": ticket_json["ticket_best_val_acc"],
        "sparsity": recorded[ROUNDS - 1], "ticket_bytes": trained.stat().st_size}
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "ticket_test_acc")] == [ROUNDS - 1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # models:/ URIs resolve through the process-wide one
    loaded = mlflow.pytorch.load_model(f"models:/{final.model_id}")
    assert total_sparsity(layer_sparsity(loaded)) == pytest.approx(recorded[ROUNDS - 1], abs=1e-12)
    expected = load_ticket(trained.parent.parent, ROUNDS - 1, trained=True).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())

    # a cached retrain whose trained ticket was lost is not done: it runs again, said in one line, and writes the
    # same file (the same retrain on the same CPU)
    ticket = trained.with_name("ticket.json").read_bytes()
    trained.unlink()
    output = run("without the trained ticket")
    lines = [line for line in output.splitlines() if "computed again" in line]
    assert len(lines) == 1 and TRAINED_FILE in lines[0] and "retrain of round 1" in lines[0], lines
    assert trained.read_bytes() == data and trained.with_name("ticket.json").read_bytes() == ticket
    assert sorted(m.name for m in client.search_logged_models([experiment_id])) == names  # found, not logged again
