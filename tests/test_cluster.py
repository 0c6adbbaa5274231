"""`resnet-sweep submit` on a real two-node Ray cluster with a real MLflow server, all on loopback:
the path a sweep takes when it is submitted to a cluster rather than run on this machine."""
import json

import pytest
from mlflow.tracking import MlflowClient

from conftest import RESNET_SWEEP
from loopback_cluster import can_make_namespaces

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not can_make_namespaces(), reason="needs root and iproute2 for a private network namespace"),
    pytest.mark.xdist_group("cluster"),  # one pytest-xdist worker runs every test of the session's `cluster`
]


def submit(cluster, storage, *extra):
    return cluster.run(RESNET_SWEEP, "submit", "sweeps/smoke.yaml", "--address", cluster.jobs_address,
                       "--tracking-uri", cluster.tracking_uri, "--storage", str(storage), "--follow",
                       "--set", "optim.iterations=24", "--set", "optim.milestones=[16,20]", *extra,
                       timeout=400, check=False)


def test_smoke_sweep_runs_on_both_nodes_and_nests_in_the_tracking_server(cluster):
    refused = submit(cluster, cluster.head_only_dir)
    assert refused.returncode == 1
    assert "not visible from 1 of the cluster's 2 nodes" in refused.stdout, refused.stdout[-3000:]

    done = submit(cluster, cluster.shared_dir)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "submitted sweep smoke as Ray job smoke-" in done.stdout

    client = MlflowClient(cluster.backend_store)  # the server's own store, read directly
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("resnet_sweeps.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("resnet_sweeps.role") == "trial"]
    finished_parent = [p for p in parents if p.info.status == "FINISHED"]
    assert len(finished_parent) == 1
    mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == finished_parent[0].info.run_id]
    assert len(mine) == 4
    assert all(c.data.tags["resnet_sweeps.state"] == "finished" for c in mine)
    assert len({c.data.tags["resnet_sweeps.node_id"] for c in mine}) == 2  # trials ran on both nodes
    assert all("test_error" in c.data.metrics for c in mine)

    # Data missing where the trials run: the job's driver looks on the cluster's nodes before anything starts.
    no_data = submit(cluster, cluster.shared_dir, "--set", "data.dataset=cifar10", "--set", "data.root=/no/cifar")
    assert no_data.returncode == 1
    expected = "resnet-sweep run: error: sweep.yaml: base.data.root: got '/no/cifar', expected a directory"
    assert expected in no_data.stdout, no_data.stdout[-3000:]

    listed = json.loads(cluster.run(RESNET_SWEEP, "status", "--json").stdout)
    jobs = [r for r in listed if r.get("kind") == "ray_job"]
    # the refused launch, the real one, the one without data (job ids sort by submission time)
    assert [j["state"] for j in jobs] == ["FAILED", "SUCCEEDED", "FAILED"]
    assert jobs[2]["error"].startswith(expected) and "looked in /no/cifar/cifar-10-batches-py" in jobs[2]["error"]
    assert jobs[1]["error"] is None
    assert f"{jobs[2]['job_id']}: {expected}" in cluster.run(RESNET_SWEEP, "status").stdout
