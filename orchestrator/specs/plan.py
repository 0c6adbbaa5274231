"""What a sweep will cost, before anything starts: per trial params, multiply-adds, iterations, epochs and an
estimated training time. Specs in, rows out (`resnet-sweep plan` formats them); the one measurement is a short
calibration on this machine's CPU when the estimate is for the CPU.

The time is an ESTIMATE scaled from one reference figure, ResNet-20's training images/s, by each trial's
multiply-adds per image. Where the figure comes from, in order: `plan --throughput N`; on a GPU, the machine
profile `resnet-sweep doctor --gpu` measured on this GPU model (resnet_core/machine_profile.py, in the state
directory; the newest GPU profile when planning from a machine without one), else an assumed H100 figure; on the
CPU, a calibration here (a few real training steps of ResNet-20, about a second). The plan says which, and whether
it was measured.

Each trial's peak training memory is computed from its model (resnet_core/memory.py); a trial that cannot fit in
the share of a GPU it will get is refused before anything starts.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import CliError
from orchestrator.specs.expansion import expand, probe_trials
from orchestrator.specs.sweep import SweepSpec, Trial
from resnet_core.schedule import split_sizes, steps_per_epoch
from resnet_core.spec import ModelSpec

# Assumed for GPUs until `resnet-sweep doctor --gpu` has measured one (no session has had a GPU yet). Small nets
# leave a GPU underused, so the multiply-add rate grows with model size; two reference points, interpolated in
# log(multiply-adds):
# - ResNet-20 (CIFAR, 41M mult-adds): about 50k training images/s on one H100 with bf16 autocast and CUDA graphs
#   (the figures quoted for one H100: 10k for one eager process, 86k for eight packed ones; 50k sits between);
# - ResNet-50 (ImageNet 224, 3.9G mult-adds): about 3,000 training images/s with bf16 (the order of published
#   mixed-precision figures for one A100/H100), data loading not counted.
# A measured or given ResNet-20 figure rescales both. A CPU has no launch-bound regime worth modelling: there the
# multiply-add rate is taken as constant across sizes.
REFERENCE_IMAGES_PER_SEC = 50_000.0
_SMALL = (ModelSpec(family="cifar", depth=20), 10, REFERENCE_IMAGES_PER_SEC)
_LARGE = (ModelSpec(family="imagenet", depth=50), 1000, 3_000.0)
EVAL_COST = 1 / 3  # a forward pass is about a third of forward + backward
CALIBRATION = {"batch": 32, "warmup_steps": 1, "steps": 3}  # about a second on one core

Device = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class Throughput:
    """ResNet-20's training images/s on the device the estimate is for, and where that figure comes from."""

    device: Device
    images_per_sec: float
    source: str
    measured: bool

    @classmethod
    def given(cls, device: Device, images_per_sec: float) -> "Throughput":
        return cls(device, images_per_sec, f"{images_per_sec:,.0f} ResNet-20 images/s as given (--throughput)",
                   False)

    @classmethod
    def assumed_gpu(cls) -> "Throughput":
        return cls("gpu", REFERENCE_IMAGES_PER_SEC,
                   f"assumed: {REFERENCE_IMAGES_PER_SEC:,.0f} ResNet-20 images/s (and {_LARGE[2]:,.0f} for "
                   "ResNet-50) on one H100 with bf16, not measured; `resnet-sweep doctor --gpu` measures it", False)


def measured_gpu(directory: Path | None = None, gpu: str | None = None) -> Throughput | None:
    """ResNet-20's best images/s in the machine profile of `gpu` (or the newest GPU profile), when there is one."""
    from resnet_core.machine_profile import find_profile

    profile = find_profile(gpu, directory=directory)
    row = ((profile or {}).get("images_per_sec") or {}).get("resnet20") or {}
    modes = {k: v for k, v in row.items() if k in ("eager", "compiled", "step_graph") and isinstance(v, float)}
    if not modes:
        return None
    mode = max(modes, key=modes.get)
    return Throughput("gpu", modes[mode], f"measured: {modes[mode]:,.0f} ResNet-20 images/s on {profile['gpu']} "
                      f"({mode}, torch {profile.get('torch')}, profile {profile['path']})", True)


def tiny_profile_note(directory: Path | None = None) -> str:
    """Said beside an assumed GPU figure when this machine has only the doctor's tiny CPU profile: it proved the
    code path on the CPU; its figures are no GPU's."""
    from resnet_core.machine_profile import TINY_CPU, find_profile

    tiny = find_profile(kind=TINY_CPU, directory=directory)
    return "" if tiny is None else (f"; the machine profile here is a tiny CPU profile ({tiny['path']}: the GPU "
                                    "stages' code path on the CPU, not a GPU's figures), so it is not used")


