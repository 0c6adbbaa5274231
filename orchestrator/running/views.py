"""Read-only views of the sweeps this machine knows, for `status` and scripts: nothing here starts Ray or writes.

The sweeps launched from this state directory, the sweeps sent to Ray clusters, and one sweep's trials (state,
progress, latest metrics: records/trial_view.py decides where each comes from).
"""
from __future__ import annotations

from typing import Any

from orchestrator.records import state, trial_record
from orchestrator.records.trial_view import RunSeen, sweep_progress, trial_view
from orchestrator.tracking.uris import redact_uri


def state_home() -> str:
    return str(state.home())


def tracking_uri_of(name: str) -> str:
    """The sweep's MLflow tracking URI, unredacted (for links this machine opens)."""
    return state.load(name).tracking_uri


def has_local_record(name: str) -> bool:
    return state.find(name) is not None


def sweep_rows() -> list[dict[str, Any]]:
    return [{"name": r.name, "state": r.effective_state(), "trials": len(r.trials), "created": r.created,
             "experiment": r.experiment, "tracking_uri": redact_uri(r.tracking_uri),
             "parent_run_id": r.parent_run_id, "sweep_file": r.sweep_file} for r in state.load_all()]


def submitted_rows() -> list[dict[str, Any]]:
    """Sweeps sent to Ray clusters by `submit`, with their Ray job's state as the cluster reports it now."""
    from orchestrator.running.jobs import job_error, job_status, submissions

    rows = []
    for s in submissions():
        job_state = job_status(s)
        rows.append({"name": s.sweep, "state": job_state, "job_id": s.job_id, "address": s.address,
                     "tracking_uri": redact_uri(s.tracking_uri), "created": s.submitted,
                     "error": job_error(s) if job_state == "FAILED" else None})
    return rows


def trial_rows(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sweep's summary and one row per trial: its listed trials, then a searched sweep's trials as its
    sampler made them (their MLflow runs), then the samples still to come."""
    from orchestrator.contract import TRIAL_ID
    from orchestrator.running.progress import last_line
    from orchestrator.tracking.writer import Tracker

    record = state.load(name)
    sweep_state = record.effective_state()
    found = sorted(Tracker(record.tracking_uri).trial_runs(record.parent_run_id), key=lambda r: r.info.start_time)
    runs = {run.data.tags.get(TRIAL_ID): RunSeen(run.info.run_id, dict(run.data.tags), dict(run.data.metrics))
            for run in found}
    listed = {t["id"] for t in record.trials}
    sampled = [{"id": run.data.tags.get(TRIAL_ID), "name": run.info.run_name,
                "iterations": int(run.data.params.get("optim.iterations", 0))}
               for run in found if run.data.tags.get(TRIAL_ID) not in listed]
    to_come = [{"id": None, "name": f"sample {i} (not started)",
                "iterations": sampled[0]["iterations"] if sampled else record.iterations_per_sample}
               for i in range(len(sampled), record.samples or 0)]
    rows = []
    for trial in [*record.trials, *sampled, *to_come]:
        history = trial_record.read(trial_record.record_path(record.records, trial))
        row = trial_view(trial, history, runs.get(trial["id"]), sweep_state)
        rows.append({**row, "error": last_line(row["error"])})
    summary = {"name": record.name, "state": sweep_state, "experiment": record.experiment,
               "tracking_uri": redact_uri(record.tracking_uri), "parent_run_id": record.parent_run_id,
               "experiment_path": record.experiment_path, "created": record.created,
               "mlflow_behind": record.mlflow_behind, **sweep_progress(rows, record.created, sweep_state)}
    return summary, rows
