"""The trained ticket a comparison recommends per method (prac.reporting.best_tickets): its round by the comparison's
rule, its seed by validation accuracy, its size on disk; and in MLflow's Model Registry under the alias `best`
(prac_lth.tasks.ticket_registry), registered once, moved when a comparison chooses another ticket.

Rules on hand-made tables; the rest on tiny digits-smoke engine runs (lt, seeds 0 and 1, 2 rounds of 3 epochs, every
ticket retrained) and a throwaway SQLite store."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import mlflow.pytorch
import pytest
import torch
from rich.console import Console
from safetensors.torch import save as save_safetensors

from prac.experiment import run_experiment
from prac.export.ticket_latency import latency_threads
from prac.imp.ticket import load_ticket, ticket_context
from prac.imp.trained_ticket import TRAINED_FILE
from prac.layout.fingerprint import fingerprint
from prac.layout.run_paths import run_paths
from prac.reporting import comparison
from prac.reporting.best_tickets import MATCHES_DENSE, MATCHES_LT, best_rounds, best_tickets, tickets_frame
from prac.reporting.comparison import per_sparsity
from prac.reporting.ticket_report import tickets_markdown
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac_lth.tasks import tracking, tracking_runs
from prac_lth.tasks.ticket_logging import TRAINED, find_ticket_model, log_trained_ticket, ready_model
from prac_lth.tasks.ticket_registry import ALIAS, register_best, registered_name
from tests.mlflow_store import temporary_store
from tests.synthetic_runs import ROWS as SYNTHETIC_ROWS

ROUNDS = 2
SETTINGS = [f"prune.rounds={ROUNDS}", "train.epochs=3", "train.milestones=[2]", "runtime.evaluate_tickets=all"]
METHODS, SEEDS = ("lt",), (0, 1)  # lt: its ticket at every round comes with the round (round 0's from round 1)


def test_each_method_is_matched_against_lt_and_lt_against_the_dense_network():
    table = per_sparsity(SYNTHETIC_ROWS)  # prac matches lt up to 48.8 %, random nowhere
    found = {b.method: b for b in best_rounds(table)}
    assert set(found) == {"prac", "lt"}
    prac = comparison.match(table, "prac")
    assert (found["prac"].round, found["prac"].sparsity, found["prac"].rule) == (
        prac.matched_round, pytest.approx(0.488), MATCHES_LT)
    dense = comparison.dense_matched_sparsity(table, "lt")
    assert not math.isnan(dense) and (found["lt"].sparsity, found["lt"].rule) == (dense, MATCHES_DENSE)
    # without lt, every method is held to the dense network
    without_lt = per_sparsity([r for r in SYNTHETIC_ROWS if r["method"] != "lt"])
    assert {b.rule for b in best_rounds(without_lt)} == {MATCHES_DENSE}
    assert {b.method: b.sparsity for b in best_rounds(without_lt)} == {
        m: comparison.dense_matched_sparsity(without_lt, m) for m in ("prac",)}  # random: under dense everywhere


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(configs, rows) of lt over seeds 0 and 1."""
    out = tmp_path_factory.mktemp("best-runs")
    configs, rows = [], []
    for seed in SEEDS:
        for method in METHODS:
            config = apply_overrides(preset_config("digits-smoke"), [
                f"runtime.output_dir={out}", "runtime.device=cpu", f"method={method}", f"seed={seed}", *SETTINGS])
            result = run_experiment(config, log=lambda _: None)
            configs.append(config)
            rows += [{"method": method, "seed": seed, **vars(r)} for r in result.rounds]
    return configs, rows


def _record(config, r: int) -> dict:
    return json.loads((run_paths(config).round(r) / "ticket.json").read_text())


def test_the_seed_that_validated_best_is_chosen_and_its_file_weighed(runs):
    configs, rows = runs
    table = per_sparsity(rows)
    tickets = best_tickets(table, configs)
    assert {t.method for t in tickets} == {b.method for b in best_rounds(table)} != set()
    for t in tickets:
        seeds = {c.seed: _record(c, t.round) for c in configs if c.method == t.method}
        assert t.seed == max(seeds, key=lambda s: (seeds[s]["ticket_best_val_acc"], -s))
        assert (t.ticket_test_acc, t.ticket_best_val_acc) == (seeds[t.seed]["ticket_test_acc"],
                                                              seeds[t.seed]["ticket_best_val_acc"])
        config = next(c for c in configs if (c.method, c.seed) == (t.method, t.seed))
        path = run_paths(config).round(t.round) / TRAINED_FILE
        assert (Path(t.file), t.file_bytes) == (path, path.stat().st_size)
        state = load_ticket(config, t.round, trained=True).state_dict()
        assert t.dense_bytes == len(save_safetensors({k: v.float().contiguous() for k, v in state.items()}))
        assert t.file_bytes < t.dense_bytes  # zeros are not stored
        assert 0 < t.latency_us < math.inf and 0 < t.dense_latency_us < math.inf and t.latency_threads == latency_threads()
        assert 0 <= t.sparse_layers <= 3  # digits-smoke's model: three prunable layers
    again = best_tickets(table, configs)  # measured once per ticket and process: every report shows the same
    assert [(t.latency_us, t.dense_latency_us) for t in again] == [(t.latency_us, t.dense_latency_us) for t in tickets]
    frame = tickets_frame(tickets)
    assert list(frame["method"]) == [t.method for t in tickets] and list(frame["file_bytes"]) == [
        t.file_bytes for t in tickets]
    lines = tickets_markdown(tickets)
    assert sum(line.startswith(f"| {t.method} |") for t in tickets for line in lines) == len(tickets)
    for t in tickets:
        row = next(line for line in lines if line.startswith(f"| {t.method} |"))
        assert f"{t.latency_us:,.1f} µs" in row and f"{t.dense_latency_us / t.latency_us:.2f}×" in row
    assert tickets_markdown([]) == []