@functools.lru_cache(maxsize=None)
def calibrate_cpu(threads: int) -> Throughput:
    """A few real training steps of ResNet-20 on this CPU with `threads` threads (a trial's `cpu` share)."""
    import torch

    from resnet_core.runtime import resolve_runtime
    from resnet_core.spec import RuntimeSpec
    from resnet_core.throughput import measure_training

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = measure_training(ModelSpec(depth=20), resolve_runtime(RuntimeSpec(device="cpu")),
                                  CALIBRATION["batch"], CALIBRATION["steps"], CALIBRATION["warmup_steps"])
    finally:
        torch.set_num_threads(before)
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return Throughput("cpu", result.images_per_sec,
                      f"measured here: {result.images_per_sec:,.0f} ResNet-20 images/s on this CPU with {threads} "
                      f"thread{'s' if threads > 1 else ''} ({CALIBRATION['steps']} steps of "
                      f"{CALIBRATION['batch']}{load}; a shared machine's load skews it)", True)


def estimate_device(sweep: SweepSpec, gpu_here: bool) -> Device:
    """Where `run` would train this sweep's trials from here: on the CPU when the sweep asks for none or this
    machine has none (a local Ray then runs GPU trials on the CPU), else on the GPU. `--device gpu` plans for a
    cluster's GPUs instead."""
    return "gpu" if gpu_here and sweep.resources.worker_gpu != 0 else "cpu"


