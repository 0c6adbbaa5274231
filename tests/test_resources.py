"""What a trial asks Ray for (running/resources.py: trial_resources), against a real local Ray of 2 CPUs and no GPU."""
from __future__ import annotations

import pytest

from orchestrator.running import resources as ray_resources
from orchestrator.specs.reading import sweep_from_dict

BASE = {"model": {"family": "cifar", "depth": 8}, "data": {"dataset": "synthetic"},
        "optim": {"batch_size": 8, "iterations": 8}}


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def resources(**given):
    return ray_resources.trial_resources(sweep_from_dict({"name": "r", "base": BASE, "resources": given}))


def test_gpu_trials_run_on_the_cpu_of_a_local_ray_without_gpus(local_ray):
    (asked, note), (default, quiet) = resources(cpu=1, gpu=0.25), resources(cpu=1)
    assert (asked.gpu, asked.workers, default.gpu, quiet) == (0.0, 1, 0.0, None)
    assert "this machine has no GPU: trials run on CPU" in note


def test_a_cluster_keeps_the_gpu_request_for_its_autoscaler(local_ray, monkeypatch):
    monkeypatch.setattr(ray_resources, "_joined_cluster", True)  # as init_ray records after joining an address
    asked, note = resources(gpu=0.25)
    assert asked.gpu == 0.25 and "trials wait for GPU nodes" in note
    default, _ = resources()
    assert default.gpu == 0.0  # no explicit request: CPU trials where no GPU is to be seen


def test_data_parallel_trials_run_as_many_at_once_as_fit(local_ray):
    pair, _ = resources(cpu=1, workers=2)
    assert (pair.cpu, pair.workers, pair.max_concurrent) == (1, 2, 1)  # Ray Train holds the 2 CPUs per trial
    explicit = ray_resources.trial_resources(sweep_from_dict({"name": "r", "base": BASE, "max_concurrent": 3,
                                                            "resources": {"workers": 2}}))[0]
    assert explicit.max_concurrent == 3
