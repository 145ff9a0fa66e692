"""The method registry (prac.strategies.methods): each method's entry is what the loop does, checked on the files of a
short digits run per method — what each round trained on, how the next set was chosen, where tickets start."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from prac.artifacts import read_mask, read_prac_set
from prac.build_config import build_config
from prac.settings.config import PracConfig
from prac.errors import UserError
from prac.experiment import compare_in_process
from prac.layout.fingerprint import fingerprint
from prac.strategies.methods import ALL_PRAC_SETTINGS, METHODS, get_method
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.layout.run_paths import run_paths
from prac.training.selection import el2n, highest_scores, random_subset
from prac.imp.ticket import load_ticket
from prac_lth.cli import main

ROUNDS = 2
RUN = ["prac", "lt", "random-subset", "el2n-subset", "cet-only", "early-bird", "random-reinit"]
SETTING_CHANGES = {"forget_threshold": "1", "early_stop": "false", "early_stop_eps": "0.05",
                   "early_stop_window": "4", "schedule_scaling": "iterations", "min_epochs": "3", "use_cep": "false",
                   "budget": "own"}


def config_of(method: str, output_dir=None, *items: str):
    extra = [f"runtime.output_dir={output_dir}"] if output_dir else []
    return apply_overrides(preset_config("digits-smoke"), [f"method={method}", f"prune.rounds={ROUNDS}",
                                                          "runtime.threads=1", *extra, *items])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every method once, seed 0, in one folder (round 0 is trained once and shared)."""
    output_dir = tmp_path_factory.mktemp("methods")
    configs = {m: config_of(m, output_dir) for m in RUN}
    # transfer: prac's sets, found with the same model here, so it must redo prac's rounds exactly.
    configs["transfer"] = config_of("transfer", output_dir, f"transfer.source=digits-smoke/{fingerprint(configs['prac'])}")
    rows = compare_in_process(list(configs.values()), log=lambda line: None)
    records = {m: [r for r in rows if r["method"] == m] for m in configs}
    return configs, records


def sets(config, r: int):
    return read_prac_set(run_paths(config).round(r) / "prac_set.parquet").prac_set


def ticket_source(config, r: int) -> str:
    return json.loads((run_paths(config).round(r) / "ticket.json").read_text())["source"]


def test_the_registry_knows_every_prac_setting_and_the_config_every_method():
    assert ALL_PRAC_SETTINGS == set(PracConfig.model_fields) == set(SETTING_CHANGES)
    for name, method in METHODS.items():
        assert method.name == name and method.reads <= ALL_PRAC_SETTINGS and "forget_threshold" in method.reads
        assert ("budget" in method.reads) == (method.budget == "setting")  # the setting is read where it decides
        assert config_of(name).method == name
    with pytest.raises(UserError, match="unknown method 'nope'"):
        build_config("digits-smoke", "nope", 0, [])  # where every config is built (CLI, flows)
    with pytest.raises(UserError, match="unknown method 'nope'"):
        get_method("nope")


@pytest.mark.parametrize("name", list(METHODS))
def test_a_method_fingerprint_holds_exactly_the_prac_settings_it_reads(name):
    # A sweep of a setting a method never reads must find that method's runs again.
    base = config_of(name)
    for setting, value in SETTING_CHANGES.items():
        changed = fingerprint(apply_overrides(base, [f"prac.{setting}={value}"])) != fingerprint(base)
        assert changed == (setting in METHODS[name].reads), setting


def test_selection_rules():
    first, again = (random_subset(100, 30, np.random.default_rng(7)) for _ in range(2))
    assert first.sum() == 30 and (first == again).all()
    assert (random_subset(100, 30, np.random.default_rng(8)) != first).any()
    assert random_subset(5, 9, np.random.default_rng(0)).all()
    assert highest_scores(np.array([0.1, 0.9, 0.5, 0.9]), 2).tolist() == [False, True, False, True]
    assert highest_scores(np.array([0.2, 0.2, 0.2]), 1).tolist() == [True, False, False]  # ties: lower position
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert el2n(probabilities, np.array([0, 0, 0])) == pytest.approx([0.0, np.sqrt(0.5), np.sqrt(2.0)])


@pytest.mark.slow
def test_prac_trains_on_cet_union_cep_and_lt_on_all_of_d0(runs):
    configs, records = runs
    for r in range(ROUNDS):
        prac = sets(configs["prac"], r)
        assert (prac.in_prac == (prac.in_cet | prac.in_cep)).all()
        assert sets(configs["lt"], r).in_prac.all()
    assert records["prac"][1]["train_set_size"] == records["prac"][0]["prac_set_size"] < len(prac.index)