def test_alias_best_points_at_the_recommended_trained_ticket(runs, tmp_path_factory):
    configs, rows = runs
    tickets = best_tickets(per_sparsity(rows), configs)
    with temporary_store(tmp_path_factory, "registry") as (_, _, client):
        experiment_id = tracking.ensure_experiment("digits-smoke")
        run_ids = {}
        for config in configs:
            run_id = tracking_runs.parent_run(experiment_id, fingerprint(config), config.method, config.seed, {})
            for r in range(ROUNDS):
                log_trained_ticket(ticket_context(config), experiment_id, run_id, r)
            run_ids[config.method, config.seed] = run_id
        comparison_run = tracking_runs.comparison_run(experiment_id, "compare", {"seeds": "0,1"})
        registered = register_best(experiment_id, comparison_run, "digits-smoke", tickets, configs)
        assert set(registered) == {t.method for t in tickets}
        for t in tickets:
            name = registered_name("digits-smoke", t.method)
            version = client.get_model_version_by_alias(name, ALIAS)
            expected = ready_model(find_ticket_model(experiment_id, run_ids[t.method, t.seed], t.round, TRAINED))
            assert (version.tags["prac.model_id"], version.source) == (expected, f"models:/{expected}")
            assert registered[t.method] == f"{name}@{version.version}"
            carried = {m.key: m.value for m in client.get_logged_model(expected).metrics}
            assert (carried["latency_us"], carried["dense_latency_us"]) == (t.latency_us, t.dense_latency_us)
            assert carried["sparsity"] == pytest.approx(t.sparsity, abs=1e-6) and carried["ticket_bytes"] == t.file_bytes
            assert {k: version.tags[k] for k in ("prac.comparison_run", "prac.round", "prac.seed")} == {
                "prac.comparison_run": comparison_run, "prac.round": str(t.round), "prac.seed": str(t.seed)}
            loaded = mlflow.pytorch.load_model(f"models:/{name}@{ALIAS}")
            config = next(c for c in configs if (c.method, c.seed) == (t.method, t.seed))
            own = load_ticket(config, t.round, trained=True).state_dict()
            assert all(torch.equal(v, own[k]) for k, v in loaded.state_dict().items())

        # the same comparison again: found, not registered twice
        assert register_best(experiment_id, comparison_run, "digits-smoke", tickets, configs) == registered
        name = registered_name("digits-smoke", tickets[0].method)
        assert len(client.search_model_versions(f"name = '{name}'")) == 1
        # a comparison that chooses another seed's ticket moves the alias to a new version
        other = next(c for c in configs if c.method == tickets[0].method and c.seed != tickets[0].seed)
        moved = [tickets[0].__class__(**{**vars(tickets[0]), "seed": other.seed})]
        register_best(experiment_id, comparison_run, "digits-smoke", moved, configs)
        assert len(client.search_model_versions(f"name = '{name}'")) == 2
        assert client.get_model_version_by_alias(name, ALIAS).tags["prac.seed"] == str(other.seed)


@pytest.mark.parametrize(("omp", "threads"), [(None, 2), ("1", 1), ("8", 2), ("lots", 2)])
def test_the_latency_runs_on_two_threads_unless_the_process_was_given_fewer(monkeypatch, omp, threads):
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert latency_threads() == threads


def test_a_ticket_this_machine_cannot_rebuild_is_reported_without_a_latency(runs, monkeypatch):
    """A comparison over a pool whose data is on the workers only: the latency is not measured, and says why,
    instead of failing the comparison."""
    from prac.errors import DataError
    from prac.export import ticket_latency
    from prac.reporting.ticket_report import latency_notes, tickets_table

    def no_data(_config):
        raise DataError("cifar10: data dir /data/cifar does not exist (pass --data-dir, or --download to fetch it)")

    configs, rows = runs
    monkeypatch.setattr(ticket_latency, "ticket_context", no_data)
    monkeypatch.setattr(ticket_latency, "_MEASURED", {})
    tickets = best_tickets(per_sparsity(rows), configs)
    assert tickets and all(math.isnan(t.latency_us) and "data dir /data/cifar" in t.latency_note for t in tickets)
    assert latency_notes(tickets) == [f"{t.method}: latency not measured here: {t.latency_note}" for t in tickets]
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(tickets_table(tickets))
    assert "not measured" in buffer.getvalue()
    assert tickets_markdown(tickets)[-1] == latency_notes(tickets)[-1]
