"""Ray Tune -> MLflow, from the driver: nested child runs that survive `resume` without duplicates.

Ray's MLflowLoggerCallback neither nests runs nor remembers its trial-to-run map across a driver restart. This
callback runs in the driver only (trials on other nodes never talk to MLflow): each Tune trial carries our stable
trial id in its config, and the child run is found again by the tag resnet_sweeps.trial_id under the launch's
parent run, or created. Tune pickles callbacks into its experiment state, so this one holds no client or cache
across pickling; after a restart it finds its runs again in MLflow. A tracking server that goes away for a while
neither stalls nor crashes the sweep: see orchestrator/tracking_outbox.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback

from orchestrator.tracking import Tracker, redact_uri
from orchestrator.tracking_outbox import End, Epoch, Outbox, RunBox, Tags


class MlflowSweepCallback(Callback):
    """Every write goes through an Outbox (orchestrator/tracking_outbox.py): sent at once while the tracking
    server answers, kept in order while it does not, sent on a later event or at the experiment's end."""

    def __init__(self, tracking_uri: str, parent_run_id: str, unsent_path: str | None = None):
        self.tracking_uri = tracking_uri
        self.parent_run_id = parent_run_id
        self.unsent_path = unsent_path  # where writes still unsent at the end are kept (see unsent_file)
        self._reset()

    def _reset(self) -> None:
        self._outbox = Outbox(Tracker(self.tracking_uri), self.parent_run_id)
        self._fresh: set[str] = set()  # trials started in this process that have not reported yet

    def __getstate__(self) -> dict[str, Any]:
        # Tune writes this into tuner.pkl on the sweep's storage (a bucket others may read): no password there.
        return {"tracking_uri": redact_uri(self.tracking_uri), "parent_run_id": self.parent_run_id,
                "unsent_path": self.unsent_path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"unsent_path": None, **state})
        self.tracking_uri = _unredacted(self.tracking_uri, self.parent_run_id)
        self._reset()

    def setup(self, **info: Any) -> None:
        self._outbox.sweep_state = "running"
        self._outbox.flush()

    def _box(self, trial: Any) -> RunBox:
        info = trial.config["trial"]
        return self._outbox.box(info, lambda: model_cost(info["spec"]))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._fresh.add(trial.config["trial"]["id"])
        self._outbox.start(self._box(trial))
        self._outbox.flush()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        box = self._box(trial)
        trial_id = trial.config["trial"]["id"]
        if trial_id in self._fresh:  # where this start ran, and from which checkpoint
            self._fresh.discard(trial_id)
            tags = {f"resnet_sweeps.{k}": str(result[k]) for k in (
                "device", "torch", "cuda", "host", "node_id", "resumed_from_iteration", "workers") if k in result}
            if tags:
                self._outbox.put(box, Tags(tags))
        # While the server is away its last step is unknown: epochs are queued and checked against it when sent.
        now = int(result.get("iteration", -1)) if "iteration" in result else None
        for missed in result.get("backfill") or []:  # epochs reported while the previous driver was dying
            if now is not None and box.last_step < int(missed.get("iteration", -1)) < now:
                self._outbox.put(box, Epoch.of(missed))
        if now is not None and result.get("state") != "diverged":
            self._outbox.put(box, Epoch.of(result))  # skipped when logged before a restart: never a step twice
        self._outbox.flush()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        final = dict(trial.last_result or {})
        state = final.get("state") if final.get("state") in ("diverged", "failed") else \
            "finished" if final.get("final") else "stopped"  # by the scheduler (ASHA) before its last iteration
        spec = trial.config["trial"]["spec"]
        names = layer_names(spec) if final.get("layer_response_std") else None
        self._outbox.put(self._box(trial), End(state, _final(final), names, error=final.get("error")))
        self._outbox.flush()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._outbox.put(self._box(trial), Tags({"resnet_sweeps.state": "running",
                                                 "resnet_sweeps.last_error": _error(trial)}))
        self._outbox.flush()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        final = _final(dict(trial.last_result or {}))
        self._outbox.put(self._box(trial), End("failed", final, error=_error(trial)))
        self._outbox.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        from orchestrator import interrupt
        from orchestrator.progress import trial_state

        states = {trial_state(t) for t in trials}
        self._outbox.sweep_state = "interrupted" if interrupt.requested() else "failed" if "failed" in states \
            else "finished" if states <= {"finished", "diverged", "stopped"} else "interrupted"
        if not self._outbox.flush_at_end():
            kept = Path(self.unsent_path) if self.unsent_path else None
            if kept is not None:
                self._outbox.save(kept)
            self._outbox.report_unsent(kept, kept.parent.name if kept else None)


