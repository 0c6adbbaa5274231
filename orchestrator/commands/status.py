"""`resnet-sweep status [NAME]`: the sweeps this state directory knows, or one sweep's trials (state,
progress, latest metrics), read from the state record, the trials' records and MLflow; never starts Ray."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any

from orchestrator.tracking.uris import redact_uri


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="one sweep's trials (default: list the sweeps)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def sweep_rows() -> list[dict[str, Any]]:
    from orchestrator.records import state

    return [{"name": r.name, "state": r.effective_state(), "trials": len(r.trials), "created": r.created,
             "experiment": r.experiment, "tracking_uri": redact_uri(r.tracking_uri),
             "parent_run_id": r.parent_run_id, "sweep_file": r.sweep_file} for r in state.load_all()]


def submitted_rows() -> list[dict[str, Any]]:
    """Sweeps sent to Ray clusters by `submit`, with their Ray job's state as the cluster reports it now."""
    from orchestrator.running.jobs import job_error, job_status, submissions

    rows = []
    for s in submissions():
        state = job_status(s)
        rows.append({"name": s.sweep, "state": state, "job_id": s.job_id, "address": s.address,
                     "tracking_uri": redact_uri(s.tracking_uri), "created": s.submitted,
                     "error": job_error(s) if state == "FAILED" else None})
    return rows


