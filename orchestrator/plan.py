"""What a sweep will cost, before anything starts: per trial params, multiply-adds, iterations, epochs and an
estimated GPU time. Pure: specs in, rows out (`resnet-sweep plan` formats them).

The time is an ESTIMATE, not a measurement: a reference training throughput for ResNet-20 on CIFAR (configurable)
is scaled by each trial's multiply-adds per image, as if one trial had the GPU to itself. Packing small trials
(`resources: {gpu: 0.25}`) shortens the sweep's wall time below the summed GPU time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.sweep import SweepSpec, Trial, expand
from resnet_core.spec import DataSpec, ModelSpec

# Assumed, not measured here (no GPU on the development machine). Small nets leave a GPU underused, so the
# multiply-add rate grows with model size; two reference points, interpolated in log(multiply-adds):
# - ResNet-20 (CIFAR, 41M mult-adds): about 50k training images/s on one H100 with bf16 autocast and CUDA graphs
#   (issue 4 quotes 10k for one eager process and 86k for eight packed ones; 50k sits between);
# - ResNet-50 (ImageNet 224, 3.9G mult-adds): about 3,000 training images/s with bf16 (the order of published
#   mixed-precision figures for one A100/H100), data loading not counted.
# `plan --throughput N` rescales both by N / 50k: the ResNet-20 images/s measured on your GPU.
REFERENCE_IMAGES_PER_SEC = 50_000.0
_SMALL = (ModelSpec(family="cifar", depth=20), 10, REFERENCE_IMAGES_PER_SEC)
_LARGE = (ModelSpec(family="imagenet", depth=50), 1000, 3_000.0)
REFERENCE_SOURCE = ("assumed training throughput of {ips:,.0f} images/s for ResNet-20 (and {large:,.0f} for "
                    "ResNet-50) on one H100 with bf16, scaled by multiply-adds per image; an estimate, "
                    "not a measurement")
EVAL_COST = 1 / 3  # a forward pass is about a third of forward + backward

# Images per split of the real datasets (train, test); synthetic sets say their own sizes.
DATASET_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "imagenet": (1_281_167, 50_000)}


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
    epochs: float  # derived: iterations x batch / training images
    est_gpu_seconds: float
    varied: dict[str, Any]


@dataclass(frozen=True)
class SweepPlan:
    sweep: str
    experiment: str
    trials: tuple[TrialPlan, ...]
    resources: dict[str, Any]
    scheduler: str
    search: str
    est_gpu_seconds: float
    throughput_images_per_sec: float
    throughput_source: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trials"] = [asdict(t) for t in self.trials]
        return out


def split_sizes(data: DataSpec) -> tuple[int, int]:
    """(training images after the validation hold-out, test images) the trial will see."""
    if data.dataset == "synthetic":
        train, test = data.synthetic_train, data.synthetic_test
    else:
        train, test = DATASET_SIZES[data.dataset]
    if data.train_limit:
        train = min(train, data.train_limit)
    if data.test_limit:
        test = min(test, data.test_limit)
    return max(train - data.val_split, 1), test


def _cost(model: ModelSpec, num_classes: int, image_size: int | None) -> tuple[int, int, int]:
    from resnet_core.accounting import model_cost  # cached per frozen spec

    cost = model_cost(model, num_classes, image_size)
    return cost.params, cost.macs, cost.image_size


def plan_trial(index: int, trial: Trial, images_per_sec: float) -> TrialPlan:
    spec = trial.spec
    size = spec.data.image_size if spec.data.dataset == "synthetic" else None
    params, macs, image_size = _cost(spec.model, spec.data.classes, size)
    train_images, test_images = split_sizes(spec.data)
    images = spec.optim.iterations * spec.optim.batch_size
    epochs = images / train_images
    evaluated = test_images * max(1, round(epochs)) * EVAL_COST  # one test pass per epoch
    seconds = (images + evaluated) * macs / macs_per_sec(macs, images_per_sec)
    return TrialPlan(index, trial.id, trial.name, spec.model.name, params, macs, image_size,
                     spec.optim.iterations, spec.optim.batch_size, train_images, round(epochs, 2), seconds,
                     {k: v for k, v in trial.varied})


def macs_per_sec(macs: int, images_per_sec: float = REFERENCE_IMAGES_PER_SEC) -> float:
    """Training multiply-adds per second (counted per image, forward only, as the paper counts) at this size."""
    scale = images_per_sec / REFERENCE_IMAGES_PER_SEC
    (small, small_rate), (large, large_rate) = ((_cost(m, c, None)[1], m_ips * scale * _cost(m, c, None)[1])
                                                for m, c, m_ips in (_SMALL, _LARGE))
    x = min(max((math.log(macs) - math.log(small)) / (math.log(large) - math.log(small)), 0.0), 1.0)
    return math.exp(math.log(small_rate) + x * (math.log(large_rate) - math.log(small_rate)))


def plan_sweep(sweep: SweepSpec, images_per_sec: float = REFERENCE_IMAGES_PER_SEC) -> SweepPlan:
    trials = tuple(plan_trial(i, t, images_per_sec) for i, t in enumerate(expand(sweep)))
    return SweepPlan(sweep.name, sweep.experiment_name, trials,
                     {"cpu": sweep.resources.cpu, "gpu": sweep.resources.worker_gpu,
                      "workers": sweep.resources.workers}, sweep.scheduler.kind,
                     sweep.search.kind, sum(t.est_gpu_seconds for t in trials), images_per_sec,
                     REFERENCE_SOURCE.format(ips=images_per_sec,
                                             large=_LARGE[2] * images_per_sec / REFERENCE_IMAGES_PER_SEC))


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
