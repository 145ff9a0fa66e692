"""The comparison as users see it, end to end: `prac-lth compare` (real Prefect in local mode, a real MLflow SQLite
store) prints a link; the comparison run behind it holds the conclusions, tables and figures; the Prefect flow
run shows the summary, the per-sparsity table and the progress; and the link, opened in headless Chromium against
the `mlflow ui` command the CLI printed, shows the headline figure.

Chromium (Debian's /usr/bin/chromium) is not on every machine: without it the browser test is skipped, unless
PRAC_REQUIRE_BROWSER=1 (CI sets it) makes that a failure."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prac_lth.deployments.processes import free_port
from external import CHROMIUM
from prac.reporting import paired
from prac.reporting.comparison import match, per_sparsity
from tests.test_pipeline import BIN, Workspace, _stop, make_workspace

pytestmark = pytest.mark.slow

FIGURES = {"overview", "accuracy", "iterations", "paired_difference", "mask_similarity", "set_sizes", "class_shares",
           "samples"}
# Large enough that MLflow's artifact preview shows the 1540-pixel overview whole at its own size (narrower, it
# scales it down; shorter, its bottom is cut)
WINDOW = "3600,2600"
LINK = re.compile(r"^MLflow comparison run \(figures, tables, metrics\): (http://127\.0\.0\.1:(\d+)/#/experiments/(\w+)/"
                  r"runs/([0-9a-f]{32})/artifacts/figures/overview\.png\?workflowType=machine_learning)$", re.M)
START_UI = re.compile(r"^start the MLflow UI first: (mlflow ui .*)$", re.M)
CHARTS = re.compile(r"^MLflow charts, every method round by round across seeds: (http://127\.0\.0\.1:(\d+)/#/experiments/"
                    r"(\w+)/runs\?viewStateShareKey=[\w-]+&compareRunsMode=CHART&workflowType=machine_learning)$", re.M)


@dataclass
class Compared:
    ws: Workspace
    port: int
    stdout: str
    link: str
    experiment_id: str
    run_id: str


# The command (`compare digits --seeds 0,1 --methods ...`), its schedule cut to CI's time (3 rounds of
# 8 epochs instead of 8 of 30), two experiments at once (the process pool of prac_lth/flows/experiments.py). Four
# methods: the reference, PrAC, and the paper's pruning and data baselines, both at the prac run's budget (each
# method's own behaviour: tests/test_methods.py, tests/test_baselines.py).
METHODS = ["prac", "lt", "synflow", "svp-subset"]
SEEDS = [0, 1]
SHORT = ["--set", "train.epochs=8", "--set", "train.milestones=[6]", "--set", "prune.rounds=3"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Compared:
    ws = make_workspace(tmp_path_factory, "compare-ui")
    port = free_port()
    result = ws.run_ok("compare", "digits", "--seeds", "0,1", "--methods", ",".join(METHODS), *SHORT,
                       "--parallel", "2", env=ws.env(MLFLOW_UI_URL=f"http://127.0.0.1:{port}"))
    found = LINK.search(result.stdout)
    assert found, result.stdout
    link, link_port, experiment_id, run_id = found.groups()
    assert int(link_port) == port
    return Compared(ws, port, result.stdout, link, experiment_id, run_id)


def test_cli_prints_the_link_of_the_comparison_run_after_the_summary(compared):
    client = compared.ws.client()
    (run,) = client.search_runs([client.get_experiment_by_name("prac-lth/digits").experiment_id],
                                filter_string="tags.`prac.kind` = 'comparison'")
    assert (run.info.run_id, run.info.experiment_id) == (compared.run_id, compared.experiment_id)
    assert compared.stdout.index("prac vs lt:") < compared.stdout.index(compared.link)
    charts = CHARTS.search(compared.stdout)
    assert charts and charts.group(3) == compared.experiment_id, compared.stdout[-2000:]
    assert compared.stdout.index(compared.link) < charts.start()
    assert START_UI.search(compared.stdout).group(1) == (
        f"mlflow ui --backend-store-uri {compared.ws.tracking_uri} --host 127.0.0.1 --port {compared.port}")


def test_comparison_run_holds_conclusions_tables_and_figures(compared):
    client = compared.ws.client()
    run = client.get_run(compared.run_id)
    assert run.info.status == "FINISHED"
    local = client.download_artifacts(compared.run_id, "rounds.parquet", str(compared.ws.root / "download"))
    rows = pd.read_parquet(local)
    assert sorted(set(zip(rows["method"], rows["seed"]))) == sorted((m, s) for m in METHODS for s in SEEDS)
    assert sorted(set(rows["round"])) == [0, 1, 2]
    table = per_sparsity(rows.to_dict("records"))
    expected = {}
    for method in METHODS[:1] + METHODS[2:]:
        m = match(table, method)
        conclusions = {"matched_sparsity": m.matched_sparsity, "iteration_saving": m.iteration_saving,
                       "iteration_saving_without_round0": m.iteration_saving_without_round0}
        conclusions = {k: v for k, v in conclusions.items() if v == v}  # NaN (no match on a tiny run): not logged
        expected |= {f"{k}/{method}": v for k, v in conclusions.items()}
        if method == "prac":
            expected |= conclusions
    assert {k: v for k, v in run.data.metrics.items()
            if not k.startswith(("paired_", "noninferior_", "ticket_"))} == expected
    pairs = paired.paired_table(rows.to_dict("records"))
    logged = pd.read_parquet(client.download_artifacts(compared.run_id, "paired.parquet",
                                                       str(compared.ws.root / "download")))
    pd.testing.assert_frame_equal(logged, pairs)
    assert set(zip(pairs["method"], pairs["reference"])) == {
        ("prac", "lt"), ("synflow", "lt"), ("svp-subset", "lt"), ("synflow", "prac"), ("svp-subset", "prac")}
    for (method, reference), own in pairs.groupby(["method", "reference"]):
        assert run.data.metrics[f"paired_rounds_behind/{method}-vs-{reference}"] == (own["verdict"] == "behind").sum()
    # Two at a time, each experiment still has exactly one parent run, and each method's ticket models.
    parents = client.search_runs([compared.experiment_id], filter_string="tags.`prac.kind` = 'experiment'")
    assert sorted((r.data.tags["prac.method"], int(r.data.tags["prac.seed"])) for r in parents) == sorted(
        (m, s) for m in METHODS for s in SEEDS)
    assert all(r.info.status == "FINISHED" for r in parents)
    assert {f.path for f in client.list_artifacts(compared.run_id)} >= {
        "rounds.parquet", "per_sparsity.parquet", "summary.parquet", "paired.parquet", "figures"}
    assert {Path(f.path).stem for f in client.list_artifacts(compared.run_id, "figures")} == FIGURES


def test_each_methods_recommended_trained_ticket_is_printed_logged_and_registered(compared):
    """The ticket to take away: printed under the summary, a table and metrics on the comparison run, and in the
    Model Registry under prac-lth-digits-<method>@best, the trained ticket (ticket-rNN) of that round and seed."""
    client = compared.ws.client()
    download = str(compared.ws.root / "download")
    tickets = pd.read_parquet(client.download_artifacts(compared.run_id, "tickets.parquet", download))
    assert "lt" in set(tickets["method"])  # lt's tickets match the dense network somewhere, even on a tiny run
    assert "the trained ticket to take away" in compared.stdout
    metrics = client.get_run(compared.run_id).data.metrics
    parents = {(r.data.tags["prac.method"], int(r.data.tags["prac.seed"])): r.info.run_id for r in client.search_runs(
        [compared.experiment_id], filter_string="tags.`prac.kind` = 'experiment'")}
    for t in tickets.itertuples():
        assert re.search(rf"^│ {re.escape(t.method)} +│ +{t.round} │", compared.stdout, re.M), compared.stdout[-3000:]
        assert metrics[f"ticket_bytes/{t.method}"] == t.file_bytes == Path(t.file).stat().st_size
        assert metrics[f"ticket_size_ratio/{t.method}"] == pytest.approx(t.dense_bytes / t.file_bytes)
        # the latency is measured once: the printed table, the metrics and the registered model say the same
        assert metrics[f"ticket_latency_us/{t.method}"] == pytest.approx(t.latency_us)
        assert metrics[f"ticket_speedup/{t.method}"] == pytest.approx(t.dense_latency_us / t.latency_us)
        assert re.search(rf"^│ {re.escape(t.method)} .*│ +{t.latency_us:,.1f} µs │ +{t.dense_latency_us / t.latency_us:.2f}× │$",
                         compared.stdout, re.M), compared.stdout[-3000:]
        version = client.get_model_version_by_alias(f"prac-lth-digits-{t.method}", "best")
        model = client.get_logged_model(version.tags["prac.model_id"])
        assert {m.key: m.value for m in model.metrics}["latency_us"] == pytest.approx(t.latency_us)
        assert (model.name, model.tags["prac.kind"], model.source_run_id) == (
            f"ticket-r{t.round:02d}", "trained-ticket", parents[t.method, t.seed])
        assert version.tags["prac.comparison_run"] == compared.run_id


def test_the_baselines_train_at_the_prac_runs_budget_and_each_experiment_says_where_it_ran(compared):
    """Equal budget through the flow: synflow and svp-subset train each round as long, on as many samples, as the
    prac run of their seed; the comparison run says which run, worker and machine each experiment was."""
    client = compared.ws.client()
    download = str(compared.ws.root / "download")
    table = pd.read_json(client.download_artifacts(compared.run_id, "rounds.json", download), orient="split")
    by_round = table.set_index(["method", "seed", "round"])
    for method in ("synflow", "svp-subset"):
        for seed in SEEDS:
            for r in (1, 2):
                for column in ("train_iterations", "train_set_size"):
                    assert by_round.loc[(method, seed, r), column] == by_round.loc[("prac", seed, r), column]
    where = pd.read_parquet(client.download_artifacts(compared.run_id, "experiments.parquet", download))
    parents = {(r.data.tags["prac.method"], int(r.data.tags["prac.seed"])): r.info.run_id for r in
               client.search_runs([compared.experiment_id], filter_string="tags.`prac.kind` = 'experiment'")}
    assert dict(zip(zip(where["method"], where["seed"]), where["run_id"])) == parents
    assert set(where["worker"]) == {"local"} and set(where["host"]) == {socket.gethostname()}
    for method in ("prac", "synflow", "svp-subset"):
        assert f"{method} vs lt" in compared.stdout
    assert "budget: training iterations over all rounds" in compared.stdout
    assert "paired over seeds: ticket accuracy − lt's (points)" in compared.stdout
    assert re.search(r"^svp-subset vs lt, paired over 2 seeds: 95 % interval above −0\.50 points \(non-inferior\) "
                     r"(up to [\d.]+ % sparsity|at no sparsity)$", compared.stdout, re.M), compared.stdout[-3000:]


_READ_ARTIFACTS = """
import json
from prefect import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName

with get_client(sync_client=True) as client:
    (flow_run,) = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["prac-lth-compare"])))
    artifacts = [a for a in client.read_artifacts() if a.flow_run_id == flow_run.id]
    print(json.dumps({"state": flow_run.state.type.value, "artifacts": [
        {"key": a.key, "type": a.type, "data": a.data, "description": a.description} for a in artifacts]}))
"""


def test_prefect_flow_run_shows_summary_table_and_progress(compared):
    """Read back through Prefect's own client, on the flow run's database (a temporary server of its own)."""
    result = subprocess.run([sys.executable, "-c", _READ_ARTIFACTS], cwd=compared.ws.root, env=compared.ws.env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    read = json.loads(result.stdout.strip().splitlines()[-1])
    assert read["state"] == "COMPLETED"
    by_key = {a["key"]: a for a in read["artifacts"]}
    assert {(key, a["type"]) for key, a in by_key.items()} == {
        ("prac-lth-compare-digits-summary", "markdown"), ("prac-lth-compare-digits-per-sparsity", "table"),
        ("prac-lth-compare-digits-paired", "table"), ("prac-lth-compare-digits-progress", "progress")}, read["artifacts"]
    summary = by_key["prac-lth-compare-digits-summary"]
    assert compared.link in summary["data"] and "| prac |" in summary["data"] and "| lt | reference |" in summary["data"]
    assert "## Paired over 2 seed(s)" in summary["data"] and "### against prac" in summary["data"]
    pairs = json.loads(by_key["prac-lth-compare-digits-paired"]["data"])
    assert {(row["method"], row["reference"]) for row in pairs} >= {("prac", "lt"), ("synflow", "prac")}
    assert {"mean_difference", "ci_low", "ci_high", "t_p", "verdict"} <= set(pairs[0])
    table = json.loads(by_key["prac-lth-compare-digits-per-sparsity"]["data"])
    assert sorted((row["method"], row["round"]) for row in table) == sorted((m, r) for m in METHODS for r in range(3))
    assert {"ticket_mean", "ticket_std", "cumulative_iterations", "prac_set_size"} <= set(table[0])
    progress = by_key["prac-lth-compare-digits-progress"]
    count = len(METHODS) * len(SEEDS)
    assert progress["data"] == 100.0 and f"{count} of {count} experiments finished" in progress["description"]


# --------------------------------------------------------------------------------------------------
# The link in a browser


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow ui ended with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow ui not ready at {url} after {timeout} s:\n{log.read_text()[-4000:]}")


def _chromium(root: Path, url: str, *mode: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    profile = root / f"chromium-profile-{time.monotonic_ns()}"  # fresh each time: no state from an earlier load
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={WINDOW}",
               "--virtual-time-budget=20000", *mode, url]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=root)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def find_image(screen: np.ndarray, image: np.ndarray) -> tuple[int, int] | None:
    """Where `image` appears pixel for pixel in `screen` (both RGB uint8), or None. Candidates: the screen's
    pixels of the image's rarest colour on screen; each is checked over the whole image."""
    pack = lambda a: (a[..., 0].astype(np.int64) << 16) | (a[..., 1].astype(np.int64) << 8) | a[..., 2]  # noqa: E731
    screen_codes, image_codes = pack(screen), pack(image)
    colours, counts = np.unique(screen_codes, return_counts=True)
    on_screen = dict(zip(colours.tolist(), counts.tolist()))
    candidates = [c for c in np.unique(image_codes).tolist() if c in on_screen]
    if not candidates:
        return None
    rarest = min(candidates, key=on_screen.get)
    ay, ax = (int(v[0]) for v in np.nonzero(image_codes == rarest))
    h, w = image_codes.shape
    for y, x in np.argwhere(screen_codes == rarest)[:10000]:
        top, left = y - ay, x - ax
        if 0 <= top <= screen_codes.shape[0] - h and 0 <= left <= screen_codes.shape[1] - w:
            if (screen_codes[top:top + h, left:left + w] == image_codes).mean() > 0.99:
                return int(top), int(left)
    return None