@pytest.mark.slow
def test_random_subset_trains_on_random_samples_as_many_as_the_prac_runs_set(runs):
    configs, records = runs
    for r in range(ROUNDS):
        chosen, prac = sets(configs["random-subset"], r), sets(configs["prac"], r)
        assert chosen.in_prac.sum() == prac.in_prac.sum() and (chosen.in_prac != prac.in_prac).any()
        assert not chosen.in_cep.any()  # at prac's budget its size is prac's: no CEP of its own is needed
    for field in ("train_set_size", "epochs_run", "train_iterations"):  # equal budget (prac.imp.budget)
        assert records["random-subset"][1][field] == records["prac"][1][field], field


@pytest.mark.slow
def test_random_subset_at_its_own_budget_takes_as_many_as_its_own_prac_set(runs):
    configs, others = runs
    own = config_of("random-subset", configs["prac"].runtime.output_dir, "prac.budget=own")
    assert fingerprint(own) != fingerprint(configs["random-subset"])
    records = compare_in_process([own], log=lambda line: None)
    for r in range(ROUNDS):
        chosen = sets(own, r)
        prac_set = chosen.in_cet | chosen.in_cep
        assert chosen.in_prac.sum() == prac_set.sum() and (chosen.in_prac != prac_set).any()
    assert records[1]["train_set_size"] == records[0]["prac_set_size"]
    assert records[1]["epochs_run"] < others["lt"][1]["epochs_run"]  # scaled like prac


@pytest.mark.slow
def test_el2n_subset_trains_on_the_highest_el2n_samples_of_the_early_dense_model(runs):
    configs, records = runs
    scores = pq.read_table(run_paths(configs["el2n-subset"]).root / "dense_predictions.parquet").column("el2n")
    scores = scores.to_numpy()
    assert np.isfinite(scores).all() and scores.std() > 0
    for r in range(ROUNDS):
        chosen = sets(configs["el2n-subset"], r)
        count = int(sets(configs["prac"], r).in_prac.sum())  # as many as the prac run's set
        assert (chosen.in_prac == highest_scores(scores, count)).all()
        assert scores[chosen.in_prac].min() >= scores[~chosen.in_prac].max()
    # EL2N costs one pass over D0 in round 0, as prac's CEP does (at prac's budget it needs no CEP of its own).
    assert records["el2n-subset"][0]["extra_forward_passes"] == records["prac"][0]["extra_forward_passes"]


@pytest.mark.slow
def test_cet_only_trains_on_the_forgotten_samples_and_never_predicts_for_cep(runs):
    configs, records = runs
    for r in range(ROUNDS):
        chosen = sets(configs["cet-only"], r)
        assert not chosen.in_cep.any() and (chosen.in_prac == chosen.in_cet).all()
    assert not (run_paths(configs["cet-only"]).root / "dense_predictions.parquet").exists()
    assert records["cet-only"][1]["extra_forward_passes"] < records["prac"][1]["extra_forward_passes"]


@pytest.mark.slow
def test_early_bird_trains_on_all_of_d0_and_stops_where_prac_does(runs):
    configs, records = runs
    bird, prac, lt = records["early-bird"], records["prac"], records["lt"]
    d0 = len(sets(configs["lt"], 0).index)
    assert [r["train_set_size"] for r in bird] == [d0] * ROUNDS
    # Round 0 taken where early stop fired, as prac takes it (whether it fires depends on the machine's numerics).
    assert (bird[0]["epochs_run"], bird[0]["early_stopped"]) == (prac[0]["epochs_run"], prac[0]["early_stopped"])
    assert not lt[0]["early_stopped"]
    if bird[0]["early_stopped"]:
        assert bird[0]["epochs_run"] < lt[0]["epochs_run"]
    else:
        assert bird[0]["epochs_run"] == lt[0]["epochs_run"]
    assert ticket_source(configs["early-bird"], 0) == "retrain"  # its next round may stop early: no ticket


@pytest.mark.slow
def test_random_reinit_keeps_lt_masks_and_retrains_them_from_a_fresh_initialisation(runs):
    configs, records = runs
    for r in range(ROUNDS):
        reinit = read_mask(run_paths(configs["random-reinit"]).round(r) / "mask.parquet").mask
        lt = read_mask(run_paths(configs["lt"]).round(r) / "mask.parquet").mask
        assert all(torch.equal(reinit[n], lt[n]) for n in lt)
    assert ticket_source(configs["random-reinit"], 0) == "retrain" and ticket_source(configs["lt"], 0) != "retrain"
    # Its ticket starts from other weights than lt's (an accuracy could coincide by chance; the weights cannot).
    reinit, lt = (dict(load_ticket(configs[m], 0).named_parameters()) for m in ("random-reinit", "lt"))
    mask = read_mask(run_paths(configs["lt"]).round(0) / "mask.parquet").mask
    assert all(torch.equal(reinit[n][~mask[n]], lt[n][~mask[n]]) for n in mask)  # both zero where pruned
    assert not any(torch.equal(reinit[n][mask[n]], lt[n][mask[n]]) for n in mask)  # other weights where kept
    assert math.isfinite(records["random-reinit"][0]["ticket_test_acc"])  # its own retrain evaluated it


