"""Ray Tune -> MLflow, from the driver: Tune's events go into the trials' records, and a background thread brings
each changed trial's nested child run up to date (`Tracker.sync_trial`), so a slow or absent tracking server never
stalls Tune's event loop; what the sweep's end could not send, `resume` sends. (Ray's MLflowLoggerCallback neither
nests runs nor survives a driver restart.)
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from ray.tune import Callback

from orchestrator.records import trial_record
from orchestrator.running import interrupt
from orchestrator.running.progress import trial_state
from orchestrator.tracking.server import quick_requests, unreachable
from orchestrator.tracking.uris import redact_uri
from orchestrator.tracking.writer import Tracker

FINAL_WAIT_S = 30.0   # at the sweep's end, syncs keep trying this long (a restarting `mlflow server`: 5-25 s here)
MAX_BACKOFF_S = 30.0  # after failed syncs the next try waits twice as long as the last wait, 1 s to this


class MlflowSweepCallback(Callback):
    """Tune's events append what only the driver sees to the trial's record and mark the trial changed; a
    background thread syncs changed trials in the order they changed."""

    def __init__(self, tracking_uri: str, parent_run_id: str, records_root: str, sweep_name: str,
                 mirror_to: str | None = None):
        """mirror_to: on object storage, the Tune experiment where each record the driver keeps is copied."""
        self.tracking_uri, self.parent_run_id = tracking_uri, parent_run_id
        self.records_root, self.sweep_name, self.mirror_to = records_root, sweep_name, mirror_to
        self._reset()

    def _reset(self) -> None:
        self._tracker = Tracker(self.tracking_uri)
        self._infos: dict[str, dict[str, Any]] = {}
        self._changed: dict[str, None] = {}  # trial ids, in order
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        # Tune writes this into tuner.pkl on the sweep's storage (a bucket others may read): no password there.
        return {"tracking_uri": redact_uri(self.tracking_uri), "parent_run_id": self.parent_run_id,
                "records_root": self.records_root, "sweep_name": self.sweep_name, "mirror_to": self.mirror_to}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def setup(self, **info: Any) -> None:
        self._thread = threading.Thread(target=self._run, name="mlflow-sync", daemon=True)
        self._thread.start()

    def _note(self, trial: Any, *events: dict[str, Any]) -> None:
        info = trial.config["trial"]
        trial_record.append(trial_record.record_path(self.records_root, info), list(events))
        with self._wake:
            self._infos[info["id"]] = info
            self._changed[info["id"]] = None
            self._wake.notify()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._note(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._note(trial, *(result.get("record") or []))  # events come this way only from object storage

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Ended before its last iteration by the scheduler (ASHA): an outcome only the driver sees. Not after
        # Ctrl-C, whose stopped trials `resume` continues.
        last = trial.last_result or {}  # Tune has not marked the trial TERMINATED yet when it calls this
        stopped = not last.get("final") and last.get("state") not in ("diverged", "failed") and not interrupt.requested()
        self._note(trial, *([trial_record.event("stopped")] if stopped else []))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._note(trial, trial_record.event("crashed", error=_error(trial)))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._note(trial, trial_record.event("failed", error=_error(trial)))

    def _run(self) -> None:
        wait = 0.0
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stopping or self._changed)
                if self._stopping:
                    return
                changed, self._changed = list(self._changed), {}
            failed = []
            for trial_id in changed:
                self._mirror(self._infos[trial_id])
                try:
                    self._tracker.sync_trial(self.parent_run_id, self.records_root, self._infos[trial_id])
                except Exception as err:  # noqa: BLE001  the record keeps it; tried again below
                    failed.append(trial_id)
                    warning = f"MLflow refused a write for {self._infos[trial_id]['name']}: {self._tracker.why(err)}"
                    if not unreachable(err) and warning not in self._warned:
                        self._warned.add(warning)
                        print(f"resnet-sweep: {warning}", file=sys.stderr, flush=True)
            wait = min(MAX_BACKOFF_S, max(1.0, 2 * wait)) if failed else 0.0
            with self._wake:
                self._changed = {**dict.fromkeys(failed), **self._changed}
                self._wake.wait_for(lambda: self._stopping, timeout=wait)

    def _mirror(self, info: dict[str, Any]) -> None:
        if self.mirror_to is None:
            return
        try:
            trial_record.mirror(self.records_root, self.mirror_to, info)
        except OSError as err:  # the local record stands; only a driver on another machine would miss it
            warning = f"could not copy {info['name']}'s record to {self.mirror_to}: {err}"
            if warning not in self._warned:
                self._warned.add(warning)
                print(f"resnet-sweep: {warning}", file=sys.stderr, flush=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()  # at most one request's time-out
        behind = self._tracker.sync_trials(self.parent_run_id, self.records_root, list(self._infos.values()),
                                           FINAL_WAIT_S)
        states = {trial_state(t) for t in trials}
        sweep_state = "interrupted" if interrupt.requested() else "failed" if "failed" in states \
            else "finished" if states <= {"finished", "diverged", "stopped"} else "interrupted"
        try:
            with quick_requests():
                self._tracker.end_sweep(self.parent_run_id, sweep_state)
        except Exception as err:  # noqa: BLE001
            behind.append(f"sweep parent run {self.parent_run_id} (state {sweep_state}): {self._tracker.why(err)}")
        if behind:
            from orchestrator.records import state

            if state.record_path(self.sweep_name).is_file():  # `resume` then knows there is something to send
                state.update(self.sweep_name, mlflow_behind=behind)
            print(f"resnet-sweep: MLflow is behind the trials' records for {len(behind)} runs; the records keep "
                  f"every epoch, and `resnet-sweep resume {self.sweep_name}` sends the rest once the server "
                  "answers:\n" + "".join(f"  {line}\n" for line in behind), file=sys.stderr, end="", flush=True)


def _error(trial: Any) -> str:
    """The trial's error as Tune wrote it to the trial's error file (its last 4000 characters)."""
    try:
        return Path(trial.error_file).read_text()[-4000:]
    except (OSError, TypeError):
        return "unknown error (see the Ray Tune trial directory)"
