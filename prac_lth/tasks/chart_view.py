"""Every method round by round across seeds in MLflow's own chart view, without building charts by hand: a
shared view of the experiment (MLflow's "share view": an experiment tag mlflow.sharedViewState.<key> holding the
view's state, opened by a link with ?viewStateShareKey=<key>) that shows the experiments' parent runs only, grouped
by their method tag, each group's mean (MLflow draws the min–max band around it), on the charts tab."""
from __future__ import annotations

import json

from prac_lth.tasks import tracking

SHARE_KEY = "prac-lth-methods"
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # MLflow's UI reads the view state from this experiment tag
VIEW = {
    "searchFilter": "tags.`prac.kind` = 'experiment'",  # not the rounds' child runs nor the comparison runs
    "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "prac.method"}]},
    "useGroupedValuesInCharts": True,
}


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