def test_the_cli_refuses_an_unknown_method_naming_every_known_one(capsys):
    assert main(["run", "digits-smoke", "--method", "nope", "--engine-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prac-lth: error: unknown method 'nope'") and len(err.splitlines()) == 1
    assert all(name in err for name in METHODS)
    assert main(["compare", "digits-smoke", "--methods", "prac,nope", "--engine-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prac-lth: error:") and "el2n-subset" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_transfer_trains_on_the_source_runs_prac_sets(runs):
    configs, records = runs
    for r in range(ROUNDS):
        assert (sets(configs["transfer"], r).in_prac == sets(configs["prac"], r).in_prac).all()
        transferred = read_mask(run_paths(configs["transfer"]).round(r) / "mask.parquet").mask
        prac = read_mask(run_paths(configs["prac"]).round(r) / "mask.parquet").mask
        assert all(torch.equal(transferred[n], prac[n]) for n in prac)  # same model: prac's rounds again
    assert [r["train_set_size"] for r in records["transfer"]] == [r["train_set_size"] for r in records["prac"]]
    # The source is named by what it is: moved elsewhere and named by path, the run keeps its fingerprint.
    by_path = config_of("transfer", configs["prac"].runtime.output_dir,
                        f"transfer.source={run_paths(configs['prac']).root}")
    assert fingerprint(by_path) == fingerprint(configs["transfer"])
    assert fingerprint(config_of("prac", None, "transfer.source=x/y")) == fingerprint(config_of("prac"))


def _fake_source(runs, tmp_path, **data):
    configs, _ = runs
    source = tmp_path / "digits-smoke" / "0123456789abcdef"
    (source / "round_00").mkdir(parents=True)
    written = json.loads((run_paths(configs["prac"]).root / "config.json").read_text())
    written["data"].update(data)
    (source / "config.json").write_text(json.dumps(written))
    (source / "round_00" / "prac_set.parquet").write_bytes(
        (run_paths(configs["prac"]).round(0) / "prac_set.parquet").read_bytes())
    return source


@pytest.mark.slow
@pytest.mark.parametrize("change, message", [
    ({"dataset": "fashion-mnist"}, "data.dataset='fashion-mnist'"),
    ({"val_fraction": 0.2}, "data.val_fraction=0.2"),
    ({"train_limit": 500}, "data.train_limit=500"),
])
def test_a_transfer_source_of_another_dataset_or_size_is_refused_in_one_line(runs, tmp_path, capsys, change, message):
    source = _fake_source(runs, tmp_path, **change)
    code = main(["run", "digits-smoke", "--method", "transfer", "--engine-only", "--set", f"transfer.source={source}",
                 "--set", "prune.rounds=2", "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("source, message", [
    (None, "needs transfer.source"), ("nowhere/0000", "not a run folder"),
])
def test_a_missing_transfer_source_is_refused_in_one_line(tmp_path, capsys, source, message):
    items = ["--set", f"transfer.source={source}"] if source else []
    code = main(["compare", "digits-smoke", "--methods", "prac,transfer", "--engine-only", *items,
                 "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


@pytest.mark.slow
def test_a_transfer_source_without_enough_rounds_is_refused(runs, tmp_path, capsys):
    source = _fake_source(runs, tmp_path)
    code = main(["run", "digits-smoke", "--method", "transfer", "--engine-only", "--set", f"transfer.source={source}",
                 "--set", "prune.rounds=3", "--output-dir", str(tmp_path / "out")])
    assert code == 2 and "has no PrAC set of round 1" in capsys.readouterr().err


@pytest.mark.slow
def test_the_engine_writes_each_rounds_ticket_sparsity_from_its_zeros(runs):
    configs, records = runs
    for method in ("prac", "random-reinit"):
        for record in records[method]:
            report = json.loads((run_paths(configs[method]).round(record["round"]) / "ticket_sparsity.json").read_text())
            assert report["sparsity"] == pytest.approx(record["sparsity"], abs=1e-6)
            assert report["ticket"].endswith("theta_reinit" if method == "random-reinit" else "theta_rewind")
