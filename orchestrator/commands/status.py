"""`resnet-sweep status [NAME]`: the sweeps this state directory knows, or one sweep's trials (state,
progress, latest metrics), read from the state record, the trials' records and MLflow; never starts Ray."""
from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="one sweep's trials (default: list the sweeps)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


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

    from orchestrator.running import views

    console = Console(width=max(Console().width, 100))
    if args.name is None:
        rows, submitted = views.sweep_rows(), views.submitted_rows()
        if args.json:
            print(json.dumps(rows + [{"kind": "ray_job", **r} for r in submitted], indent=2))
            return 0
        if not rows and not submitted:
            console.print(f"no sweeps under {views.state_home()} yet: `resnet-sweep run sweeps/smoke.yaml` starts "
                          "one")
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
    submitted = [r for r in views.submitted_rows() if r["name"] == args.name]
    if submitted and not views.has_local_record(args.name):  # its driver runs on the cluster's head
        if args.json:
            print(json.dumps(submitted, indent=2))
            return 0
        _print_submitted(console, submitted)
        latest = submitted[-1]
        console.print(f"follow:  ray job logs --address {latest['address']} --follow {latest['job_id']}",
                      highlight=False)
        return 0
    summary, rows = views.trial_rows(args.name)
    if args.json:
        print(json.dumps({**summary, "trials": rows}, indent=2))
        return 0
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
    rungs: dict[str, int] = {}
    for r in rows:
        if r.get("rung"):
            rungs[r["rung"]] = rungs.get(r["rung"], 0) + 1
    if rungs:
        console.print("trained as: " + ", ".join(f"{k} ({v})" for k, v in sorted(rungs.items())), highlight=False)
    for r in rows:
        if r.get("fallback"):  # a fast path failed on this machine: the trial went on, slower
            console.print(f"fell back: {r['name']} trains as {r['rung']}: {r['fallback']}", highlight=False,
                          soft_wrap=True)
    if summary["mlflow_behind"]:
        console.print(f"MLflow is behind the trials' records for {len(summary['mlflow_behind'])} runs: "
                      f"resnet-sweep resume {summary['name']}  sends the rest", highlight=False)
    if summary["state"] == "interrupted":
        console.print(f"continue it:  resnet-sweep resume {summary['name']}", highlight=False)
    hint = browse_hint(views.tracking_uri_of(args.name), summary["parent_run_id"])  # unredacted URI
    console.print(f"compare the runs in MLflow: {hint}", highlight=False, soft_wrap=True)
    return 0


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
