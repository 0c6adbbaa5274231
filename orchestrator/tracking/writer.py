"""The one place that writes MLflow, in the layout orchestrator/contract.py names.

experiment = the sweep's `experiment` or `name`; one parent run per launch; one child run per trial, found again by
its TRIAL_ID tag under the parent, so a resumed sweep never opens a duplicate. A child run is a view
of the trial's record (orchestrator/records/trial_record.py), brought up to date by one idempotent operation,
`Tracker.sync_trial`, which the live callback (orchestrator/running/mlflow_callback.py), the sweep's end and
`resume` all call: epochs as metrics with step = iteration, stamped with the time the trial recorded them, so
sending one again adds nothing; a finished trial's model(s) (tracking/models.py) and data sets (tracking/datasets.py)
once. How long to wait for the server, and what its silence means: tracking/server.py.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from orchestrator.contract import (DIVERGED, DIVERGED_AT, EPOCHS, ERROR, EXPERIMENT_KIND, FAILED,
                                   FINISHED, LAST_ERROR, LAST_STEP, LAYER_RESPONSES, MODEL_MACS, MODELS_PARAM,
                                   NOT_METRICS, NOTE, PARENT, PENDING, REPORTS_PARAM, ROLE, START_TAGS, STARTS, STATE,
                                   STOPPED, SWEEP, SWEEP_FILE, SWEEP_ROLE, SYSTEM, SYSTEM_SAMPLE, TAG, TERMINAL_STATES,
                                   TRIAL_ID, TRIAL_ROLE, WALL_TIME)
from orchestrator.contract import EXPLOIT_COUNT, EXPLOITS
from orchestrator.contract import RUNG_FIELDS
from orchestrator.records import trial_record
from orchestrator.tracking import datasets, models
from orchestrator.tracking.runs import child_runs, mlflow_client
from orchestrator.tracking.server import quick_requests, unreachable, why_unreachable
from orchestrator.tracking.uris import redact_uri
from resnet_core import yaml12
from resnet_core.specio import flatten

EPOCHS_PER_BATCH = 50  # epochs per round of log_batch calls
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit per log_batch (an epoch with a fine training curve has dozens)
# The MLflow status a trial's child run ends with, for each state that ends a start (any other state: RUNNING)
END_STATUS = {FINISHED: "FINISHED", DIVERGED: "FAILED", FAILED: "FAILED", STOPPED: "KILLED"}


class TrialRun(NamedTuple):
    """What the server has of a trial's child run: its id, last step (-1: none), our tags and its status."""
    run_id: str
    last_step: int
    tags: dict[str, str]
    status: str


