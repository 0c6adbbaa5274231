"""Ray Tune -> MLflow, from the driver: nested child runs that survive `resume` without duplicates.

Ray's MLflowLoggerCallback neither nests runs nor remembers its trial-to-run map across a driver restart. This
callback runs in the driver only (trials on other nodes never talk to MLflow): each Tune trial carries our stable
trial id in its config, and the child run is found again by the tag resnet_sweeps.trial_id under the launch's
parent run, or created. Tune pickles callbacks into its experiment state, so this one holds no client or cache
across pickling; after a restart it finds its runs again in MLflow.
"""
from __future__ import annotations

from typing import Any

from ray.tune import Callback

from orchestrator.tracking import Tracker


class MlflowSweepCallback(Callback):
    def __init__(self, tracking_uri: str, parent_run_id: str):
        self.tracking_uri = tracking_uri
        self.parent_run_id = parent_run_id
        self._reset()

    def _reset(self) -> None:
        self._tracker = Tracker(self.tracking_uri)
        self._runs: dict[str, tuple[str, int]] = {}  # trial id -> (MLflow run id, last step logged)
        self._starts: dict[str, int] = {}
        self._fresh: set[str] = set()  # trials started in this process that have not reported yet

    def __getstate__(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "parent_run_id": self.parent_run_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def setup(self, **info: Any) -> None:
        self._tracker.reopen_sweep(self.parent_run_id)

    def _run(self, trial: Any) -> tuple[str, int]:
        info = trial.config["trial"]
        if info["id"] not in self._runs:
            self._runs[info["id"]] = self._tracker.trial_run(self.parent_run_id, info, model_cost(info["spec"]))
        return self._runs[info["id"]]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id, _ = self._run(trial)
        trial_id = trial.config["trial"]["id"]
        if trial_id not in self._starts:
            run = self._tracker.client.get_run(run_id)
            self._starts[trial_id] = int(run.data.tags.get("resnet_sweeps.starts", 0))
        self._starts[trial_id] += 1
        self._fresh.add(trial_id)
        self._tracker.trial_started(run_id, self._starts[trial_id])

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        run_id, last_step = self._run(trial)
        trial_id = trial.config["trial"]["id"]
        tags = {}
        if trial_id in self._fresh:  # where this start ran, and from which checkpoint
            self._fresh.discard(trial_id)
            tags = {f"resnet_sweeps.{k}": str(result[k]) for k in ("device", "torch", "cuda", "host", "node_id",
                                                                     "resumed_from_iteration") if k in result}
        missed = [r for r in result.get("backfill") or [] if last_step < int(r.get("iteration", -1))
                  < int(result.get("iteration", -1))]
        if missed:  # epochs reported while the previous driver was dying: log them once, in order
            last_step = self._tracker.log_epochs(run_id, missed)
            self._runs[trial_id] = (run_id, last_step)
        if "iteration" not in result or result.get("state") == "diverged" or int(result["iteration"]) <= last_step:
            if tags:  # a diverged result, or a step logged before a restart: never log a step twice
                self._tracker.client.log_batch(run_id, tags=_tags(tags))
            return
        step = self._tracker.log_epochs(run_id, [result], tags=tags)
        self._runs[trial_id] = (run_id, max(step, last_step))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id, _ = self._run(trial)
        final = trial.last_result or {}
        state = "diverged" if final.get("state") == "diverged" else "finished"
        spec = trial.config["trial"]["spec"]
        self._tracker.end_trial(run_id, state, final, layer_names(spec) if final.get("layer_response_std") else None)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id, _ = self._run(trial)
        self._tracker.client.set_tag(run_id, "resnet_sweeps.state", "running")
        self._tracker.client.set_tag(run_id, "resnet_sweeps.last_error", _error(trial))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id, _ = self._run(trial)
        self._tracker.end_trial(run_id, "failed", trial.last_result, error=_error(trial))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        states = {t.status for t in trials}
        self._tracker.end_sweep(self.parent_run_id, "finished" if states <= {"TERMINATED"} else "failed")


def _tags(tags: dict[str, str]) -> list:
    from mlflow.entities import RunTag

    return [RunTag(k, v) for k, v in tags.items()]


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
    """`model.params` and `model.macs` params: counted on the meta device (no memory, no arithmetic)."""
    from orchestrator.plan import _cost
    from resnet_core.spec import TrialSpec

    trial = TrialSpec.from_dict(spec)
    size = trial.data.image_size if trial.data.dataset == "synthetic" else None
    params, macs, _ = _cost(trial.model, trial.data.classes, size)
    return {"params": params, "macs": macs}


def layer_names(spec: dict[str, Any]) -> list[str]:
    """Names of the 3x3 layers Figure 7 measures, in order (the model built on the meta device)."""
    import torch

    from resnet_core.model import build_model
    from resnet_core.spec import TrialSpec

    trial = TrialSpec.from_dict(spec)
    with torch.device("meta"):
        model = build_model(trial.model, trial.data.classes)
    return [name for name, _ in model.response_layers()]
