"""The one operation that brings MLflow up to date: each trial's child run synced from its record.

The live callback (orchestrator/running/mlflow_callback.py) calls it on a background thread whenever Tune says
something about a trial, the sweep's end calls it for every trial, and `resume` before anything runs. It is
idempotent (Tracker.sync_trial): what a run has is not sent again, and a resent epoch adds nothing.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from orchestrator.records import trial_record
from orchestrator.tracking.uris import redact_uri
from orchestrator.tracking.server import quick_requests, unreachable, why_unreachable
from orchestrator.tracking.writer import Tracker, TrialRun


class RunSync:
    """The child runs of one launch (parent run), brought up to date from the trials' records under `root`."""

    def __init__(self, tracking_uri: str, parent_run_id: str, root: str | Path):
        self.tracker, self.parent_run_id, self.root = Tracker(tracking_uri), parent_run_id, Path(root)
        self.runs: dict[str, TrialRun] = {}  # what the server has, as far as this process knows

    def sync(self, info: dict[str, Any]) -> None:
        """Bring trial `info`'s run up to date; raises what MLflow raised. After a failure the run is read back
        from the server first: a request whose answer was lost may have been committed."""
        history = trial_record.read(trial_record.record_path(self.root, info))
        try:
            with quick_requests():
                self.runs[info["id"]] = self.tracker.sync_trial(self.parent_run_id, info, history,
                                                                self.runs.get(info["id"]),
                                                                lambda: model_cost(info["spec"]))
        except Exception:
            self.runs.pop(info["id"], None)
            raise

    def sync_all(self, infos: list[dict[str, Any]], wait_s: float = 0.0) -> list[str]:
        """Sync every trial, trying again for up to `wait_s` while some fail; a line for each one still behind."""
        deadline, behind, why = time.monotonic() + wait_s, {i["id"]: i for i in infos}, {}
        while True:
            for trial_id, info in list(behind.items()):
                try:
                    self.sync(info)
                    del behind[trial_id]
                except Exception as err:  # noqa: BLE001  the record keeps it: said at the end, sent later
                    why[trial_id] = self.why(err)
            if not behind or time.monotonic() >= deadline:
                return [f"{info['name']}: {why[trial_id]}" for trial_id, info in behind.items()]
            time.sleep(1.0)

    def why(self, err: BaseException) -> str:
        if unreachable(err):
            return f"no answer from {redact_uri(self.tracker.tracking_uri)} " \
                   f"({why_unreachable(err, self.tracker.tracking_uri)})"
        return f"refused: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:300]}"


def model_cost(spec: dict[str, Any]) -> dict[str, int]:
    """`model.params` and `model.macs` params: counted on the built model (resnet_core.accounting, cached)."""
    from resnet_core.accounting import trial_cost
    from resnet_core.spec import TrialSpec

    cost = trial_cost(TrialSpec.from_dict(spec))
    return {"params": cost.params, "macs": cost.macs}