@pytest.fixture(scope="module")
def mlflow_ui(compared):
    """`mlflow ui` as the CLI told the user to start it, shared by the browser tests of the module (each start
    costs seconds)."""
    ws, root = compared.ws, compared.ws.root
    start = shlex.split(START_UI.search(compared.stdout).group(1))
    assert start[0] == "mlflow"
    log = root / "mlflow-ui.log"
    server = ws.popen([str(BIN / "mlflow"), *start[1:], "--workers", "1"], log=log)
    try:
        _wait_healthy(f"http://127.0.0.1:{compared.port}", server, log)
        yield
    finally:
        _stop(server)


@pytest.mark.needs("chromium")
def test_the_printed_charts_link_shows_every_method_grouped_over_seeds(compared, mlflow_ui):
    """MLflow's chart view, as the link opens it: the experiments' parent runs only, grouped by method (each
    group its seeds), charts of the per-round metrics."""
    link = CHARTS.search(compared.stdout).group(1)
    dom = ""
    for attempt in range(3):  # a first load can outlast the virtual time budget on a busy machine
        dom = _chromium(compared.ws.root, link, "--dump-dom").stdout
        if "Group by: prac.method" in dom and "Model metrics" in dom:
            break
    assert "Group by: prac.method" in dom, dom[-3000:]
    assert "You're viewing a shared view" in dom
    for method in METHODS:
        assert f"Group: {method}" in dom
        for seed in SEEDS:
            assert f"{method}-seed{seed}" in dom
    comparison = f"compare {','.join(METHODS)} seeds"  # the comparison run's name
    assert "round_00" not in dom and comparison not in dom  # neither the rounds' runs nor the comparison run
    # The charts tab, a chart for each per-round metric of the parent runs (drawn as the page scrolls to them)
    client = compared.ws.client()
    keys = {key for run in client.search_runs([compared.experiment_id], "tags.`prac.kind` = 'experiment'")
            for key in run.data.metrics}
    assert "ticket_test_acc" in keys
    charts = re.search(r"Model metrics</div><div[^>]*>\((\d+)\)</div>", dom)
    assert charts and int(charts.group(1)) == len(keys), (charts and charts.group(0), sorted(keys))


@pytest.mark.needs("chromium")
def test_the_printed_link_shows_the_figures_in_the_mlflow_ui(compared, mlflow_ui):
    ws, root = compared.ws, compared.ws.root
    figure = ws.client().download_artifacts(compared.run_id, "figures/overview.png", str(root / "figure"))
    figure = np.asarray(Image.open(figure).convert("RGB"))
    dom = ""
    for attempt in range(3):  # a first load can outlast the virtual time budget on a busy machine
        dom = _chromium(root, compared.link, "--dump-dom").stdout
        if 'alt="figures/overview.png"' in dom:
            break
    assert re.search(r'<img alt="figures/overview\.png" src="blob:', dom), dom[-3000:]
    shot = root / "mlflow-comparison.png"
    where = None
    for attempt in range(3):
        shot.unlink(missing_ok=True)
        _chromium(root, compared.link, f"--screenshot={shot}")
        if shot.exists():
            where = find_image(np.asarray(Image.open(shot).convert("RGB")), figure)
            if where is not None:
                break
    assert shot.exists(), "Chromium wrote no screenshot"
    assert where is not None, f"the overview figure is not on the screenshot {shot}"
