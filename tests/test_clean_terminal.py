"""A clean terminal (issue 39): the demo's command, run as the README says, prints no library warning and no
traceback on stderr, and what the README's excerpt of its output shows; and the MLflow chart view that a comparison links opens on what a reader compares first."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from prac.imp.round_record import RoundRecord
from prac_lth.tasks import chart_view, tracking
from tests.mlflow_store import temporary_store
from tests.prefect_homes import migrated_prefect_home

PRAC_LTH = str(Path(sys.executable).parent / "prac-lth")
DEMO = ["run", "digits", "--method", "prac"]  # README's first command
# Eight rounds of the digits preset: 78 s here with one OpenMP thread while another test run shared the 2 cores
# (15 min with OpenMP's default 2 threads, as a user's terminal runs it, on those same busy cores)
DEMO_TIMEOUT_S = 1200
README_COLUMNS = ["round", "sparsity", "conv", "linear", "output", "PrAC set", "epochs", "iterations", "cumulative",
                  "model acc", "ticket acc", "next set", "CET", "CEP"]


def user_env(prefect_home: Path) -> dict[str, str]:
    """A user's terminal: no PYTHONWARNINGS (Python's default filters show every library warning), no MLflow or
    Prefect settings (MLflow tracks to ./mlflow.db in the working directory); a Prefect home whose database is made
    already (only to save the migrations' time), one OpenMP thread (tests/conftest.py says why)."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONWARNINGS" and not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(PREFECT_HOME=str(migrated_prefect_home(prefect_home)), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               OMP_NUM_THREADS="1")
    return env


@pytest.mark.slow
def test_the_demo_prints_no_warning_on_stderr(tmp_path):
    cwd = tmp_path / "demo"
    cwd.mkdir()
    proc = subprocess.Popen([PRAC_LTH, *DEMO], cwd=cwd, env=user_env(tmp_path / "prefect-home"), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=DEMO_TIMEOUT_S)
    finally:
        try:  # the run and anything it left (Prefect's temporary server) in its own process group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 0, (out[-2000:], err[-4000:])
    assert (cwd / "mlflow.db").is_file()  # tracked where a user's run tracks, by default
    noisy = [line for line in err.splitlines() if "Warning" in line or "Traceback" in line]
    assert not noisy, "\n".join(noisy)
    # What the README's excerpt of the demo shows: a line per round, then the table with its columns
    assert len(re.findall(r"Flow run 'prac-seed0' - round \d: sparsity 0\.\d{3} \| trained on \d+ for \d+ epochs", err)) == 8
    header = next(line for line in out.splitlines() if "round" in line and "sparsity" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == README_COLUMNS, header
    assert re.search(r"^schedule scaling: epochs; outputs in prac-runs/digits/[0-9a-f]{16}$", out, re.M), out[-1000:]


def test_the_chart_view_opens_on_the_ticket_accuracy_then_the_cumulative_iterations():
    order = chart_view.chart_order(chart_view.VIEW)
    assert order[:3] == ["ticket_test_acc", "cumulative_iterations", "sparsity"], order
    # Every per-round metric of a parent run has its chart, once: none is left for MLflow to place
    metrics = [f.name for f in dataclasses.fields(RoundRecord) if f.name != "round"]
    assert sorted(order) == sorted(metrics), (order, metrics)


def test_the_chart_view_state_is_one_mlflow_honours_the_order_of():
    """As MLflow's UI (3.x) reads the state: cards kept in the order given, each in a section of the state; a metric
    the cards miss is appended to its section's end only where the section is marked reordered (else spliced in
    alphabetically); the state survives the JSON of the experiment tag."""
    view = json.loads(json.dumps(chart_view.VIEW, sort_keys=True))
    sections = {s["uuid"]: s for s in view["compareRunSections"]}
    assert {s["name"] for s in sections.values()} == {"Model metrics", "System metrics"}
    for card in view["compareRunCharts"]:
        assert card["type"] == "LINE" and card["displayName"] == card["metricKey"], card  # each round is a step
        assert sections[card["metricSectionId"]]["name"] == "Model metrics", card
    assert all(s["isReordered"] for s in sections.values() if s["name"] == "Model metrics")
    assert len({card["uuid"] for card in view["compareRunCharts"]}) == len(view["compareRunCharts"])
    assert chart_view.chart_order(view) == list(chart_view.CHART_ORDER)


def test_the_shared_view_on_the_experiment_keeps_the_order(tmp_path_factory):
    with temporary_store(tmp_path_factory) as (_, _, client):
        experiment_id = tracking.ensure_experiment("digits-smoke")
        chart_view.share_methods_view(experiment_id)
        value = client.get_experiment(experiment_id).tags[chart_view.SHARED_VIEW_TAG + chart_view.SHARE_KEY]
        assert chart_view.chart_order(json.loads(value))[:2] == ["ticket_test_acc", "cumulative_iterations"]
