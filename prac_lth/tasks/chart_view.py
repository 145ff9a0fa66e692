"""Every method round by round across seeds in MLflow's own chart view, without building charts by hand: a
shared view of the experiment (MLflow's "share view": an experiment tag mlflow.sharedViewState.<key> holding the
view's state, opened by a link with ?viewStateShareKey=<key>) that shows the experiments' parent runs only, grouped
by their method tag, each group's mean (MLflow draws the min–max band around it), on the charts tab, its charts in
CHART_ORDER."""
from __future__ import annotations

import dataclasses
import json

from prac.imp.round_record import RoundRecord
from prac_lth.tasks import tracking

SHARE_KEY = "prac-lth-methods"
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # MLflow's UI reads the view state from this experiment tag

# The charts' order: what a reader compares first, the ticket's test accuracy and the training it cost (cumulative
# iterations), then the round's other metrics as the round record lists them (sparsity first). Left to itself
# MLflow's UI orders the charts alphabetically (best_val_acc, cep_size, cet_size, ...).
LEADING_CHARTS = ("ticket_test_acc", "cumulative_iterations")
CHART_ORDER = LEADING_CHARTS + tuple(
    f.name for f in dataclasses.fields(RoundRecord) if f.name != "round" and f.name not in LEADING_CHARTS)

# How MLflow's UI (3.x) honours an order: the view state's compareRunCharts, a list of chart cards, is kept as
# given; a metric none of them shows gets a card of its own, spliced in alphabetically unless its section
# (compareRunSections) is marked isReordered, then appended at the end. MLflow's own section names: metrics without
# a prefix are "Model metrics", system/... "System metrics".
MODEL_SECTION, SYSTEM_SECTION = "Model metrics", "System metrics"
_SECTION_ID = {MODEL_SECTION: "prac-lth-model-metrics", SYSTEM_SECTION: "prac-lth-system-metrics"}


def _line_chart(metric: str) -> dict:
    """A card as MLflow's UI builds one for a metric logged per step (LINE; each round is a step), serialized."""
    return {"uuid": f"prac-lth-chart-{metric}", "type": "LINE", "metricKey": metric, "displayName": metric,
            "metricSectionId": _SECTION_ID[MODEL_SECTION], "isGenerated": True, "deleted": False,
            "runsCountToCompare": 10, "lineSmoothness": 0, "xAxisScaleType": "linear", "scaleType": "linear",
            "range": {}, "xAxisKey": "step", "selectedXAxisMetricKey": "", "yAxisKey": "metric",
            "yAxisExpressions": [], "ignoreOutliers": False, "useGlobalXaxisKey": True, "useGlobalLineSmoothing": True}


VIEW = {
    "searchFilter": "tags.`prac.kind` = 'experiment'",  # not the rounds' child runs nor the comparison runs
    "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "prac.method"}]},
    "useGroupedValuesInCharts": True,
    "compareRunCharts": [_line_chart(metric) for metric in CHART_ORDER],
    "compareRunSections": [{"uuid": _SECTION_ID[name], "name": name, "display": True, "deleted": False,
                            "isGenerated": True, "isReordered": name == MODEL_SECTION}
                           for name in (MODEL_SECTION, SYSTEM_SECTION)],
}


def chart_order(view: dict) -> list[str]:
    """The metrics in the order `view` (a shared view state) shows their charts."""
    return [card["metricKey"] for card in view.get("compareRunCharts", []) if card.get("metricKey")]


def share_methods_view(experiment_id: str) -> None:
    """Store the view on the experiment (once; the same for every comparison in it)."""
    c, value = tracking.client(), json.dumps(VIEW, sort_keys=True)
    if c.get_experiment(experiment_id).tags.get(SHARED_VIEW_TAG + SHARE_KEY) != value:
        c.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + SHARE_KEY, value)


def methods_chart_link(experiment_id: str) -> str:
    return (f"{tracking.ui_url()}/#/experiments/{experiment_id}/runs?viewStateShareKey={SHARE_KEY}"
            f"&compareRunsMode=CHART&{tracking.MACHINE_LEARNING_VIEW}")


def find_methods_chart_link(preset: str) -> str | None:
    """The link, if a comparison of this preset shared the view (for the CLI, after the flow)."""
    experiment = tracking.client().get_experiment_by_name(tracking.experiment_name(preset))
    if experiment is None or SHARED_VIEW_TAG + SHARE_KEY not in experiment.tags:
        return None
    return methods_chart_link(experiment.experiment_id)