class Tracker:
    """A thin wrapper over MlflowClient for one tracking URI (the client is made on first use)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self._client: Any = None
        self.runs: dict[str, TrialRun] = {}  # trial id -> what the server has of its run, as far as we know
        self._parents: dict[str, tuple[str, str]] = {}  # parent run id -> (experiment id, tracking.models)
        self._digests: dict[str, tuple[str, dict[str, int]]] = {}  # data root -> its files' digest, once a sweep

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = mlflow_client(self.tracking_uri)
        return self._client

    # -- sweep (parent) -------------------------------------------------------------------------------------

    def experiment_id(self, name: str, description: str = "") -> str:
        """The experiment's id, created if need be; marked a model-training experiment (MLflow 3's UI otherwise
        files it under GenAI) with the sweep's description as its own."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            experiment_id = found.experiment_id
        else:
            location = None  # a SQLite store's artifacts sit beside it (MLflow's default: ./mlruns of the cwd)
            if self.tracking_uri.startswith("sqlite:///"):  # sqlite:///relative.db, sqlite:////absolute.db
                store = Path(self.tracking_uri.removeprefix("sqlite:///")).expanduser().resolve()
                location = (store.parent / "mlartifacts" / name).as_uri()  # file:///...: MLflow joins models' onto it
            try:
                experiment_id = self.client.create_experiment(name, artifact_location=location)
            except Exception:  # created meanwhile by another driver
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
                experiment_id = found.experiment_id
        self.client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, "custom_model_development")
        if description:
            self.client.set_experiment_tag(experiment_id, NOTE, description)
        return experiment_id

    def describe_run(self, run_id: str, markdown: str) -> None:
        """The run's description on its MLflow page (the report's summary on a sweep's parent run)."""
        self.client.set_tag(run_id, NOTE, markdown)

    def start_sweep(self, experiment: str, sweep_name: str, sweep_dict: dict[str, Any], trial_count: int,
                    tags: dict[str, str]) -> str:
        """Create the launch's parent run with the sweep file as an artifact; returns its run id."""
        from mlflow.entities import Param

        description = sweep_dict.get("description") or ""
        run = self.client.create_run(self.experiment_id(experiment, description), run_name=f"{sweep_name}-sweep",
                                     tags={ROLE: SWEEP_ROLE, SWEEP: sweep_name, STATE: "running", NOTE: description,
                                           **tags})
        run_id = run.info.run_id
        params = {"sweep.name": sweep_name, "sweep.trials": trial_count, REPORTS_PARAM: sweep_dict.get("report") or [],
                  **{f"sweep.{k}": v for k, v in flatten({k: sweep_dict[k] for k in
                     ("resources", "scheduler", "search", "max_failures", "max_concurrent", "seeds", "tracking")
                     if k in sweep_dict}).items()}}
        self.client.log_batch(run_id, params=[Param(k, _param(v)) for k, v in params.items()])
        self.client.log_text(run_id, yaml12.dump(sweep_dict), SWEEP_FILE)
        return run_id

    def reopen_sweep(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, STATE, "running")

    def end_sweep(self, run_id: str, state: str) -> None:
        self.client.set_tag(run_id, STATE, state)
        self.client.set_terminated(run_id, "FINISHED" if state == "finished" else
                                   "KILLED" if state == "interrupted" else "FAILED")

    def end_sweep_on_exit(self, run_id: str, state: str) -> None:
        """end_sweep for a driver on its way out (interrupted, or Tune failed): within seconds, and an unreachable
        server is a note on stderr rather than an error hiding the real one."""
        try:
            with quick_requests():
                self.end_sweep(run_id, state)
        except Exception as err:  # noqa: BLE001
            if not unreachable(err):
                raise
            print(f"resnet-sweep: the sweep's parent run {run_id} could not be marked {state!r}: {self.why(err)}",
                  file=sys.stderr)

    # -- trials (children) ----------------------------------------------------------------------------------

    def sync_trial(self, parent_run_id: str, records_root: str | Path, trial: dict[str, Any]) -> TrialRun:
        """Bring `trial`'s child run ({id, name, spec}) up to date with its record: the epochs after the run's last
        step, the tags of its latest start, its outcome. Raises what MLflow raised, within seconds; after a failure
        the run is read back from the server first (a request whose answer was lost may have been committed).
        Idempotent: what the run has is not sent again, and an epoch sent twice after a lost answer carries the
        same timestamp, which MLflow's SQL store keeps once."""
        path = trial_record.record_path(records_root, trial)
        history = trial_record.read(path)
        try:
            with quick_requests():
                run = self._sync(parent_run_id, trial, history, self.runs.get(trial["id"]), path.parent)
        except Exception:
            self.runs.pop(trial["id"], None)
            raise
        self.runs[trial["id"]] = run
        return run

    def sync_trials(self, parent_run_id: str, records_root: str | Path, trials: list[dict[str, Any]],
                    wait_s: float = 0.0) -> list[str]:
        """sync_trial for each, trying again for up to `wait_s` while some fail; a line for each one still behind."""
        deadline, behind, why = time.monotonic() + wait_s, {t["id"]: t for t in trials}, {}
        while True:
            for trial_id, trial in list(behind.items()):
                try:
                    self.sync_trial(parent_run_id, records_root, trial)
                    del behind[trial_id]
                except Exception as err:  # noqa: BLE001  the record keeps it: said at the end, sent later
                    why[trial_id] = self.why(err)
            if not behind or time.monotonic() >= deadline:
                return [f"{trial['name']}: {why[trial_id]}" for trial_id, trial in behind.items()]
            time.sleep(1.0)

    def why(self, err: BaseException) -> str:
        """What a failed request means, for a line on stderr."""
        if unreachable(err):
            return f"no answer from {redact_uri(self.tracking_uri)} ({why_unreachable(err, self.tracking_uri)})"
        return f"refused: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:300]}"

    def _sync(self, parent_run_id: str, trial: dict[str, Any], history: trial_record.History,
              run: TrialRun | None, trial_dir: Path) -> TrialRun:
        from mlflow.entities import RunTag

        run = run or self._trial_run(parent_run_id, trial)
        new = [e for e in history.epochs if int(e["iteration"]) > run.last_step]
        first_start = int(history.starts[0]["time_ms"]) if history.starts else 0
        for i in range(0, len(new), EPOCHS_PER_BATCH):
            chunk = new[i:i + EPOCHS_PER_BATCH]
            metrics = [m for e in chunk for m in _metrics(e, first_start)]
            while len(metrics) > MAX_METRICS_PER_BATCH:
                self.client.log_batch(run.run_id, metrics=metrics[:MAX_METRICS_PER_BATCH])
                metrics = metrics[MAX_METRICS_PER_BATCH:]
            # the last part carries the last-step tag: it goes up only once every metric before it has
            run = run._replace(last_step=int(chunk[-1]["iteration"]))
            self.client.log_batch(run.run_id, metrics=metrics, tags=[RunTag(LAST_STEP, str(run.last_step))])
        tags = _tags(history)
        if history.exploits and run.tags.get(EXPLOIT_COUNT) != str(len(history.exploits)):
            # PBT's lineage, whole each time (the tag counts what is up): when, from which trial, which values
            lineage = [{k: v for k, v in e.items() if k != "spec"} for e in history.exploits]
            self.client.log_text(run.run_id, json.dumps(lineage, indent=1), EXPLOITS)
            tags[EXPLOIT_COUNT] = str(len(history.exploits))
        status = END_STATUS[history.state] if history.state in TERMINAL_STATES else "RUNNING"
        if status != "RUNNING" and (status != run.status or run.tags.get(STATE) != history.state):
            # before the state says so: a finished run has its results and models
            tags.update(self._end_trial(parent_run_id, run, trial, history, trial_dir))
        changed = {k: v for k, v in tags.items() if run.tags.get(k) != v}
        if changed:
            self.client.log_batch(run.run_id, tags=[RunTag(k, v) for k, v in changed.items()])
        if status != run.status:
            if status == "RUNNING":
                self.client.update_run(run.run_id, status="RUNNING")  # started again after failing
            else:
                self.client.set_terminated(run.run_id, status)
        return TrialRun(run.run_id, run.last_step, {**run.tags, **changed}, status)

    def _parent(self, parent_run_id: str) -> tuple[str, str]:
        """(experiment id, tracking.models) of a launch, read once from its parent run."""
        if parent_run_id not in self._parents:
            parent = self.client.get_run(parent_run_id)
            self._parents[parent_run_id] = (parent.info.experiment_id, parent.data.params.get(MODELS_PARAM, "final"))
        return self._parents[parent_run_id]

    def _inputs(self, trial: dict[str, Any]) -> list[Any]:
        """The trial's data sets as MLflow run inputs; each data folder is hashed once by this Tracker."""
        def digest_of(root: str) -> tuple[str, dict[str, int]]:
            if root not in self._digests:
                self._digests[root] = datasets.files_digest(root)
            return self._digests[root]

        return datasets.trial_inputs(trial["spec"], digest_of)

    def _trial_run(self, parent_run_id: str, trial: dict[str, Any]) -> TrialRun:
        """The trial's child run: found, or created with config.yaml and its params. A run whose creation was cut
        short gets its params completed when found."""
        experiment_id = self._parent(parent_run_id)[0]
        runs = self.client.search_runs([experiment_id], max_results=2, order_by=["attributes.start_time ASC"],
                                       filter_string=f"tags.`{PARENT}` = '{parent_run_id}' and "
                                                     f"tags.`{TRIAL_ID}` = '{trial['id']}'")
        if runs:
            found = runs[0]
            run_id = found.info.run_id
            if MODEL_MACS not in found.data.params:  # the last param _describe_trial logs
                self._describe_trial(run_id, trial)
            # log_batch commits metrics before tags: after a kill between the two the history has the last word.
            logged = [m.step for m in self.client.get_metric_history(run_id, "train_loss")]
            return TrialRun(run_id, max([int(found.data.tags.get(LAST_STEP, -1)), *logged]),
                            {k: v for k, v in found.data.tags.items() if k.startswith(TAG)}, found.info.status)
        tags = {ROLE: TRIAL_ROLE, TRIAL_ID: trial["id"], STATE: PENDING, LAST_STEP: "-1", STARTS: "0"}
        run = self.client.create_run(experiment_id, run_name=trial["name"], tags={PARENT: parent_run_id, **tags})
        self._describe_trial(run.info.run_id, trial)
        return TrialRun(run.info.run_id, -1, tags, "RUNNING")

    def _describe_trial(self, run_id: str, trial: dict[str, Any]) -> None:
        """config.yaml, the data sets, then the params, the network's size counted on the built model last (logging
        a param or an input again is allowed): with model.macs logged, all were written."""
        from mlflow.entities import Param

        self.client.log_text(run_id, yaml12.dump(trial["spec"]), "config.yaml")
        self.client.log_inputs(run_id, datasets=self._inputs(trial))
        params = {**flatten(trial["spec"]), **models.network_size(trial["spec"])}
        items = [Param(k, _param(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch, in this order
            self.client.log_batch(run_id, params=items[i:i + 100])

    def _end_trial(self, parent_run_id: str, run: TrialRun, trial: dict[str, Any], history: trial_record.History,
                   trial_dir: Path) -> dict[str, str]:
        """A finished trial's results that it has once: epochs and wall time (params: its final errors are its
        curves' last points), Figure 7's statistics, and its models; returns the tags that say which models."""
        from mlflow.entities import Param

        end = history.end if history.state == FINISHED else {}
        if not end:
            return {}
        wall = sum(float(e.get("epoch_time", 0.0)) for e in history.epochs if _number(e.get("epoch_time")))
        self.client.log_batch(run.run_id, params=[Param(EPOCHS, _param(end.get("epoch", 0))),
                                                  Param(WALL_TIME, _param(round(wall, 3)))])
        stds = end.get("layer_response_std")
        if stds:
            names = end.get("layer_response_names") or []
            names = names if len(names) == len(stds) else [f"layer{i}" for i in range(len(stds))]
            self.client.log_text(run.run_id, json.dumps({"layers": list(names), "std": [float(s) for s in stds]}),
                                 LAYER_RESPONSES)
        metrics = [m for e in history.epochs for m in _metrics(e) if m.step == int(e["iteration"])
                   and not m.key.startswith(SYSTEM)]
        return models.log_trial_models(self.client, *self._parent(parent_run_id), run.run_id, run.tags, trial,
                                       trial_dir, metrics, self._inputs(trial))

    def trial_runs(self, parent_run_id: str) -> list[Any]:
        """The launch's trial runs, oldest first (every one: the query pages)."""
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        return child_runs(self.client, [experiment_id], parent_run_id)


def _metrics(epoch: dict[str, Any], first_start_ms: int = 0) -> list[Any]:
    """An epoch record's metrics at step = its iteration, stamped with the record's time, and its system samples
    under SYSTEM at step = seconds since the trial first started (their own time axis: samples, not epochs)."""
    from mlflow.entities import Metric

    step, stamp, out = int(epoch.get("iteration", 0)), int(epoch.get("time_ms", 0)), []
    for sample in epoch.get(SYSTEM_SAMPLE) or []:
        at = int(sample.get("time_ms", 0))
        out += [Metric(SYSTEM + k, float(v), at, max(0, (at - first_start_ms) // 1000)) for k, v in sample.items()
                if k != "time_ms" and _number(v)]
    for key, value in epoch.items():
        if key in NOT_METRICS:
            continue
        if _number(value):
            out.append(Metric(key, float(value), stamp, step))
        elif isinstance(value, list):  # points within the epoch: [[iteration, value], ...]
            out += [Metric(key, float(p[1]), stamp, int(p[0])) for p in value
                    if isinstance(p, (list, tuple)) and len(p) == 2 and _number(p[0]) and _number(p[1])]
    return out


def _tags(history: trial_record.History) -> dict[str, str]:
    """The child run's tags a record implies: state, starts, where the latest start ran, errors."""
    tags = {STATE: history.state, STARTS: str(len(history.starts))}
    if history.starts:
        tags.update({TAG + k: str(history.starts[-1][k]) for k in START_TAGS if k in history.starts[-1]})
    latest = history.epochs[-1] if history.epochs else {}
    tags.update({TAG + k: str(latest[k])[-4000:] for k in RUNG_FIELDS if latest.get(k)})
    if history.last_error:
        tags[LAST_ERROR] = history.last_error[-4000:]
    if history.state in (DIVERGED, FAILED) and history.end.get("error"):
        tags[ERROR] = str(history.end["error"])[-4000:]
    if history.state == DIVERGED:
        tags[DIVERGED_AT] = str(history.end.get("diverged_at_iteration"))
    return tags


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _param(value: Any) -> str:
    """MLflow params are strings: lists as JSON, booleans as true/false, None as None (as str() writes it)."""
    text = json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
    return text[:6000]
