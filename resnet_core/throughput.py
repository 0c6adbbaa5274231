"""Training throughput of one architecture on this machine: timed iterations of the real training step.

The step is step.py's TrainStep (gather, augmentation, forward, backward, SGD, running sums) on synthetic
CIFAR-shaped images held on the device, with the trial's own runtime choices (precision, compile, CUDA graphs),
so the figure is what a trial would see, minus evaluation. Used by `plan` for a short calibration on this machine
and by gpu_stages.py (`resnet-sweep doctor --gpu`). A measurement, never a target: benchmarks record these, tests
do not assert them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from resnet_core.augment import fit_normalizer
from resnet_core.data import TensorTrainBatches, synthetic
from resnet_core.model import build_model
from resnet_core.runtime import Runtime
from resnet_core.spec import DataSpec, ModelSpec
from resnet_core.step import GRAPH_WARMUP_STEPS, StepSums, TrainStep


@dataclass(frozen=True)
class Throughput:
    images_per_sec: float  # over the timed steps
    batch_size: int
    timed_steps: int
    first_steps_seconds: float  # the untimed ones: compilation, cuDNN autotuning, CUDA-graph capture
    peak_memory_bytes: int | None  # CUDA's peak allocation over the whole measurement; None off CUDA


def measure_training(model: ModelSpec, runtime: Runtime, batch_size: int = 128, steps: int = 20,
                     warmup_steps: int = GRAPH_WARMUP_STEPS + 2, image_size: int = 32,
                     classes: int = 10, ready: Callable[[], None] | None = None) -> Throughput:
    """Images/s of `steps` training iterations after `warmup_steps` untimed ones (enough for a CUDA graph's
    side-stream warm-up and capture). The data is 2 batches of synthetic images, cycled. `ready` is called
    between the two (packed processes wait there for each other, so their timed windows overlap)."""
    device = runtime.device
    train, _, _ = synthetic(DataSpec(dataset="synthetic", image_size=image_size, num_classes=classes,
                                     synthetic_train=2 * batch_size, synthetic_test=1), image_size)
    batches = TensorTrainBatches(train.to(device), fit_normalizer(train.images.to(device), "pixel_mean"),
                                 batch_size, seed=0, augment=True, memory_format=runtime.memory_format)
    torch.manual_seed(0)
    net = build_model(model, classes).to(device, memory_format=runtime.memory_format).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4,
                                **({"fused": True} if runtime.fused_optimizer else {"foreach": True}))
    sums = StepSums.on(device)
    step = TrainStep(net, optimizer, batches, runtime, sums)
    step.set_lr(0.1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def run(count: int) -> float:
        started = time.perf_counter()
        done, epoch = 0, 0
        while done < count:
            for (selection,) in batches.epoch(epoch):
                if done == count:
                    break
                step(selection)
                done += 1
            epoch += 1
        float(sums.loss)  # waits for the device
        return time.perf_counter() - started

    first = run(warmup_steps)
    if ready is not None:
        ready()
    seconds = run(steps)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return Throughput(steps * batch_size / seconds, batch_size, steps, first, peak)
