"""Drive a launch's Tune experiment to its end and close the books: the driver half of running/launch.py.

The launch has recorded the sweep (state record, MLflow parent run) before this runs; here the record says
`running` with this process as its driver, Tune runs, and the final state (finished, failed, interrupted) is
written only at the end, so a killed driver leaves a record that `resume` continues.
"""
from __future__ import annotations

import os
import time
from typing import Any

from orchestrator.records import state
from orchestrator.tracking.outcome import log_outcome
from orchestrator.tracking.writer import Tracker


def drive(record: state.SweepRecord, tuner_factory: Any, resume: bool, earlier: list[dict] = ()) -> int:
    """Run (or resume) the Tune experiment, print the summary; exit code 0 when every trial finished or diverged,
    1 when some failed (named, with their errors), 130 when Ctrl-C stopped it (one line, no traceback).
    `earlier`: trials a resumed sweep does not run again ({config, last_result, status} as Tune's trials have
    them), for the summary; `tuner_factory` is None when no trial is left to run."""
    from rich.console import Console

    from orchestrator.running import interrupt  # imports Ray Tune (1-2 s): `run` has it imported while Ray starts

    console = Console(width=max(Console().width, 100))  # pipes get 80 columns: too narrow for the table
    record.state, record.driver_pid = "running", os.getpid()
    state.save(record)
    started = time.monotonic()
    try:
        tuner = tuner_factory() if tuner_factory is not None else None
        interrupt.reset()
        results = tuner.fit() if tuner is not None else []
    except KeyboardInterrupt:  # a second Ctrl-C, while Tune was still stopping after the first
        return _interrupted(console, record)
    except Exception:
        state.update(record.name, state="failed")  # e.g. Ray would not start: the books say so, then the traceback
        Tracker(record.tracking_uri).end_sweep_on_exit(record.parent_run_id, "failed")
        raise
    elapsed = time.monotonic() - started
    rows = _rows(record, results, earlier)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    if interrupt.requested() or any(r["state"] in ("pending", "running", "paused") for r in rows):
        return _interrupted(console, record)
    failed = [r for r in rows if r["state"] == "failed"]
    state.update(record.name, state="failed" if failed else "finished")
    log_outcome(record.tracking_uri, record.parent_run_id, rows)  # the experiment's runs table shows it
    if tuner is None:  # nothing ran: no callback ended the parent run
        Tracker(record.tracking_uri).end_sweep_on_exit(record.parent_run_id, "failed" if failed else "finished")
    _summary(console, record, rows, counts, elapsed, resume)
    return 1 if failed else 0


def _interrupted(console: Any, record: state.SweepRecord) -> int:
    """The books say interrupted, the user reads one line, and the shell gets the usual exit code of a SIGINT."""
    state.update(record.name, state="interrupted")
    Tracker(record.tracking_uri).end_sweep_on_exit(record.parent_run_id, "interrupted")
    console.print(f"interrupted: `resnet-sweep resume {record.name}` continues where it stopped", highlight=False)
    return 130


def _rows(record: state.SweepRecord, results: Any, earlier: list[dict]) -> list[dict[str, Any]]:
    """One summary row per trial of the sweep, in its order; trials Tune never started are pending."""
    from types import SimpleNamespace

    from orchestrator.running.progress import trial_row

    by_id = {row["id"]: row for row in (trial_row(SimpleNamespace(**t)) for t in earlier)}
    for result in results:
        if result.config is None:  # a trial that never started (Ctrl-C came first)
            continue
        status = "ERROR" if result.error else "TERMINATED"
        row = trial_row(SimpleNamespace(config=result.config, last_result=result.metrics or {}, status=status))
        if result.error:
            row["error"] = f"{type(result.error).__name__}: {result.error}"
        by_id[row["id"]] = row
    known = [by_id.pop(t["id"], None) or {"name": t["name"], "id": t["id"], "state": "pending", "iteration": 0,
                                          "iterations": t["iterations"], "train_error": None, "test_error": None,
                                          "images_per_sec": None, "error": None} for t in record.trials]
    return known + list(by_id.values())  # a searched sweep's trials exist only once its sampler made them


def _summary(console: Any, record: state.SweepRecord, rows: list[dict], counts: dict[str, int], elapsed: float,
             resume: bool) -> None:
    from orchestrator.running.progress import last_line, render
    from orchestrator.tracking.ui import browse_hint

    console.print(render(rows, f"Sweep {record.name}: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}"
                               f" in {elapsed:.1f} s{' (resumed)' if resume else ''}"))
    console.print(f"MLflow experiment {record.experiment!r}, parent run {record.parent_run_id}")
    console.print(f"compare the runs in MLflow: {browse_hint(record.tracking_uri, record.parent_run_id)}",
                  highlight=False, soft_wrap=True)
    console.print(f"status:  resnet-sweep status {record.name}", highlight=False)
    log = state.launch_log(record.name)
    if log.is_file() and log.stat().st_mtime >= time.time() - elapsed:  # written by this driver
        console.print(f"tracebacks of the trials' crashes: {log}", highlight=False, soft_wrap=True)
    for r in rows:
        if r["state"] == "failed":
            console.print(f"failed: {r['name']}: {last_line(r.get('error')) or 'no error text'}", highlight=False,
                          soft_wrap=True)