def trial_rows(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sweep's summary and one row per trial: from the trial's record where this machine sees it (MLflow may
    lag it, or be away), else from its MLflow run; trials neither has heard of are pending."""
    from orchestrator.contract import ERROR, LAST_STEP, STATE, TRIAL_ID
    from orchestrator.records import state, trial_record
    from orchestrator.running.progress import last_line
    from orchestrator.tracking.writer import Tracker

    record = state.load(name)
    sweep_state = record.effective_state()
    found = sorted(Tracker(record.tracking_uri).trial_runs(record.parent_run_id), key=lambda r: r.info.start_time)
    runs = {run.data.tags.get(TRIAL_ID): run for run in found}
    listed = {t["id"] for t in record.trials}
    # A searched sweep's trials are made by its sampler as it goes: MLflow's runs, then the samples still to come.
    sampled = [{"id": run.data.tags.get(TRIAL_ID), "name": run.info.run_name,
                "iterations": int(run.data.params.get("optim.iterations", 0))}
               for run in found if run.data.tags.get(TRIAL_ID) not in listed]
    samples = record.samples or 0
    to_come = [{"id": None, "name": f"sample {i} (not started)", "iterations": sampled[0]["iterations"] if sampled
                else record.iterations_per_sample} for i in range(len(sampled), samples)]
    rows = []
    for trial in [*record.trials, *sampled, *to_come]:
        run = runs.get(trial["id"])
        tags, metrics = (run.data.tags, run.data.metrics) if run else ({}, {})
        trial_state, iteration, error = tags.get(STATE, "pending"), int(tags.get(LAST_STEP, 0)), tags.get(ERROR)
        history = trial_record.read(trial_record.record_path(record.records, trial))
        if history.state != "pending":
            trial_state, iteration, error = history.state, history.last_iteration, history.end.get("error")
            metrics = history.epochs[-1] if history.epochs else {}
        if trial_state == "running" and sweep_state != "running":
            trial_state = "interrupted"
        rows.append({"name": trial["name"], "id": trial["id"], "state": trial_state,
                     "iteration": max(iteration, 0), "iterations": trial["iterations"],
                     "train_error": metrics.get("train_error"), "test_error": metrics.get("test_error"),
                     "images_per_sec": metrics.get("images_per_sec"),
                     "error": last_line(error) if trial_state in ("failed", "diverged") else None,
                     "run_id": run.info.run_id if run else None})
    summary = {"name": record.name, "state": sweep_state, "experiment": record.experiment,
               "tracking_uri": redact_uri(record.tracking_uri), "parent_run_id": record.parent_run_id,
               "experiment_path": record.experiment_path, "created": record.created,
               "mlflow_behind": record.mlflow_behind, **sweep_progress(rows, record.created, sweep_state)}
    return summary, rows


DONE = ("finished", "diverged", "failed", "stopped")  # trials that will train no further


def sweep_progress(rows: list[dict[str, Any]], created: str, sweep_state: str,
                   now: datetime | None = None) -> dict[str, Any]:
    """Iterations trained of the sweep's total (a finished, diverged, failed or stopped trial counts whole), and
    for a running sweep the seconds left at the pace since launch (None until something was trained)."""
    total = sum(r["iterations"] for r in rows)
    done = sum(r["iterations"] if r["state"] in DONE else min(r["iteration"], r["iterations"]) for r in rows)
    eta = None
    if sweep_state == "running" and 0 < done < total:
        elapsed = ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(created)).total_seconds()
        eta = elapsed * (total - done) / done
    return {"iterations_done": done, "iterations_total": total, "eta_s": eta}


def _progress_line(summary: dict[str, Any]) -> str:
    done, total = summary["iterations_done"], summary["iterations_total"]
    line = f"progress: {done:,} of {total:,} iterations ({100 * done / max(total, 1):.1f}%)"
    if summary["eta_s"] is not None:
        minutes = summary["eta_s"] / 60
        left = f"{minutes:.0f} min" if minutes >= 1 else f"{summary['eta_s']:.0f} s"
        line += f", about {left} left at the pace since launch"
    return line


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 100))
    if args.name is None:
        rows, submitted = sweep_rows(), submitted_rows()
        if args.json:
            print(json.dumps(rows + [{"kind": "ray_job", **r} for r in submitted], indent=2))
            return 0
        if not rows and not submitted:
            from orchestrator.records import state

            console.print(f"no sweeps under {state.home()} yet: `resnet-sweep run sweeps/smoke.yaml` starts one")
            return 0
        if rows:
            table = Table(title="Sweeps", title_justify="left")
            for col in ("name", "state", "trials", "created", "sweep file"):
                table.add_column(col, no_wrap=True)
            for r in rows:
                table.add_row(r["name"], r["state"], str(r["trials"]), r["created"], r["sweep_file"])
            console.print(table)
        if submitted:
            _print_submitted(console, submitted)
        return 0
    submitted = [r for r in submitted_rows() if r["name"] == args.name]
    if submitted and not _has_local_record(args.name):  # its driver runs on the cluster's head
        if args.json:
            print(json.dumps(submitted, indent=2))
            return 0
        _print_submitted(console, submitted)
        latest = submitted[-1]
        console.print(f"follow:  ray job logs --address {latest['address']} --follow {latest['job_id']}",
                      highlight=False)
        return 0
    summary, rows = trial_rows(args.name)
    if args.json:
        print(json.dumps({**summary, "trials": rows}, indent=2))
        return 0
    from orchestrator.records import state
    from orchestrator.running.progress import render
    from orchestrator.tracking.ui import browse_hint

    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    console.print(render(rows, f"Sweep {summary['name']} ({summary['state']}): "
                               + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))))
    console.print(_progress_line(summary), highlight=False)
    for r in rows:
        if r["error"]:
            console.print(f"{r['state']}: {r['name']}: {r['error']}", highlight=False, soft_wrap=True)
    if summary["mlflow_behind"]:
        console.print(f"MLflow is behind the trials' records for {len(summary['mlflow_behind'])} runs: "
                      f"resnet-sweep resume {summary['name']}  sends the rest", highlight=False)
    if summary["state"] == "interrupted":
        console.print(f"continue it:  resnet-sweep resume {summary['name']}", highlight=False)
    hint = browse_hint(state.load(args.name).tracking_uri, summary["parent_run_id"])  # unredacted URI
    console.print(f"compare the runs in MLflow: {hint}", highlight=False, soft_wrap=True)
    return 0


def _has_local_record(name: str) -> bool:
    from orchestrator.records import state
    from orchestrator.errors import CliError

    try:
        state.load(name)
    except CliError:
        return False
    return True


def _submitted_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title="Submitted to Ray clusters", title_justify="left")
    for col in ("name", "job state", "job id", "address", "submitted"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(r["name"], r["state"], r["job_id"], r["address"], r["created"])
    return table


def _print_submitted(console: Any, rows: list[dict[str, Any]]) -> None:
    console.print(_submitted_table(rows))
    for r in rows:
        if r.get("error"):  # the FAILED job's last log line: e.g. the data missing on the cluster
            console.print(f"{r['job_id']}: {r['error']}", highlight=False, soft_wrap=True)