def throughput_for(sweep: SweepSpec, device: Device | None = None) -> Throughput:
    if device is None:
        import torch

        device = estimate_device(sweep, torch.cuda.is_available())
    if device == "gpu":
        import torch

        here = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        measured = (measured_gpu(gpu=here) if here else None) or measured_gpu()
        if measured is not None:
            return measured
        assumed = Throughput.assumed_gpu()
        return Throughput("gpu", assumed.images_per_sec, assumed.source + tiny_profile_note(), False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return calibrate_cpu(max(1, min(cores, math.floor(sweep.resources.cpu))))


@dataclass(frozen=True)
class TrialPlan:
    index: int
    id: str
    name: str
    model: str
    params: int
    macs: int  # multiply-adds per image
    image_size: int
    iterations: int
    batch_size: int
    train_images: int
    epochs: float  # derived: iterations / full batches per epoch (resnet_core.schedule)
    est_seconds: float  # on the plan's device, the trial alone
    varied: dict[str, Any]
    peak_memory_bytes: int = 0  # training, on one device (one worker's share of a data-parallel trial)


@dataclass(frozen=True)
class SweepPlan:
    sweep: str
    experiment: str
    trials: tuple[TrialPlan, ...]
    resources: dict[str, Any]
    scheduler: str
    search: str
    device: Device  # what the estimate is for
    est_seconds: float  # trials one after another
    est_wall_seconds: float  # on the CPU: trials side by side on this machine's cores, `cpu` each
    throughput_images_per_sec: float
    throughput_source: str
    throughput_measured: bool
    gpu_memory_bytes: float | None = None  # each GPU's, when known: what a trial's share is checked against

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trials"] = [asdict(t) for t in self.trials]
        return out


def _cost(model: ModelSpec, num_classes: int, image_size: int | None) -> tuple[int, int, int]:
    from resnet_core.accounting import model_cost  # cached per frozen spec

    cost = model_cost(model, num_classes, image_size)
    return cost.params, cost.macs, cost.image_size


def plan_trial(index: int, trial: Trial, throughput: Throughput, workers: int = 1) -> TrialPlan:
    from resnet_core.accounting import trial_cost  # cached per frozen spec
    from resnet_core.memory import estimate_memory  # cached per model, batch and size

    spec = trial.spec
    cost = trial_cost(spec)
    params, macs, image_size = cost.params, cost.macs, cost.image_size
    train_images, test_images = split_sizes(spec.data)
    images = spec.optim.iterations * spec.optim.batch_size
    epochs = spec.optim.iterations / steps_per_epoch(train_images, spec.optim.batch_size)
    evaluated = test_images * math.ceil(epochs) * EVAL_COST  # one test pass per epoch
    seconds = (images + evaluated) * macs / macs_per_sec(macs, throughput)
    precision = spec.runtime.precision  # auto: reduced precision on a GPU (bf16, or fp16 on older ones)
    reduced = precision in ("bf16", "fp16") or (precision == "auto" and throughput.device == "gpu")
    memory = estimate_memory(spec, reduced, workers)
    return TrialPlan(index, trial.id, trial.name, spec.model.name, params, macs, image_size,
                     spec.optim.iterations, spec.optim.batch_size, train_images, round(epochs, 2), seconds,
                     {k: v for k, v in trial.varied}, memory.total)


def gpu_memory_here() -> float | None:
    """Each GPU's memory in bytes: this machine's first GPU, else the newest GPU machine profile's; None when
    neither says."""
    import torch

    if torch.cuda.is_available():
        return float(torch.cuda.get_device_properties(0).total_memory)
    from resnet_core.machine_profile import find_profile

    return (find_profile() or {}).get("gpu_memory_bytes")


def check_fits(sweep: SweepSpec, trials: tuple[TrialPlan, ...], gpu_memory: float) -> None:
    """Refuse (exit 2) a trial whose peak training memory exceeds the share of a GPU it will get."""
    share = 1.0 if sweep.resources.worker_gpu is None else sweep.resources.worker_gpu
    if not share:
        return
    for t in trials:
        if t.peak_memory_bytes > share * gpu_memory:
            per = f" per worker ({sweep.resources.workers} workers)" if sweep.resources.workers > 1 else ""
            raise CliError(f"sweep {sweep.name}: trial {t.name} ({t.model}, optim.batch_size {t.batch_size}) needs "
                           f"about {t.peak_memory_bytes / 2**30:.1f} GiB at its peak{per}, more than the "
                           f"{share * gpu_memory / 2**30:.1f} GiB it gets (resources.gpu {share:g} of a "
                           f"{gpu_memory / 2**30:.1f} GiB GPU): lower optim.batch_size (and optim.lr in proportion), "
                           "use runtime.precision bf16, or give it more of a GPU")


def macs_per_sec(macs: int, throughput: Throughput) -> float:
    """Training multiply-adds per second (counted per image, forward only, as the paper counts) at this size."""
    small_macs = _cost(*_SMALL[:2], None)[1]
    if throughput.device == "cpu":
        return throughput.images_per_sec * small_macs
    scale = throughput.images_per_sec / REFERENCE_IMAGES_PER_SEC
    (small, small_rate), (large, large_rate) = ((_cost(m, c, None)[1], m_ips * scale * _cost(m, c, None)[1])
                                                for m, c, m_ips in (_SMALL, _LARGE))
    x = min(max((math.log(macs) - math.log(small)) / (math.log(large) - math.log(small)), 0.0), 1.0)
    return math.exp(math.log(small_rate) + x * (math.log(large_rate) - math.log(small_rate)))


def plan_sweep(sweep: SweepSpec, throughput: Throughput | None = None, device: Device | None = None,
               gpu_memory: float | None = None) -> SweepPlan:
    """Every trial's cost, peak memory and estimated time. Without `throughput`, it is found for `device` (default:
    where `run` would train here) after every trial has been checked, so bad input is refused before any
    calibration. On a GPU, a trial that cannot fit in its share of `gpu_memory` bytes (default: this machine's GPU,
    else the machine profile's) is refused (CliError)."""
    searched = sweep.search.kind == "optuna"
    trials = probe_trials(sweep) if searched else expand(sweep)  # a search's trials are known only as it runs
    throughput = throughput or throughput_for(sweep, device)
    planned = tuple(plan_trial(i, t, throughput, sweep.resources.workers) for i, t in enumerate(trials))
    if throughput.device == "gpu":
        gpu_memory = gpu_memory or gpu_memory_here()
        if gpu_memory:
            check_fits(sweep, planned, gpu_memory)
    total = sum(t.est_seconds for t in planned)
    if searched:  # num_samples trials, each costing about what the space's ends cost on average (ASHA: less)
        total *= sweep.search.num_samples / len(planned)
    wall = total
    if throughput.device == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        side_by_side = max(1, min(len(planned), math.floor(cores / (sweep.resources.cpu * sweep.resources.workers))))
        wall = total / side_by_side
    return SweepPlan(sweep.name, sweep.experiment_name, planned,
                     {"cpu": sweep.resources.cpu, "gpu": sweep.resources.worker_gpu,
                      "workers": sweep.resources.workers}, sweep.scheduler.kind, sweep.search.kind,
                     throughput.device, total, wall, throughput.images_per_sec, throughput.source,
                     throughput.measured, gpu_memory if throughput.device == "gpu" else None)


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
