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


def trial_spec(keys: dict, **changes):
    """A TrialSpec from key paths ({"optim.lr": 0.1}), with `changes` as keyword arguments (`optim__lr=0.01`)."""
    from resnet_core.spec import TrialSpec
    from resnet_core.specio import set_path

    data: dict = {}
    for key, value in {**keys, **{k.replace("__", "."): v for k, v in changes.items()}}.items():
        data = set_path(data, key, value)
    return TrialSpec.from_dict(data)


def tiny_sweep(name: str, *, train: int = 64, test: int = 32, batch: int = 32, milestones: tuple = (4, 6),
               iterations: int = 8, lr: float | None = None, augment: bool | None = None,
               eval_batch: int | None = None) -> str:
    """The head of a sweep file (its name and base trial: a ResNet-8 on synthetic images, on the CPU) that the
    sweep tests add their grid, search or scheduler to; one line per base section, as a person writes it."""
    data = f"dataset: synthetic, synthetic_train: {train}, synthetic_test: {test}"
    data += f", augment: {str(augment).lower()}" if augment is not None else ""
    optim = f"lr: {lr}, " if lr is not None else ""
    optim += f"batch_size: {batch}, milestones: {list(milestones)}, iterations: {iterations}"
    runtime = "device: cpu" + (f", eval_batch_size: {eval_batch}" if eval_batch else "")
    return (f"name: {name}\nbase:\n  model: {{family: cifar, depth: 8}}\n  data: {{{data}}}\n  optim: {{{optim}}}\n"
            f"  runtime: {{{runtime}}}\n")


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
