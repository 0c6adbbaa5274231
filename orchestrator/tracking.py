"""The one place that writes MLflow: the layout PRODUCT.md promises (contract 2 in the project's notes).

experiment = the sweep's `experiment` or `name`; one parent run per launch (tags resnet_sweeps.role=sweep,
resnet_sweeps.sweep=NAME); one child run per trial, found again by its tag resnet_sweeps.trial_id under the
parent, so a resumed sweep never opens a duplicate. Metrics go in batches (one `log_batch` per epoch) with
step = iteration; a child's tag resnet_sweeps.last_step keeps steps from being logged twice after a restart.
A tracking server that cannot be reached is an `unreachable` error; `quick_requests` makes MLflow's HTTP client
give up on one within seconds instead of minutes (see orchestrator/tracking_outbox.py for what waits meanwhile).
"""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple
from urllib.parse import urlparse

import yaml

from resnet_core.specio import flatten

TAG = "resnet_sweeps."
ROLE, SWEEP, TRIAL_ID, STATE, LAST_STEP, STARTS = (TAG + k for k in
                                                   ("role", "sweep", "trial_id", "state", "last_step", "starts"))
ERROR = TAG + "error"  # a failed or diverged trial's error text
MISSING_STEPS = TAG + "missing_steps"  # steps the driver could not log (dropped while the server was away)
PARENT = "mlflow.parentRunId"
EPOCH_METRICS = ("train_loss", "train_error", "test_error", "val_error", "lr", "images_per_sec", "epoch_time",
                 "epoch", "test_top5_error", "val_top5_error")  # logged when the trial reports them
TERMINAL_STATES = ("finished", "diverged", "failed", "stopped")


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


# MLflow's HTTP client retries a failed request 7 times with exponential backoff (about 4 minutes) and waits up
# to 120 s for each answer: right for a script, wrong inside Ray Tune's event loop, where every trial waits while
# a callback does. Inside `quick_requests` a request gives up at once when refused and after 5 s without an answer
# (a log_batch takes ~10-100 ms on a busy 2-core machine); the caller keeps the write for later instead. No
# retries by MLflow: it retries POSTs too after a read timeout, and a create_run the server did receive would make
# a second run (the caller's own retry looks for the run first). The MLflow environment variables themselves are
# the knobs: a value the user set is kept.
QUICK_REQUESTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",             # seconds per connect and per read
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",  # a 503 with Retry-After: 600 must not stall the sweep
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",   # no "View run at" line per trial inside the live table
}


