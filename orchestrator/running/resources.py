"""Ray itself: joining a cluster or starting a local Ray, and what each trial asks of it.

Local Ray starts itself (no dashboard) unless RAY_ADDRESS or `--address` names a cluster.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.specs.sweep import SweepSpec

_joined_cluster = False  # set by init_ray: this driver joined a cluster rather than starting a local Ray


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Join RAY_ADDRESS/--address when given; else start a local Ray (dashboard off, nothing to start by hand)."""
    global _joined_cluster
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own table; keep Tune's reporter quiet
    # On object storage, keeping few checkpoints forces an experiment snapshot per checkpoint; Tune warns about
    # it on every short epoch.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # The trials' records and MLflow keep the results; Tune's CSV/JSON/TensorBoard copies of every result cost
    # time and complain about lists.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Without those loggers Tune's result summary warns that result.json is missing; its metrics come from
    # the experiment state all the same.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # On Ctrl-C Tune logs how to restore with its own API; the driver prints `resnet-sweep resume NAME` instead.
    logging.getLogger("ray.tune.tune").setLevel(logging.ERROR)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        _joined_cluster = True
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
                 configure_logging=True)


def trials_per_gpu(sweep: SweepSpec, profile_dir: Path | None = None) -> int:
    """`resources.gpu: auto`: as many trials on one GPU as the machine profile measured to pay off (its best
    number of packed processes) and as fit in the GPU's memory at the sweep's largest peak (resnet_core/memory.py);
    1 without a GPU profile."""
    from orchestrator.specs.expansion import expand, probe_trials
    from resnet_core.machine_profile import find_profile
    from resnet_core.memory import estimate_memory

    profile = find_profile(directory=profile_dir)
    if not profile or not profile.get("trials_per_gpu"):
        return 1
    trials = probe_trials(sweep) if sweep.search.kind == "optuna" else expand(sweep)
    peak = max(estimate_memory(t.spec, t.spec.runtime.precision != "fp32").total for t in trials)
    fit = int(profile["gpu_memory_bytes"] // peak) if profile.get("gpu_memory_bytes") else profile["trials_per_gpu"]
    return max(1, min(int(profile["trials_per_gpu"]), fit))


@dataclass(frozen=True)
class TrialResources:
    """What one trial asks Ray for: `workers` processes of `cpu` CPUs and `gpu` GPUs each."""

    cpu: float
    gpu: float
    workers: int = 1
    max_concurrent: int | None = None  # data-parallel trials: as many as the cluster can hold at once


def trial_resources(sweep: SweepSpec) -> tuple[TrialResources, str | None]:
    """Ray resources per trial, and a note when GPUs were asked for where there are none: the local Ray runs the
    trials on CPU; a cluster keeps the request (an autoscaler adds GPU nodes on demand; trials wait till then)."""
    import ray

    cluster = ray.cluster_resources()
    gpus = cluster.get("GPU", 0)
    wanted, workers = sweep.resources.worker_gpu, sweep.resources.workers
    gpu = (1.0 if gpus else 0.0) if wanted is None else wanted
    if sweep.resources.gpu == "auto" and gpus:
        gpu = 1.0 / trials_per_gpu(sweep)
    note = None
    if gpu and not gpus and _joined_cluster:
        note = (f"resources.gpu is {gpu:g} but this Ray cluster has no GPU now: trials wait for GPU nodes "
                "(an autoscaler starts them)")
    elif gpu and not gpus:
        note = f"resources.gpu is {gpu:g} but this machine has no GPU: trials run on CPU"
        gpu = 0.0
    limit = sweep.max_concurrent
    if workers > 1 and limit is None:
        # Ray Train reserves the workers itself, outside Tune's accounting (the trial's own process takes no
        # CPU), so Tune would start every trial at once; cap it at what fits (an autoscaler may grow this).
        fits = [cluster.get("CPU", 0) / (sweep.resources.cpu * workers)] + ([gpus / (gpu * workers)] if gpu else [])
        limit = max(1, int(min(fits)))
    return TrialResources(sweep.resources.cpu, gpu, workers, limit), note
