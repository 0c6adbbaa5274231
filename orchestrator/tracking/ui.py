"""Links into the MLflow UI that open where a user of a sweep wants to be: its trials, in the training view.

MLflow 3.17's UI opens an experiment in its GenAI view (traces, judges, prompts) unless the URL says
`workflowType=machine_learning`; the experiment tag `mlflow.experimentKind` alone does not switch it (checked in
headless Chromium). Its runs page also nests each trial under the launch's parent run, collapsed, but lists runs
flat when they are sorted by a metric. So the printed link filters to this launch's trials, sorts them by test
error (the sweep's leaderboard) and opens the chart view: every trial's curves side by side. The parent run, whose
description holds the report, has a link of its own.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode, urlparse

from orchestrator.contract import PARENT
from orchestrator.tracking.uris import redact_uri

LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def trials_page(experiment_id: str, parent_run_id: str, metric: str = "test_error") -> str:
    """The UI route (after the server's address) of one launch's trials, best first, as charts."""
    query = urlencode({"workflowType": "machine_learning",
                       "searchFilter": f"tags.`{PARENT}` = '{parent_run_id}'",
                       "orderByKey": f"metrics.`{metric}`", "orderByAsc": "true", "compareRunsMode": "CHART"},
                      quote_via=quote)
    return f"#/experiments/{experiment_id}/runs?{query}"


def run_page(experiment_id: str, run_id: str) -> str:
    return f"#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def browse(tracking_uri: str, experiment_id: str, parent_run_id: str) -> str:
    """Where to look: the trials page and the parent run (the report) on the tracking server, or on the
    `mlflow ui` a local store needs started first."""
    if tracking_uri.startswith(("http://", "https://")):
        parts = urlparse(tracking_uri)  # no credentials in a link: the browser asks for its own
        server, start = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl().rstrip("/"), ""
    else:
        server, start = LOCAL_UI, f"`mlflow ui --backend-store-uri {redact_uri(tracking_uri)}`, then "
    return (f"{start}the trials: {server}/{trials_page(experiment_id, parent_run_id)}  the report: "
            f"{server}/{run_page(experiment_id, parent_run_id)}")


def browse_hint(tracking_uri: str, parent_run_id: str) -> str:
    """`browse` for a launch, asking the server for its experiment; a server away right now gets the general hint."""
    from orchestrator.tracking.server import quick_requests
    from orchestrator.tracking.uris import ui_command
    from orchestrator.tracking.writer import Tracker

    try:
        with quick_requests():
            experiment_id = Tracker(tracking_uri).client.get_run(parent_run_id).info.experiment_id
    except Exception:  # noqa: BLE001
        return ui_command(tracking_uri)
    return browse(tracking_uri, experiment_id, parent_run_id)