@contextmanager
def quick_requests() -> Iterator[None]:
    """MLflow HTTP requests made inside give up within seconds (see QUICK_REQUESTS); MLflow reads these variables
    on every request, so the settings end with the block. Used where the driver must not wait on the server."""
    added = {k: v for k, v in QUICK_REQUESTS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def unreachable(err: BaseException) -> bool:
    """True when `err` says the tracking server did not answer (refused, timed out, 5xx after retries): worth
    trying again later. False for answers that will not change (a 4xx such as a bad parameter or no permission)."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(err, RestException):
        return err.get_http_status_code() >= 500
    if isinstance(err, MlflowException):  # rest_utils wraps connection errors and exhausted retries this way
        return str(err.message).startswith("API request to")
    return isinstance(err, (requests.exceptions.RequestException, ConnectionError, TimeoutError))


class TrackingUnreachable(RuntimeError):
    """The tracking server did not answer; the message names the (redacted) URI and the cause."""


def format_steps(steps: Iterable[int], limit: int = 4000) -> str:
    """'8,16,24' for a missing_steps tag or a message; cut short (with the count) past `limit` characters."""
    ordered = sorted(set(steps))
    text = ",".join(str(s) for s in ordered)
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(",", 1)[0] + f",... ({len(ordered)} steps)"


class TrialRun(NamedTuple):
    """A trial's child run as the driver needs it: id, last step the server has (-1: none), starts so far."""
    run_id: str
    last_step: int
    starts: int


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

    def check_reachable(self) -> None:
        """Raise TrackingUnreachable within seconds when an http(s) tracking server does not answer (a local
        SQLite store is created on first use and needs no check)."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return
        try:
            with quick_requests():
                self.client.search_experiments(max_results=1)
        except Exception as err:  # noqa: BLE001  any failure here means no sweep can be recorded
            verb = "cannot reach" if unreachable(err) else "cannot use"  # e.g. a 403 for a wrong token
            raise TrackingUnreachable(f"{verb} the MLflow tracking server at {redact_uri(self.tracking_uri)}"
                                      f": {why_unreachable(err, self.tracking_uri)}") from err

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

    def end_sweep_on_exit(self, run_id: str, state: str) -> None:
        """end_sweep for a driver on its way out (interrupted, or Tune failed): within seconds, and an unreachable
        server is a note on stderr rather than an error hiding the real one."""
        import sys

        try:
            with quick_requests():
                self.end_sweep(run_id, state)
        except Exception as err:  # noqa: BLE001
            if not unreachable(err):
                raise
            print(f"resnet-sweep: the sweep's parent run {run_id} could not be marked {state!r}: the MLflow tracking "
                  f"server {redact_uri(self.tracking_uri)} did not answer ({why_unreachable(err, self.tracking_uri)})",
                  file=sys.stderr)

    # -- trials (children) ----------------------------------------------------------------------------------

    def find_trial_run(self, parent_run_id: str, trial_id: str) -> Any | None:
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        runs = self.client.search_runs([experiment_id], max_results=2, order_by=["attributes.start_time ASC"],
                                       filter_string=f"tags.`{PARENT}` = '{parent_run_id}' and "
                                                     f"tags.`{TRIAL_ID}` = '{trial_id}'")
        return runs[0] if runs else None

    def trial_run(self, parent_run_id: str, trial: dict[str, Any], model_cost: Any) -> TrialRun:
        """The child run of `trial` ({id, name, spec}) under the parent: found, or created with config.yaml and
        its params (`model_cost()` gives model.params and model.macs). A run whose creation was cut short (the
        server went away between the requests) gets its params completed when found again."""
        found = self.find_trial_run(parent_run_id, trial["id"])
        if found is not None:
            run_id = found.info.run_id
            if not set(_trial_params(trial, {"params": 0, "macs": 0})) <= set(found.data.params):
                self._describe_trial(run_id, trial, model_cost())
            # MLflow's log_batch commits metrics and tags in separate transactions: a driver killed between the
            # two leaves the last_step tag behind the metrics, so the metric history itself has the last word.
            logged = [m.step for m in self.client.get_metric_history(run_id, "train_loss")]
            return TrialRun(run_id, max([int(found.data.tags.get(LAST_STEP, -1)), *logged]),
                            int(found.data.tags.get(STARTS, 0)))
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        run = self.client.create_run(experiment_id, run_name=trial["name"], tags={
            PARENT: parent_run_id, ROLE: "trial", TRIAL_ID: trial["id"], STATE: "pending", LAST_STEP: "-1",
            STARTS: "0"})
        self._describe_trial(run.info.run_id, trial, model_cost())
        return TrialRun(run.info.run_id, -1, 0)

    def _describe_trial(self, run_id: str, trial: dict[str, Any], model_cost: dict[str, int]) -> None:
        """config.yaml, then the params (logging a param again with the same value is allowed): complete params
        mean both were written."""
        from mlflow.entities import Param

        self.client.log_text(run_id, yaml.safe_dump(trial["spec"], sort_keys=False), "config.yaml")
        items = [Param(k, _param(v)) for k, v in _trial_params(trial, model_cost).items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=items[i:i + 100])

    def trial_started(self, run_id: str, starts: int, tags: dict[str, str] | None = None) -> None:
        from mlflow.entities import RunTag

        self.client.update_run(run_id, status="RUNNING")
        self.client.log_batch(run_id, tags=[RunTag(STATE, "running"), RunTag(STARTS, str(starts)),
                                            *(RunTag(k, v) for k, v in (tags or {}).items())])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_epochs(self, run_id: str, results: Iterable[dict[str, Any]], tags: dict[str, str] | None = None) -> int:
        """One batch for the given epoch results (step = iteration); returns the last step logged. A result's
        `logged_at_ms` (when the driver received it) is the metrics' timestamp: sending the same epoch again then
        adds nothing, as MLflow's SQL store skips exact duplicates."""
        from mlflow.entities import Metric, RunTag

        metrics, last = [], -1
        now = int(time.time() * 1000)  # Tune's result timestamps are whole seconds
        for result in results:
            step = int(result["iteration"])
            stamp = int(result.get("logged_at_ms", now))
            metrics += [Metric(k, float(result[k]), stamp, step) for k in EPOCH_METRICS
                        if _number(result.get(k))]
            last = max(last, step)
        if metrics or tags:
            self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(LAST_STEP, str(last)),
                                                                 *(RunTag(k, v) for k, v in (tags or {}).items())])
        return last

    def end_trial(self, run_id: str, state: str, final: dict[str, Any] | None,
                  layer_names: list[str] | None = None, error: str | None = None, again: bool = False) -> None:
        """State tag, final_ metrics, Figure 7 statistics; the MLflow status FINISHED only for `finished`.
        `again`: an earlier call may have reached the server before failing, so final_ metrics the run already
        has with the same value are not logged a second time."""
        from mlflow.entities import Metric, RunTag

        final = final or {}
        now = int(time.time() * 1000)
        step = int(final.get("iteration", 0) or 0)
        metrics = [Metric(f"final_{k}", float(final[k]), now, step) for k in EPOCH_METRICS
                   if _number(final.get(k))]
        if again and metrics:
            have = self.client.get_run(run_id).data.metrics  # latest value of each key
            metrics = [m for m in metrics if have.get(m.key) != m.value]
        tags = [RunTag(STATE, state)]
        if error:
            tags.append(RunTag(ERROR, error[-4000:]))  # the end of a traceback says what went wrong
        if state == "diverged":
            tags.append(RunTag(TAG + "diverged_at_iteration", str(final.get("diverged_at_iteration", step))))
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        stds = final.get("layer_response_std")
        if stds:
            names = layer_names if layer_names and len(layer_names) == len(stds) else \
                [f"layer{i}" for i in range(len(stds))]
            self.client.log_text(run_id, json.dumps({"layers": names, "std": [float(s) for s in stds]}),
                                 "layer_responses.json")
        self.client.set_terminated(run_id, {"finished": "FINISHED", "stopped": "KILLED"}.get(state, "FAILED"))

    def trial_runs(self, parent_run_id: str) -> list[Any]:
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        return list(self.client.search_runs([experiment_id], filter_string=f"tags.`{PARENT}` = '{parent_run_id}'",
                                            max_results=10000))


def _trial_params(trial: dict[str, Any], model_cost: dict[str, int]) -> dict[str, Any]:
    return {**flatten(trial["spec"]), **{f"model.{k}": v for k, v in model_cost.items()}}


def why_unreachable(err: BaseException, tracking_uri: str) -> str:
    """A short cause for a message ("[Errno 111] Connection refused", "timed out"), the URI's password never in it:
    MLflow's own message repeats the full request URL and urllib3's retry chatter."""
    import re

    text = str(getattr(err, "message", None) or err)
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno:
        text = errno.group(0)
    elif "timed out" in text.lower() or "timeout" in text.lower():
        limit = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", QUICK_REQUESTS["MLFLOW_HTTP_REQUEST_TIMEOUT"])
        text = f"no answer within {limit} s"
    else:
        text = (text.strip().splitlines() or [type(err).__name__])[0][:300]
    password = urlparse(tracking_uri).password
    return text.replace(password, "***") if password else text


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _param(value: Any) -> str:
    """MLflow params are strings: lists as JSON, booleans as true/false, None as None (as str() writes it)."""
    text = json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
    return text[:6000]
