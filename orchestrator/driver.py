"""What `run` and `resume` share once the sweep is valid: record the launch, drive Tune, close the books.

Keeps the order that makes a killed driver recoverable: the MLflow parent run and the state record exist before
Ray starts, the record names the Tune experiment directory, and the final state is written only at the end.
"""
from __future__ import annotations

import os
import time
from typing import Any

from orchestrator import state
from orchestrator.cli import CliError
from orchestrator.tracking import Tracker, ui_command


def check_not_running(name: str) -> None:
    try:
        record = state.load(name)
    except CliError:
        return
    if record.effective_state() == "running":
        raise CliError(f"sweep {name!r} is running already (driver pid {record.driver_pid} on "
                       f"{record.driver_host}); `resnet-sweep status {name}` shows it")


def drive(record: state.SweepRecord, tuner_factory: Any, resume: bool) -> int:
    """Run (or resume) the Tune experiment, print the summary; exit code 0 when no trial failed."""
    from rich.console import Console

    console = Console(width=max(Console().width, 100))  # pipes get 80 columns: too narrow for the table
    record.state, record.driver_pid = "running", os.getpid()
    state.save(record)
    started = time.monotonic()
    try:
        tuner = tuner_factory()
        results = tuner.fit()
    except KeyboardInterrupt:
        state.update(record.name, state="interrupted")
        Tracker(record.tracking_uri).end_sweep_on_exit(record.parent_run_id, "interrupted")
        console.print(f"interrupted: `resnet-sweep resume {record.name}` continues where it stopped")
        return 130
    except Exception:
        state.update(record.name, state="failed")  # e.g. Ray would not start: the books say so, then the traceback
        Tracker(record.tracking_uri).end_sweep_on_exit(record.parent_run_id, "failed")
        raise
    elapsed = time.monotonic() - started
    rows = [_row(r) for r in results]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    failed = counts.get("failed", 0)
    final = "failed" if failed else "finished" if all(r["state"] in ("finished", "diverged") for r in rows) \
        else "interrupted"
    state.update(record.name, state=final)
    _summary(console, record, rows, counts, elapsed, resume)
    return 1 if failed or final != "finished" else 0


def _row(result: Any) -> dict[str, Any]:
    """A summary row from a Tune Result: its config, last metrics and error."""
    from types import SimpleNamespace

    from orchestrator.progress import trial_row

    status = "ERROR" if result.error else "TERMINATED"
    return trial_row(SimpleNamespace(config=result.config, last_result=result.metrics or {}, status=status))


def _summary(console: Any, record: state.SweepRecord, rows: list[dict], counts: dict[str, int], elapsed: float,
             resume: bool) -> None:
    from orchestrator.progress import render

    console.print(render(rows, f"Sweep {record.name}: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}"
                               f" in {elapsed:.1f} s{' (resumed)' if resume else ''}"))
    console.print(f"MLflow experiment {record.experiment!r}, parent run {record.parent_run_id}")
    console.print(f"compare the runs:  {ui_command(record.tracking_uri)}", highlight=False, soft_wrap=True)
    console.print(f"status:  resnet-sweep status {record.name}", highlight=False)
    if counts.get("failed"):
        console.print(f"trial errors are in {record.experiment_path}/*/error.txt", highlight=False, soft_wrap=True)
