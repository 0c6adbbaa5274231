"""Where a trial's state, progress and latest metrics come from, for every view of a sweep (`status`, its JSON).

The trial's own record is the truth where this machine sees it: MLflow is brought up to date from it and may lag
it, or be away. A trial whose record has no event yet (or that this machine cannot see) is shown as its MLflow run
says; a trial neither has heard of is pending. A running trial of a sweep whose driver is gone is interrupted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from orchestrator.contract import ERROR, FALLBACK, LAST_STEP, RUNG, STATE, TERMINAL_STATES
from orchestrator.records.trial_record import History


@dataclass(frozen=True)
class RunSeen:
    """What a trial's MLflow run says, as plain values (this layer does not read MLflow itself)."""

    run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def trial_view(trial: dict[str, Any], history: History, run: RunSeen | None, sweep_state: str) -> dict[str, Any]:
    """One trial's row: `trial` is {id, name, iterations}; `error` is the full text of a failed or diverged
    trial's error (the view that prints it shortens it)."""
    tags, metrics = (run.tags, run.metrics) if run else ({}, {})
    state, iteration, error = tags.get(STATE, "pending"), int(tags.get(LAST_STEP, 0)), tags.get(ERROR)
    rung, fallback = tags.get(RUNG), tags.get(FALLBACK)
    if history.state != "pending":
        state, iteration, error = history.state, history.last_iteration, history.end.get("error")
        metrics = history.epochs[-1] if history.epochs else {}
        rung, fallback = metrics.get("rung"), metrics.get("fallback")
    if state == "running" and sweep_state != "running":
        state = "interrupted"
    return {"name": trial["name"], "id": trial["id"], "state": state, "iteration": max(iteration, 0),
            "iterations": trial["iterations"], "train_error": metrics.get("train_error"),
            "test_error": metrics.get("test_error"), "images_per_sec": metrics.get("images_per_sec"),
            "error": error if state in ("failed", "diverged") else None,
            "rung": rung, "fallback": fallback,  # the fallback ladder's rung it trains on, and why not a faster one
            "run_id": run.run_id if run else None}


def sweep_progress(rows: list[dict[str, Any]], created: str, sweep_state: str,
                   now: datetime | None = None) -> dict[str, Any]:
    """Iterations trained of the sweep's total (a trial in a terminal state counts whole: it trains no further),
    and for a running sweep the seconds left at the pace since launch (None until something was trained)."""
    total = sum(r["iterations"] for r in rows)
    done = sum(r["iterations"] if r["state"] in TERMINAL_STATES else min(r["iteration"], r["iterations"])
               for r in rows)
    eta = None
    if sweep_state == "running" and 0 < done < total:
        elapsed = ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(created)).total_seconds()
        eta = elapsed * (total - done) / done
    return {"iterations_done": done, "iterations_total": total, "eta_s": eta}
