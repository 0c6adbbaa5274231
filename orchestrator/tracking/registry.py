"""A sweep's best trial's model into MLflow's Model Registry, with the alias `champion` pointing at it.

The best trial is the finished child run of the sweep's latest launch with the lowest latest value of `metric`
(errors and losses: lower is better) among those that have a model; its `best` model when it has one, else its
`final` one. Registering the same model again adds no version: the alias moves to the version that holds it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.contract import CHAMPION, FINISHED, MODEL_KINDS, MODEL_TAG, STATE, SYSTEM
from orchestrator.errors import CliError
from orchestrator.tracking.runs import child_runs, latest_parent, mlflow_client
from orchestrator.tracking.uris import redact_uri


@dataclass(frozen=True)
class Registered:
    """What `register` did: the registered model's name and version, and the trial and model it holds."""

    name: str
    version: str
    run_name: str
    run_id: str
    model_id: str
    kind: str  # final | best
    metric: str
    value: float

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{CHAMPION}"


def register_best(tracking_uri: str, sweep: str, metric: str = "test_error",
                  model_name: str | None = None) -> Registered:
    """Register the model of sweep `sweep`'s best trial by `metric` as `model_name` (default: the sweep's name)
    and point its `champion` alias at it. CliError when the sweep or any trial with a model is missing."""
    client = mlflow_client(tracking_uri)
    parent = latest_parent(client, sweep)
    if parent is None:
        raise CliError(f"no sweep {sweep!r} in the MLflow store {redact_uri(tracking_uri)}")
    runs = child_runs(client, [parent.info.experiment_id], parent.info.run_id)
    candidates = [(run.data.metrics[metric], run) for run in runs if run.data.tags.get(STATE) == FINISHED
                  and metric in run.data.metrics and _model_kind(run)]
    if not candidates:
        measured = sorted({k for run in runs for k in run.data.metrics if not k.startswith(SYSTEM)})
        raise CliError(f"sweep {sweep!r}: no finished trial with a model and a {metric!r} metric (its runs have "
                       f"{', '.join(measured) or 'no metrics'}; models are logged unless tracking.models is none)")
    value, best = min(candidates, key=lambda c: c[0])
    kind = _model_kind(best)
    model_id = best.data.tags[MODEL_TAG + kind]
    name = model_name or sweep
    version = _version_holding(client, name, model_id, best.info.run_id)
    client.set_registered_model_alias(name, CHAMPION, version)
    return Registered(name, version, best.info.run_name, best.info.run_id, model_id, kind, metric, value)


def _model_kind(run: Any) -> str | None:
    """The run's model to register: `best` when it has one, else `final`; None without a model."""
    for kind in reversed(MODEL_KINDS):
        if run.data.tags.get(MODEL_TAG + kind):
            return kind
    return None


def _version_holding(client: Any, name: str, model_id: str, run_id: str) -> str:
    """The registered model's version holding `model_id`, created (and the registered model with it) if need be."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="The best trial's model of the sweep, as "
                                                         "`resnet-sweep register` chose it (alias champion).")
    # The model's artifact location, not models:/ID: MLflow's SQL registry resolves that URI against the process's
    # default tracking URI rather than this client's
    source = client.get_logged_model(model_id).artifact_location
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.source == source:
            return version.version
    return client.create_model_version(name, source, run_id=run_id, model_id=model_id).version
