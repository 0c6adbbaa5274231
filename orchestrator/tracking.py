"""The one place that writes MLflow: the layout PRODUCT.md promises (contract 2 in the project's notes).

experiment = the sweep's `experiment` or `name`; one parent run per launch (tags resnet_sweeps.role=sweep,
resnet_sweeps.sweep=NAME); one child run per trial, found again by its tag resnet_sweeps.trial_id under the
parent, so a resumed sweep never opens a duplicate. Metrics go in batches (one `log_batch` per epoch) with
step = iteration; a child's tag resnet_sweeps.last_step keeps steps from being logged twice after a restart.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

import yaml

from resnet_core.specio import flatten

TAG = "resnet_sweeps."
ROLE, SWEEP, TRIAL_ID, STATE, LAST_STEP, STARTS = (TAG + k for k in
                                                   ("role", "sweep", "trial_id", "state", "last_step", "starts"))
PARENT = "mlflow.parentRunId"
EPOCH_METRICS = ("train_loss", "train_error", "test_error", "val_error", "lr", "images_per_sec", "epoch_time",
                 "epoch", "test_top5_error", "val_top5_error")  # logged when the trial reports them
TERMINAL_STATES = ("finished", "diverged", "failed")


def default_tracking_uri() -> str:
    """A SQLite store in the working directory: `mlflow ui --backend-store-uri sqlite:///mlruns.db` shows it."""
    return f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def redact_uri(uri: str) -> str:
    """The URI with any password in it replaced by ***, for everything printed (http://u:TOKEN@host -> u:***)."""
    parts = urlparse(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def ui_command(tracking_uri: str) -> str:
    shown = redact_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {shown} in a browser"
    return f"mlflow ui --backend-store-uri {shown}"


def _artifact_root(tracking_uri: str) -> Path | None:
    """Artifacts of a SQLite store sit beside the database (MLflow's default is ./mlruns of the current dir)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(urlparse(tracking_uri).path).parent / "mlartifacts"


class Tracker:
    """A thin, picklable wrapper over MlflowClient for one tracking URI (the client is made on first use)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "_client": None}

    @property
    def client(self) -> Any:
        if self._client is None:
            for name in ("mlflow", "alembic"):  # table creation/migration chatter on a new SQLite store
                logging.getLogger(name).setLevel(logging.WARNING)
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    # -- sweep (parent) -------------------------------------------------------------------------------------

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return found.experiment_id
        root = _artifact_root(self.tracking_uri)
        location = (root / name).as_uri() if root else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created meanwhile by another driver
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def start_sweep(self, experiment: str, sweep_name: str, sweep_dict: dict[str, Any], trial_count: int,
                    tags: dict[str, str]) -> str:
        """Create the launch's parent run with the sweep file as an artifact; returns its run id."""
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id(experiment), run_name=f"{sweep_name}-sweep",
                                     tags={ROLE: "sweep", SWEEP: sweep_name, STATE: "running", **tags})
        run_id = run.info.run_id
        params = {"sweep.name": sweep_name, "sweep.trials": trial_count, "report": sweep_dict.get("report") or [],
                  **{f"sweep.{k}": v for k, v in flatten({k: sweep_dict[k] for k in
                     ("resources", "scheduler", "search", "max_failures", "max_concurrent", "seeds")}).items()}}
        self.client.log_batch(run_id, params=[Param(k, _param(v)) for k, v in params.items()])
        self.client.log_text(run_id, yaml.safe_dump(sweep_dict, sort_keys=False), "sweep.yaml")
        return run_id

    def reopen_sweep(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, STATE, "running")

    def end_sweep(self, run_id: str, state: str) -> None:
        self.client.set_tag(run_id, STATE, state)
        self.client.set_terminated(run_id, "FINISHED" if state == "finished" else
                                   "KILLED" if state == "interrupted" else "FAILED")

    # -- trials (children) ----------------------------------------------------------------------------------

    def find_trial_run(self, parent_run_id: str, trial_id: str) -> Any | None:
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        runs = self.client.search_runs([experiment_id], max_results=2, order_by=["attributes.start_time ASC"],
                                       filter_string=f"tags.`{PARENT}` = '{parent_run_id}' and "
                                                     f"tags.`{TRIAL_ID}` = '{trial_id}'")
        return runs[0] if runs else None

    def trial_run(self, parent_run_id: str, trial: dict[str, Any], model_cost: dict[str, int]) -> tuple[str, int]:
        """The child run of `trial` ({id, name, spec}) under the parent: found, or created with its params and
        config.yaml. Returns (run id, last logged step; -1 for none)."""
        from mlflow.entities import Param

        found = self.find_trial_run(parent_run_id, trial["id"])
        if found is not None:
            # MLflow's log_batch commits metrics and tags in separate transactions: a driver killed between the
            # two leaves the last_step tag behind the metrics, so the metric history itself has the last word.
            logged = [m.step for m in self.client.get_metric_history(found.info.run_id, "train_loss")]
            return found.info.run_id, max([int(found.data.tags.get(LAST_STEP, -1)), *logged])
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        run = self.client.create_run(experiment_id, run_name=trial["name"], tags={
            PARENT: parent_run_id, ROLE: "trial", TRIAL_ID: trial["id"], STATE: "pending", LAST_STEP: "-1",
            STARTS: "0"})
        run_id = run.info.run_id
        params = {**flatten(trial["spec"]), **{f"model.{k}": v for k, v in model_cost.items()}}
        items = [Param(k, _param(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=items[i:i + 100])
        self.client.log_text(run_id, yaml.safe_dump(trial["spec"], sort_keys=False), "config.yaml")
        return run_id, -1

    def trial_started(self, run_id: str, starts: int, tags: dict[str, str] | None = None) -> None:
        from mlflow.entities import RunTag

        self.client.update_run(run_id, status="RUNNING")
        self.client.log_batch(run_id, tags=[RunTag(STATE, "running"), RunTag(STARTS, str(starts)),
                                            *(RunTag(k, v) for k, v in (tags or {}).items())])

    def log_epochs(self, run_id: str, results: Iterable[dict[str, Any]], tags: dict[str, str] | None = None) -> int:
        """One batch for the given epoch results (step = iteration); returns the last step logged."""
        from mlflow.entities import Metric, RunTag

        metrics, last = [], -1
        stamp = int(time.time() * 1000)  # logging time: Tune's result timestamps are whole seconds
        for result in results:
            step = int(result["iteration"])
            metrics += [Metric(k, float(result[k]), stamp, step) for k in EPOCH_METRICS
                        if _number(result.get(k))]
            last = max(last, step)
        if metrics or tags:
            self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(LAST_STEP, str(last)),
                                                                 *(RunTag(k, v) for k, v in (tags or {}).items())])
        return last

    def end_trial(self, run_id: str, state: str, final: dict[str, Any] | None,
                  layer_names: list[str] | None = None, error: str | None = None) -> None:
        """State tag, final_ metrics, Figure 7 statistics; the MLflow status FINISHED only for `finished`."""
        from mlflow.entities import Metric, RunTag

        final = final or {}
        now = int(time.time() * 1000)
        step = int(final.get("iteration", 0) or 0)
        metrics = [Metric(f"final_{k}", float(final[k]), now, step) for k in EPOCH_METRICS
                   if _number(final.get(k))]
        tags = [RunTag(STATE, state)]
        if error:
            tags.append(RunTag(TAG + "error", error[:4000]))
        if state == "diverged":
            tags.append(RunTag(TAG + "diverged_at_iteration", str(final.get("diverged_at_iteration", step))))
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        stds = final.get("layer_response_std")
        if stds:
            names = layer_names if layer_names and len(layer_names) == len(stds) else \
                [f"layer{i}" for i in range(len(stds))]
            self.client.log_text(run_id, json.dumps({"layers": names, "std": [float(s) for s in stds]}),
                                 "layer_responses.json")
        self.client.set_terminated(run_id, "FINISHED" if state == "finished" else "FAILED")

    def trial_runs(self, parent_run_id: str) -> list[Any]:
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        return list(self.client.search_runs([experiment_id], filter_string=f"tags.`{PARENT}` = '{parent_run_id}'",
                                            max_results=10000))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _param(value: Any) -> str:
    """MLflow params are strings: lists as JSON, booleans as true/false, None as None (as str() writes it)."""
    text = json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
    return text[:6000]
