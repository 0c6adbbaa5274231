"""The MLflow client, and the queries the writer, the report reader and `register` share: a sweep's latest launch
(its parent run) and a launch's trial runs.

A sweep of thousands of trials is read whole: the query pages through MLflow's results with its page token instead
of trusting one page's limit to be large enough.
"""
from __future__ import annotations

import logging
from typing import Any

from orchestrator.contract import PARENT, ROLE, SWEEP, SWEEP_ROLE, TRIAL_ROLE

PAGE_SIZE = 1000  # runs per search_runs request: MLflow's own default page


def mlflow_client(tracking_uri: str | None) -> Any:
    """An MlflowClient for `tracking_uri` (None: MLflow's default), with MLflow's and alembic's INFO lines off: the
    table creation and migration chatter of a new SQLite store would interleave with what the command prints."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def child_runs(client: Any, experiment_ids: list[str], parent_run_id: str) -> list[Any]:
    """Every trial run (child) of the parent run `parent_run_id`, oldest first, all pages of them. A child without
    a role tag counts as a trial; one tagged with another role does not."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string=f"tags.`{PARENT}` = '{parent_run_id}'",
                                  max_results=PAGE_SIZE, order_by=["attributes.start_time ASC"], page_token=token)
        runs += [run for run in page if run.data.tags.get(ROLE, TRIAL_ROLE) == TRIAL_ROLE]
        token = page.token
        if not token:
            return runs


def latest_parent(client: Any, name: str) -> Any | None:
    """The parent run of sweep `name`'s latest launch (None: the store has none), found by its sweep tag: in the
    experiment named like the sweep first, then in any (a sweep logged under another experiment name)."""
    query = f"tags.`{ROLE}` = '{SWEEP_ROLE}' AND tags.`{SWEEP}` = '{name}'"
    experiment = client.get_experiment_by_name(name)
    ids = [experiment.experiment_id] if experiment is not None else []
    ids += [e.experiment_id for e in client.search_experiments() if e.experiment_id not in ids]
    for experiment_ids in ([ids[0]] if ids else [], ids):
        if not experiment_ids:
            continue
        runs = client.search_runs(experiment_ids, filter_string=query, max_results=1,
                                  order_by=["attributes.start_time DESC"])
        if runs:
            return runs[0]
    return None
