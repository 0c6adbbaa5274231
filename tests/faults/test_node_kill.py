"""A Ray worker node killed mid-sweep: its trial resumes on the remaining node from its last checkpoint
and the sweep finishes, every child run finished and its metric history without a step twice or a step missing.

The suite's two-node cluster on loopback (tests/loopback_cluster.py, the `cluster` fixture), one CPU per node, so
the sweep's two trials run one on each node; Tune storage is the directory both nodes see. The driver is
`resnet-sweep run --address` in the cluster's network namespace (it joins the head node, as Ray's driver placement
prefers). Once the trial on the worker node has reported an epoch, every process of the worker node is SIGKILLed at
once, raylet included, as when a machine loses power. The GCS is told to declare a node dead after about 1.5 s of
failed health checks (Ray's default is tens of seconds), so Tune sees the loss quickly; the trial then waits for
the head's CPU.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import RESNET_SWEEP
from faults.test_trial_kill import EPOCHS, PER_EPOCH, check_resumed_from, epochs_reported, kill_sweep
from loopback_cluster import RAY_PORT, can_make_namespaces
from resnet_core.checkpoint import load_checkpoint

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not can_make_namespaces(), reason="needs root and iproute2 for a private network namespace"),
    pytest.mark.xdist_group("cluster"),  # one pytest-xdist worker runs every test of the session's `cluster`
]

SWEEP = kill_sweep("nodekill")
TIMEOUT_S = 240  # the sweep, from submission to exit; about a minute on an idle 2-core machine


def trial_on_worker(cluster) -> Path | None:
    """The experiment directory of the trial the worker node runs, or None while it runs none. Tune chdirs a
    trial's process into .../working_dirs/<trial dir>, named as the trial's directory in shared storage (a Ray
    worker not yet set up for a trial still has another cwd)."""
    for pid, title in cluster.worker_node_pids().items():
        if title.startswith("ray::ImplicitFunc"):
            try:
                name = Path(f"/proc/{pid}/cwd").readlink().name
            except OSError:
                continue
            found = next(cluster.shared_dir.glob(f"nodekill-*/{name}"), None)
            if found is not None:
                return found
    return None


def test_killed_worker_node_trial_resumes_on_the_head(cluster):
    started = time.monotonic()
    try:
        sweep = cluster.root / "nodekill.yaml"
        sweep.write_text(SWEEP)
        driver = cluster.start(RESNET_SWEEP, "run", str(sweep), "--address", f"127.0.0.1:{RAY_PORT}",
                               "--tracking-uri", cluster.tracking_uri, "--storage", str(cluster.shared_dir),
                               log="driver.log")
        log = cluster.root / "driver.log"
        deadline = time.monotonic() + TIMEOUT_S
        try:
            trial_dir = None
            while trial_dir is None or epochs_reported(trial_dir / "metrics.jsonl") < 2:  # epoch 2 written
                assert time.monotonic() < deadline and driver.poll() is None, log.read_text()[-4000:]
                trial_dir = trial_dir or trial_on_worker(cluster)
                time.sleep(0.1)
            victim, history = trial_dir.name, trial_dir / "metrics.jsonl"
            killed_after = epochs_reported(history)
            killed = cluster.kill_worker_node()
            killed_at = time.monotonic() - started
            # Its last checkpoint as the node left it (written atomically; the retry needs seconds to start).
            shutil.copyfile(trial_dir / "latest" / "checkpoint.pt", cluster.root / "at-kill.pt")
            assert 0 < killed_after < EPOCHS, killed_after
            raylets = [re.search(r"--node_id=(\w+)", t) for t in killed.values() if "/raylet " in t]
            assert len(raylets) == 1 and raylets[0], killed  # the worker node's raylet, not the head's
            lost_node = raylets[0].group(1)
            driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if driver.poll() is None:  # the namespace's teardown kills it too; this just says so sooner
                driver.kill()
            driver.wait(timeout=30)
        elapsed = time.monotonic() - started
        output = log.read_text()
        print(f"node kill: worker node ({len(killed)} processes: "
              f"{sorted({t.split()[0].rsplit('/', 1)[-1] for t in killed.values()})}) killed while running "
              f"{victim} after {killed_after} epochs, at {killed_at:.1f} s; sweep done at {elapsed:.1f} s")
        assert driver.returncode == 0, output[-6000:]
        assert "Sweep nodekill: 2 finished" in output, output[-6000:]

        client = MlflowClient(cluster.backend_store)  # the server's own store, read directly
        experiment = client.get_experiment_by_name("nodekill")
        parents = client.search_runs([experiment.experiment_id], "tags.`resnet_sweeps.role` = 'sweep'")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        runs = client.search_runs([experiment.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
        runs = {f"{r.info.run_name}_{r.data.tags['resnet_sweeps.trial_id']}": r for r in runs}
        assert len(runs) == 2 and victim in runs, (victim, list(runs))  # no run lost, none duplicated
        for name, run in runs.items():
            assert run.data.tags["resnet_sweeps.state"] == "finished" and run.info.status == "FINISHED", name
            for key in ("train_loss", "test_error"):
                steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
                assert sorted(steps) == list(range(PER_EPOCH, PER_EPOCH * EPOCHS + 1, PER_EPOCH)), (name, steps)
        tags = runs.pop(victim).data.tags
        (other,) = runs.values()
        assert tags["resnet_sweeps.starts"] == "2"  # lost with its node, retried once
        # It finished on the node that survived: the one the other trial ran on from the start.
        assert other.data.tags["resnet_sweeps.starts"] == "1"
        assert tags["resnet_sweeps.node_id"] == other.data.tags["resnet_sweeps.node_id"] != lost_node
        state = json.loads(cluster.run(RESNET_SWEEP, "status", "nodekill", "--json").stdout)
        assert state["state"] == "finished" and {t["state"] for t in state["trials"]} == {"finished"}
        last_checkpoint = int(load_checkpoint(cluster.root / "at-kill.pt")["iteration"])
        assert last_checkpoint >= PER_EPOCH * killed_after
        print(f"node kill: {victim} restarted once on the head, from iteration {last_checkpoint}; runs lost: 0")
        check_resumed_from(tags, last_checkpoint)  # from its last checkpoint, not from scratch
    finally:
        if not cluster.worker_node_pids():
            cluster.start_worker_node()  # whole again for the other tests that share the cluster
