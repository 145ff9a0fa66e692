"""The comparison run in MLflow (a temporary SQLite store): conclusions as metrics equal to prac.reporting.comparison.match,
tables as Parquet, figures under figures/, all logged again without duplicates; and the link users open."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from prac.reporting import paired
from prac.reporting.comparison import match, per_sparsity
from prac.reporting.report import method_summary, summary_markdown
from prac_lth.tasks import comparison_logging, tracking, tracking_runs
from tests import synthetic_runs as synthetic
from tests.mlflow_store import temporary_store

FIGURES = ["accuracy", "class_shares", "iterations", "mask_similarity", "overview", "paired_difference", "samples",
           "set_sizes"]
IDENTITY = ("digits-smoke", list(synthetic.METHODS), list(synthetic.SEEDS), ["prune.rounds=4"])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with temporary_store(tmp_path_factory) as (root, _, client):
        yield root, client


@pytest.fixture(scope="module")
def logged(store):
    """The synthetic comparison logged once: (experiment id, run id, figure paths)."""
    root, _ = store
    configs = synthetic.write_runs(root / "runs")
    experiment_id = tracking.ensure_experiment("digits-smoke")
    run_id = tracking_runs.comparison_run(experiment_id, *comparison_logging.identity(*IDENTITY))
    paths = comparison_logging.log_comparison(run_id, synthetic.ROWS, configs, "synthetic")
    tracking.finish_run(run_id)
    return experiment_id, run_id, paths, configs


def test_conclusions_are_metrics_equal_to_the_match_with_lt(store, logged):
    _, client = store
    _, run_id, _, _ = logged
    metrics = client.get_run(run_id).data.metrics
    prac = match(per_sparsity(synthetic.ROWS), "prac")
    expected = {"matched_sparsity": prac.matched_sparsity, "iteration_saving": prac.iteration_saving,
                "iteration_saving_without_round0": prac.iteration_saving_without_round0}
    assert expected["matched_sparsity"] == pytest.approx(0.488)  # the table has a match to log
    matched = {k: v for k, v in metrics.items() if not k.startswith(("paired_", "noninferior_"))}
    assert matched == {**expected, **{f"{k}/prac": v for k, v in expected.items()}}  # random matched nowhere: NaN
    # paired over seeds: prac is behind lt at round 3 only (at round 1, outside lt's std, 3 seeds resolve no
    # difference: [−0.5, −1.5, −2.5] points), random behind everywhere
    assert metrics["paired_rounds_behind/prac-vs-lt"] == 1 and metrics["paired_rounds_ahead/prac-vs-lt"] == 0
    assert metrics["paired_rounds_behind/random-vs-lt"] == 4 and metrics["paired_rounds_behind/random-vs-prac"] == 4
    # prac's round-0 interval [0, −0.01, −0.01] reaches below −0.5 points: non-inferior nowhere, so not logged
    assert "noninferior_sparsity/prac" not in metrics and "noninferior_sparsity" not in metrics
    pairs = paired.paired_table(synthetic.ROWS)
    assert metrics["paired_half_width/prac-vs-lt"] == pytest.approx(
        pairs[(pairs["method"] == "prac") & (pairs["reference"] == "lt")]["half_width"].median())
    for key in metrics:
        assert [m.step for m in client.get_metric_history(run_id, key)] == [0]


def test_tables_are_parquet_that_load_table_reads_back(store, logged):
    _, client = store
    experiment_id, run_id, _, _ = logged
    table = per_sparsity(synthetic.ROWS)

    def load(name: str) -> pd.DataFrame:
        return client.load_table(experiment_id, name, run_ids=[run_id])

    pd.testing.assert_frame_equal(load("rounds.parquet"), pd.DataFrame(synthetic.ROWS))
    pd.testing.assert_frame_equal(load("per_sparsity.parquet"), table)
    summary = load("summary.parquet").set_index("method")
    assert list(summary.index) == ["lt", "prac", "random"]
    assert summary.loc["prac", "iteration_saving"] == pytest.approx(match(table, "prac").iteration_saving)
    assert math.isnan(summary.loc["random", "matched_sparsity"]) and math.isnan(summary.loc["lt", "matched_sparsity"])
    pairs = paired.paired_table(synthetic.ROWS)
    pd.testing.assert_frame_equal(summary.reset_index(), method_summary(table, pairs))
    pd.testing.assert_frame_equal(load("paired.parquet"), pairs)
    assert {f.path for f in client.list_artifacts(run_id)} >= {"rounds.parquet", "per_sparsity.parquet",
                                                               "summary.parquet", "paired.parquet", "rounds.json",
                                                               "figures"}


def test_figures_are_pngs_under_figures(store, logged, tmp_path):
    _, client = store
    _, run_id, paths, _ = logged
    assert sorted(paths) == [f"figures/{name}.png" for name in FIGURES]
    assert sorted(f.path for f in client.list_artifacts(run_id, "figures")) == sorted(paths)
    for path in paths:
        image = plt.imread(client.download_artifacts(run_id, path, str(tmp_path)))
        assert image.shape[0] > 200 and image.shape[1] > 400 and image[..., :3].std() > 0.05


def test_logging_again_finds_the_run_and_duplicates_nothing(store, logged, tmp_path):
    _, client = store
    experiment_id, run_id, paths, configs = logged
    again = tracking_runs.comparison_run(experiment_id, *comparison_logging.identity(*IDENTITY))
    assert again == run_id
    histories = {k: len(client.get_metric_history(run_id, k)) for k in client.get_run(run_id).data.metrics}
    sizes = {f.path: f.file_size for f in client.list_artifacts(run_id, "figures")}
    assert comparison_logging.log_comparison(run_id, synthetic.ROWS, configs, "synthetic") == paths
    tracking.finish_run(run_id)
    assert {k: len(client.get_metric_history(run_id, k)) for k in histories} == histories
    assert {f.path: f.file_size for f in client.list_artifacts(run_id, "figures")} == sizes  # replaced, same bytes
    runs = client.search_runs([experiment_id], "tags.`prac.kind` = 'comparison'")
    assert [r.info.run_id for r in runs] == [run_id]
    # A changed conclusion is a new value at the next step, not a second value at step 0
    assert tracking.log_metrics(run_id, {"iteration_saving": 0.5, "matched_sparsity": math.nan}) == ["iteration_saving"]
    assert [m.step for m in client.get_metric_history(run_id, "iteration_saving")] == [0, 1]
    assert client.get_run(run_id).data.metrics["iteration_saving"] == 0.5


def test_link_opens_the_headline_figure_in_the_machine_learning_view(store, logged, monkeypatch):
    experiment_id, run_id, _, _ = logged
    link = comparison_logging.find_link(*IDENTITY)
    assert link == (f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}/artifacts/figures/overview.png"
                    "?workflowType=machine_learning")
    assert tracking.ui_command() == (f"mlflow ui --backend-store-uri {tracking.tracking_uri()} "
                                     "--host 127.0.0.1 --port 5000")
    assert comparison_logging.find_link("digits-smoke", ["prac"], [7], None) is None  # never logged
    assert comparison_logging.find_link("no-such-preset", ["prac"], [0], None) is None
    monkeypatch.setenv("MLFLOW_UI_URL", "http://10.0.0.5:8080/")
    assert link.replace("http://127.0.0.1:5000", "http://10.0.0.5:8080") == comparison_logging.find_link(*IDENTITY)
    assert tracking.ui_command().endswith("--host 10.0.0.5 --port 8080")
    # a tracking server is its own UI, nothing to start
    assert tracking.run_link("1", "abc", uri="https://mlflow.example.org/") == \
        "https://mlflow.example.org/#/experiments/1/runs/abc?workflowType=machine_learning"
    assert tracking.ui_command("http://127.0.0.1:5001") is None


def test_summary_markdown_names_every_method_and_links_the_run():
    table = per_sparsity(synthetic.ROWS)
    text = summary_markdown("synthetic", table, "http://ui/#/run", "mlflow ui --backend-store-uri sqlite:///x.db")
    assert "| prac | 48.8 % (20.0 %) | 70.0 % | 85.0 % | 90 (300) |" in text
    assert "| lt | reference |" in text and "| random | nowhere |" in text
    assert "[the comparison run in MLflow](http://ui/#/run)" in text and "`mlflow ui --backend-store-uri" in text
    assert "Dense network (round 0, best validation): **88.0 %**" in text
    assert "## Paired" not in text  # only where the pairs are given
    with_pairs = summary_markdown("synthetic", table, pairs=paired.paired_table(synthetic.ROWS))
    assert "### against lt" in with_pairs and "### against prac" in with_pairs
    assert "- random vs lt, paired over 3 seeds: 95 % interval above −0.50 points (non-inferior) at no sparsity" \
        in with_pairs


def test_a_margin_other_than_the_default_names_another_comparison_run():
    name, params = comparison_logging.identity(*IDENTITY)
    assert "noninferiority_margin" not in params  # runs logged before the margin existed are found again
    assert comparison_logging.identity(*IDENTITY, margin=0.01)[1]["noninferiority_margin"] == "0.01"
