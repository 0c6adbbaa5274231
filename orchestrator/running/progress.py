"""The live table `run` and `resume` show: one row per trial with its state, progress and latest errors.

A Ray Tune callback in the driver. On a terminal it redraws a rich table at most twice a second; into a pipe or
a log file (a submitted job's log, `run > log`) it prints a line as each trial starts and ends, and a summary
line (trials running and finished, iterations done, ETA) every PROGRESS_EVERY_S seconds, so a log shows how the
sweep goes long before its first trial ends.
"""
from __future__ import annotations

import os
import time
from typing import Any

from ray.tune import Callback

REFRESH_S = 0.5
PROGRESS_EVERY_S = float(os.environ.get("RESNET_SWEEPS_PROGRESS_S", "30"))  # summary lines into a pipe or log
_STATE = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused", "TERMINATED": "finished",
          "ERROR": "failed"}


def trial_state(trial: Any) -> str:
    """finished, diverged or failed (the trial's own last result says which), stopped (TERMINATED before its
    last iteration: by the scheduler, e.g. ASHA, or by Ctrl-C), pending, running or paused."""
    result = trial.last_result or {}
    if trial.status == "TERMINATED":
        if result.get("state") in ("diverged", "failed"):
            return result["state"]
        return "finished" if result.get("final") else "stopped"
    return _STATE.get(trial.status, trial.status.lower())


def trial_row(trial: Any) -> dict[str, Any]:
    """What the table shows for one Tune trial (also the closing summary's rows)."""
    info, result = trial.config["trial"], trial.last_result or {}
    return {"name": info["name"], "id": info["id"], "state": trial_state(trial),
            "iteration": result.get("iteration", 0) if result.get("state") != "diverged"
            else result.get("diverged_at_iteration"),
            "iterations": info["spec"]["optim"]["iterations"], "train_error": result.get("train_error"),
            "test_error": result.get("test_error"), "images_per_sec": result.get("images_per_sec"),
            "error": result.get("error")}


def last_line(text: str | None) -> str | None:
    """The line of an error text that says what went wrong: its last non-empty one (a traceback ends there)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def render(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("trial", "state", "iteration", "train err %", "test err %", "images/s"):
        table.add_column(col, justify="left" if col in ("trial", "state") else "right", no_wrap=True)
    colour = {"finished": "green", "running": "cyan", "diverged": "yellow", "failed": "red", "stopped": "yellow"}
    for r in rows:
        table.add_row(r["name"], f"[{colour.get(r['state'], 'white')}]{r['state']}[/]",
                      f"{r['iteration'] or 0:,}/{r['iterations']:,}", _pct(r["train_error"]),
                      _pct(r["test_error"]), f"{r['images_per_sec']:,.0f}" if r["images_per_sec"] else "-")
    return table


def summary_line(rows: list[dict[str, Any]], elapsed_s: float) -> str:
    """'progress: 2 running, 1 finished of 4 trials; 1,230/4,000 iterations (31%); ETA 4m10s': iterations and ETA
    by status's rule (records/trial_view.py), at the pace of the `elapsed_s` seconds this driver has run."""
    from datetime import datetime, timedelta, timezone

    from orchestrator.records.trial_view import sweep_progress

    now = datetime.now(timezone.utc)
    progress = sweep_progress([{**r, "iteration": r["iteration"] or 0} for r in rows],
                              (now - timedelta(seconds=elapsed_s)).isoformat(), "running", now=now)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    done, total = progress["iterations_done"], progress["iterations_total"]
    eta = f"; ETA {_duration(progress['eta_s'])}" if progress["eta_s"] is not None else ""
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    share = 100 * done / max(total, 1)
    return f"progress: {states} of {len(rows)} trials; {done:,}/{total:,} iterations ({share:.0f}%){eta}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _pct(value: float | None) -> str:
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else "-"


class ProgressCallback(Callback):
    def __init__(self, title: str):
        self.title = title
        self._reset()

    def _reset(self) -> None:
        self._live: Any = None
        self._console: Any = None
        self._last = 0.0
        self._reported: set[str] = set()
        self._started: set[str] = set()
        self._since = self._summarised = time.monotonic()

    def __getstate__(self) -> dict[str, Any]:
        return {"title": self.title}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def setup(self, **info: Any) -> None:
        from rich.console import Console

        self._console = Console()
        if self._console.is_terminal:
            from rich.live import Live

            self._live = Live(render([], self.title), console=self._console, auto_refresh=False)
            self._live.start()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now - self._last < REFRESH_S:
            return
        self._last = now
        self._draw(trials)

    def _draw(self, trials: list) -> None:
        rows = [trial_row(t) for t in trials]
        if self._live is not None:
            self._live.update(render(rows, self.title), refresh=True)
            return
        if self._console is None:
            return
        from orchestrator.running import interrupt

        shown = ("finished", "diverged", "failed") + (() if interrupt.requested() else ("stopped",))
        for r in rows:
            if r["state"] != "pending" and r["id"] not in self._started:
                self._started.add(r["id"])
                self._console.print(f"{'started':>8}  {r['name']}  iteration {r['iteration'] or 0:,}/"
                                    f"{r['iterations']:,}", highlight=False)
            if r["state"] in shown and r["id"] not in self._reported:
                self._reported.add(r["id"])
                self._console.print(f"{r['state']:>8}  {r['name']}  iteration {r['iteration'] or 0:,}/"
                                    f"{r['iterations']:,}  train err {_pct(r['train_error'])}%  "
                                    f"test err {_pct(r['test_error'])}%", highlight=False)
        if time.monotonic() - self._summarised >= PROGRESS_EVERY_S:
            self._summarised = time.monotonic()
            self._console.print(summary_line(rows, self._summarised - self._since), highlight=False)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._draw(trials)
        if self._live is not None:
            self._live.stop()
            self._live = None
