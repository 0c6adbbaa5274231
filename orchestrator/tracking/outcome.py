"""A launch's outcome as its parent run's metrics: trials finished, failed, stopped, diverged, and the best test
error (a trial's latest), so the experiment's runs table shows each launch at a glance (its runs are the trials').
"""
from __future__ import annotations

import sys
import time
from typing import Any

from orchestrator.contract import BEST_TEST_ERROR, TRIALS_OUTCOME
from orchestrator.tracking.server import quick_requests
from orchestrator.tracking.writer import Tracker


def log_outcome(tracking_uri: str, parent_run_id: str, rows: list[dict[str, Any]]) -> None:
    """`rows`: the launch's trials as the driver's summary has them ({state, test_error, ...}). An unreachable
    server is a note on stderr: the trials' runs hold everything this summarises."""
    from mlflow.entities import Metric

    tracker, stamp = Tracker(tracking_uri), int(time.time() * 1000)
    errors = [r["test_error"] for r in rows if isinstance(r.get("test_error"), (int, float))]
    metrics = [Metric(name, float(sum(r["state"] == state for r in rows)), stamp, 0)
               for state, name in TRIALS_OUTCOME.items()]
    metrics += [Metric(BEST_TEST_ERROR, float(min(errors)), stamp, 0)] if errors else []
    try:
        with quick_requests():
            tracker.client.log_batch(parent_run_id, metrics=metrics)
    except Exception as err:  # noqa: BLE001
        print(f"resnet-sweep: the launch's outcome was not logged on its parent run {parent_run_id}: "
              f"{tracker.why(err)}", file=sys.stderr)
