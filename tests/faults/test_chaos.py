"""Several pieces of a cluster lost in one sweep, the short version of bench/chaos.py (same harness): on the
suite's two-node loopback cluster with an `mlflow server`, a trial process, the worker node, the tracking server
and the driver are each SIGKILLed once at seeded random moments; the killed driver is followed by the same `run`
command from a machine with an empty state directory, as a retried Kubernetes job on a new head pod.

What must hold: one launch (one MLflow parent run, one Tune experiment), one child run per trial, every epoch in
MLflow exactly once, every restart from the trial's latest checkpoint, and every trial's final metrics and
weights bit-identical to the same trial trained undisturbed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loopback_cluster import can_make_namespaces

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from chaos import Plan, chaos_run, report  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not can_make_namespaces(), reason="needs root and iproute2 for a private network namespace"),
    pytest.mark.xdist_group("cluster"),  # one pytest-xdist worker runs every test of the session's `cluster`
]

PLAN = Plan(trials=4, epochs=5, per_epoch=4, kills={"trial": 1, "node": 1, "mlflow": 1, "driver": 1}, seed=3,
            gap_s=(0.5, 1.5), down_s=(1.0, 2.0), timeout_s=400)


def test_one_kill_of_each_kind_changes_nothing_a_user_sees(cluster):
    try:
        outcome = chaos_run(cluster, PLAN, name="chaos-short")
    finally:
        if not cluster.worker_node_pids():
            cluster.start_worker_node()  # whole again for the other tests that share the cluster
        if not cluster.mlflow_pids():
            cluster.start_mlflow()
    print(report(PLAN, outcome))
    assert outcome.problems(PLAN) == []
    assert outcome.driver_starts[0] == "run-again"
    driver_log = (cluster.root / "driver.log").read_text()
    assert "continuing the unfinished launch of 'chaos-short'" in driver_log
    assert outcome.figures["restarts"] >= 2  # the trial kill and the driver kill each restarted a trial
    # Each crash Tune retried is one line for the user; the tracebacks are in the launch's log file instead.
    assert "retrying resnet8-A-lr" in driver_log and "(retry 1 of 20)" in driver_log
    assert "Trial task failed" not in driver_log and "Traceback (most recent call last)" not in driver_log