def _unredacted(uri: str, parent_run_id: str) -> str:
    """The full tracking URI of a sweep, from this machine's state record (`resume` restores the callback from
    Tune's pickle, which holds the URI redacted); unchanged when it had no password."""
    from orchestrator import state

    for record in state.load_all():
        if record.parent_run_id == parent_run_id and redact_uri(record.tracking_uri) == uri:
            return record.tracking_uri
    return uri


def unsent_file(sweep_name: str, parent_run_id: str) -> Path:
    """Where a launch's writes that never reached the tracking server wait for `resnet-sweep resume NAME`: the
    sweep's state directory (the driver's machine), one file per launch (parent run)."""
    from orchestrator import state

    return state.sweep_dir(sweep_name) / f"mlflow-unsent-{parent_run_id}.json"


def send_unsent(sweep_name: str) -> bool | None:
    """Send the writes earlier launches of the sweep kept (see unsent_file); True when all arrived, None when there
    were none. A file is removed once everything in it reached the server."""
    from orchestrator import state
    from orchestrator.tracking_outbox import Outbox

    files = sorted(state.sweep_dir(sweep_name).glob("mlflow-unsent-*.json"))
    if not files:
        return None
    sent = True
    for path in files:
        outbox = Outbox.load(path, model_cost)
        if outbox.flush_at_end():
            path.unlink()
            print(f"sent the MLflow writes kept in {path} (parent run {outbox.parent_run_id})")
        else:
            outbox.save(path)
            outbox.report_unsent(path, sweep_name)
            sent = False
    return sent


def _final(result: dict[str, Any]) -> dict[str, Any]:
    """What end_trial reads of a trial's last result (the rest, e.g. a backfill list, need not wait in memory)."""
    from orchestrator.tracking import EPOCH_METRICS

    keep = (*EPOCH_METRICS, "iteration", "layer_response_std", "diverged_at_iteration")
    return {k: result[k] for k in keep if k in result}


def _error(trial: Any) -> str:
    """The trial's error text as Tune recorded it (its error file's contents, when readable)."""
    for attr in ("error_msg", "error_file"):
        value = getattr(trial, attr, None)
        if isinstance(value, str) and value:
            if attr == "error_file":
                try:
                    with open(value) as f:
                        return f.read()[-4000:]
                except OSError:
                    return value
            return value[-4000:]
    return "unknown error (see the Ray Tune trial directory)"


def model_cost(spec: dict[str, Any]) -> dict[str, int]:
    """`model.params` and `model.macs` params: counted on the built model (resnet_core.accounting, cached)."""
    from orchestrator.plan import _cost
    from resnet_core.spec import TrialSpec

    trial = TrialSpec.from_dict(spec)
    size = trial.data.image_size if trial.data.dataset == "synthetic" else None
    params, macs, _ = _cost(trial.model, trial.data.classes, size)
    return {"params": params, "macs": macs}


def layer_names(spec: dict[str, Any]) -> list[str]:
    """Names of the 3x3 layers Figure 7 measures, in order: from the cached cost count model_cost already
    made, so the driver builds each architecture once (a meta-device build here imported torch._dynamo:
    seconds of stall and 150 MiB in the driver)."""
    from resnet_core.accounting import model_cost as cost
    from resnet_core.spec import TrialSpec

    trial = TrialSpec.from_dict(spec)
    size = trial.data.image_size if trial.data.dataset == "synthetic" else None
    return list(cost(trial.model, trial.data.classes, size).response_layer_names)
