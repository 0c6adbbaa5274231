"""Shared test helpers."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The console script installed beside this interpreter: tests run the CLI exactly as a user does.
RESNET_SWEEP = str(Path(sys.executable).with_name("resnet-sweep"))


def resnet_sweep(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run `resnet-sweep ARGS` in a subprocess, capturing text output."""
    return subprocess.run([RESNET_SWEEP, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def cluster():
    """One two-node Ray cluster with an MLflow server on loopback, shared by the tests that need one (starting
    it costs 30-50 s on 2 cores); a test that kills a node starts it again. Skips without root and iproute2."""
    from loopback_cluster import FAST_NODE_DEATH, can_make_namespaces, loopback_cluster

    if not can_make_namespaces():
        pytest.skip("needs root and iproute2 for a private network namespace")
    with loopback_cluster(cpus_per_node=1, ray_env=FAST_NODE_DEATH) as started:
        yield started


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The tests train tiny nets: on 2 shared cores a second intra-op thread makes such steps 5-50x slower
    (measured under the other suites' load), never faster. Here and in the processes tests start (the CLI, Ray's
    workers, which keep an OMP_NUM_THREADS they inherit, as a trial of `cpu: 1` would have anyway)."""
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    """Slow end-to-end tests first (a stable sort: files keep their order): with `make test`'s two xdist workers the
    quick tests then fill the gaps at the end instead of one long test starting last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
