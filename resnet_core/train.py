"""Train one trial from its spec and yield one metrics dict per epoch (the contract the orchestrator adapts).

The recipe is the paper's (Sec. 4.2): SGD with momentum, weight decay, a step schedule in iterations, the optional
ResNet-110 warm-up, evaluation on the test set (and the held-out validation set) after every epoch, and Figure 7's
layer responses at the end. Every iteration is a full batch (the paper counts iterations of 128): an epoch is
floor(N / batch) iterations over a fresh order, whose last N mod batch images sit that epoch out; the last epoch
stops mid-way when the iteration budget ends there.

Speed: the training set sits on the device; one iteration is step.py's TrainStep (optionally one CUDA graph),
which sums per-step values (loss, errors, a non-finite-loss marker) on the device; they are read once per epoch,
plus once every WARMUP_CHECK_EVERY iterations while warming up and every DIVERGENCE_CHECK_EVERY iterations
otherwise, so the host rarely waits for the GPU. Figure 6's finer training curve (`train_error_curve`, every
TRAIN_CURVE_EVERY iterations) is snapshotted on the device and read with the epoch's sums.

Evaluation is evaluate.py, loading another trial's weights transfer.py, and what a checkpoint holds resume.py.
A fast path (step graph, compile, reduced precision) that fails in a start's first iterations is dropped and the
start made again on the next rung (fallback.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from resnet_core.checkpoint import save_checkpoint
from resnet_core.curve import CurveMarks
from resnet_core.data import TrialData
from resnet_core.distributed import Shard
from resnet_core.evaluate import evaluate
from resnet_core.failures import DivergedError, OutOfMemoryError
from resnet_core.fallback import (FALLBACK, PROBATION_STEPS, RUNG, cause_of, drop_reason, is_plain, lower, may_drop,
                                  rung_name)
from resnet_core.layout import net_layout
from resnet_core.loading import load_trial_data
from resnet_core.model import build_model
from resnet_core.responses import layer_response_std
from resnet_core.resume import Progress, checkpoint_state, resume
from resnet_core.runtime import Runtime, device_metrics, resolve_runtime
from resnet_core.schedule import WARMUP_CHECK_EVERY, WarmupState, learning_rate
from resnet_core.spec import OptimSpec, TrialSpec
from resnet_core.step import StepSums, TrainStep
from resnet_core.transfer import apply_transfer, set_train_mode

DIVERGENCE_CHECK_EVERY = 100  # iterations between host reads of the non-finite-loss marker (besides epoch ends)
# Iterations between points of the finer training curve (Figure 6 plots training error against iterations, far
# more often than once per epoch), plus a point at each epoch's end. Each is a device-side snapshot of the running
# sums, read at the epoch's end with the epoch's own sums: no extra host sync during the epoch.
TRAIN_CURVE_EVERY = 20


def train(spec: TrialSpec, checkpoint_dir: str | Path | None = None, resume_from: str | Path | None = None,
          runtime: Runtime | None = None) -> Iterator[dict[str, Any]]:
    """Yield per-epoch metrics; the last dict has `done: True` and `layer_response_std` (Figure 7), and each
    the `rung` it trained on (`fallback`: why a faster one was dropped). `runtime` is the top rung to try
    (default: spec.runtime resolved on this machine).

    When `checkpoint_dir` is given, the checkpoint there is up to date before each yield. `resume_from` is such a
    directory: training continues at the same iteration, data position and warm-up state. A non-finite loss
    raises DivergedError. Bad input (spec, data, checkpoints) raises SpecError.

    Inside a torch.distributed process group every rank calls train() alike: each trains on its shard of every
    global batch under DDP, and all yield the same global metrics; rank 0 alone writes checkpoints and adds
    Figure 7's layer responses (measured on its share of the test set). Running out of device memory raises
    OutOfMemoryError, which names the batch size.
    """
    try:
        yield from _train(spec, checkpoint_dir, resume_from, runtime)
    except torch.OutOfMemoryError as err:  # CUDA (and other accelerators)
        raise OutOfMemoryError(spec, Shard.current().world, "the GPU", err) from err
    except RuntimeError as err:
        if "can't allocate memory" not in str(err):  # the CPU allocator's wording
            raise
        raise OutOfMemoryError(spec, Shard.current().world, "the CPU", err) from err


@dataclass
class _Trial:
    """What every epoch of one trial works with: built once, before the first epoch (or after a resume)."""

    spec: TrialSpec
    checkpoint_dir: str | Path | None
    shard: Shard
    runtime: Runtime
    data: TrialData
    model: nn.Module
    frozen: list[nn.Module]  # transfer's fixed parts, kept in eval mode
    optimizer: torch.optim.Optimizer
    step: TrainStep
    sums: StepSums
    progress: Progress
    probation_end: int = -1  # the iteration up to which a failure drops a rung (fallback.py); -1: none
    rung: dict[str, str] = field(default_factory=dict)  # RUNG and FALLBACK, added to every epoch's metrics

    def save(self) -> None:
        """Bring the checkpoint up to date when there is one; rank 0 alone writes it."""
        if self.checkpoint_dir is not None and self.shard.leader:
            save_checkpoint(self.checkpoint_dir, checkpoint_state(self.spec, self.model, self.optimizer,
                                                                  self.progress))


@dataclass
class _Epoch:
    """One epoch in progress: the positions of its batch order it trains and the host's counts of this rank's
    images (the loss and error sums stay on the device, in StepSums)."""

    index: int  # 0-based
    first: int  # the first position to train: past 0 when resuming mid-epoch
    last: int  # one past the last position: the final epoch may be partial
    seen: int  # images this epoch, those before a resume included
    window_seen: int  # images since the last warm-up check
    started: float  # time.perf_counter() when this process began the epoch
    curve: CurveMarks
    images_done: int = 0  # images trained since `started`


def _train(spec: TrialSpec, checkpoint_dir: str | Path | None, resume_from: str | Path | None,
           runtime: Runtime | None) -> Iterator[dict[str, Any]]:
    shard = Shard.current()
    runtime = runtime or resolve_runtime(spec.runtime, data_parallel=shard.world > 1)
    torch.manual_seed(spec.seed)  # model initialisation; data order and augmentation use data.epoch_seed
    data = load_trial_data(spec.data, net_layout(spec.model).image_size, spec.optim.batch_size,
                           spec.runtime.eval_batch_size, spec.seed, runtime.device, runtime.memory_format, shard)
    initial_rng, drops = torch.get_rng_state(), []
    while True:  # down the fallback ladder until a rung gets through its first iterations
        torch.set_rng_state(initial_rng)  # every rung starts from the same initial weights
        trial = _start(spec, checkpoint_dir, resume_from, shard, runtime, data, drops)
        if trial.progress.iteration >= spec.optim.iterations and trial.progress.last_metrics is not None:
            yield trial.progress.last_metrics  # a finished trial: report, do not train further
            return
        try:
            first = _run_epoch(trial)
            break
        except Exception as err:  # noqa: BLE001  a failure within the probation drops a rung; others re-raise
            at = err.iteration if isinstance(err, DivergedError) else trial.progress.iteration
            if trial.probation_end < 0 or at >= trial.probation_end or not may_drop(err):
                raise
            cause = cause_of(err, trial.step.capturing)
            next_rung = lower(runtime, cause)
            if next_rung is None:
                raise
            drops.append(drop_reason(err, cause, runtime, next_rung))
            if runtime.compile:
                torch.compiler.reset()  # the failed rung's compiled graphs and their CUDA-graph memory
            runtime = next_rung
    yield first
    while trial.progress.iteration < spec.optim.iterations:
        yield _run_epoch(trial)


def _start(spec: TrialSpec, checkpoint_dir: str | Path | None, resume_from: str | Path | None, shard: Shard,
           runtime: Runtime, data: TrialData, drops: list[str]) -> _Trial:
    """Model, optimizer and step on `runtime`, at the start or at `resume_from`'s checkpoint."""
    model = build_model(spec.model, data.num_classes).to(runtime.device, memory_format=runtime.memory_format)
    frozen = apply_transfer(model, spec.transfer)
    optimizer = _sgd(model, spec.optim, runtime)
    progress = Progress(warmup=WarmupState.start(spec.optim))
    if resume_from is not None:
        progress = resume(spec, resume_from, model, optimizer)
        for group in optimizer.param_groups:  # the spec's values, not the checkpoint's: PBT changes them
            group.update(momentum=spec.optim.momentum, weight_decay=spec.optim.weight_decay)
    sums = StepSums.on(runtime.device)
    step = TrainStep(data_parallel(model, runtime) if shard.world > 1 else model, optimizer, data.train, runtime,
                     sums)
    # Data-parallel ranks do not drop rungs: one rank's exception would leave the others in a collective.
    probation = shard.world == 1 and not is_plain(runtime)
    rung = {RUNG: rung_name(runtime), **({FALLBACK: "; ".join(drops)} if drops else {})}
    return _Trial(spec, checkpoint_dir, shard, runtime, data, model, frozen, optimizer, step, sums, progress,
                  progress.iteration + PROBATION_STEPS if probation else -1, rung)


def _sgd(model: nn.Module, optim: OptimSpec, runtime: Runtime) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay over the parameters that learn (transfer may freeze some)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                           nesterov=optim.nesterov, **({"fused": True} if runtime.fused_optimizer
                                                       else {"foreach": True}))


def _run_epoch(trial: _Trial) -> dict[str, Any]:
    """Train one epoch (the rest of one after a resume), evaluate, checkpoint; returns the epoch's metrics."""
    epoch = _start_epoch(trial)
    lr = _train_steps(trial, epoch)
    check_finite(trial.sums.first_bad, trial.shard)
    images_total = _sync_sums(trial, epoch)  # the epoch's one host sync
    train_seconds = time.perf_counter() - epoch.started
    metrics = _epoch_metrics(trial, epoch, lr, images_total / max(train_seconds, 1e-9))
    metrics["epoch_time"] = time.perf_counter() - epoch.started
    trial.progress.epoch_sums = [0.0, 0.0, 0.0]
    trial.progress.last_metrics = metrics
    trial.save()
    return metrics


def _start_epoch(trial: _Trial) -> _Epoch:
    """The epoch that holds the next iteration, its running sums set from `progress` (zeros, or a checkpoint's
    partial sums), and the model in train mode."""
    progress, sums = trial.progress, trial.sums
    per_epoch = trial.data.train.steps  # full batches: the paper's iterations of 128 (Sec. 4.2)
    index = progress.iteration // per_epoch
    epoch_sums, warmup_window = trial.shard.own(progress.epoch_sums), trial.shard.own(progress.warmup_window)
    sums.start(epoch_sums[0], epoch_sums[1], warmup_window[0], progress.iteration)
    seen = int(epoch_sums[2])  # images (this rank's), on the host
    epoch = _Epoch(index, first=progress.iteration - index * per_epoch,
                   last=min(per_epoch, trial.spec.optim.iterations - index * per_epoch),
                   seen=seen, window_seen=int(warmup_window[1]), started=time.perf_counter(),
                   curve=CurveMarks(progress.iteration, sums.loss, sums.wrong, seen))
    set_train_mode(trial.model, trial.frozen)
    return epoch


def _train_steps(trial: _Trial, epoch: _Epoch) -> float:
    """The epoch's iterations with their periodic checks and checkpoints; returns the last learning rate."""
    optim, progress = trial.spec.optim, trial.progress
    batch = optim.batch_size // trial.shard.world  # this rank's images per step
    every = trial.spec.runtime.checkpoint_every
    for position, selection in enumerate(trial.data.train.epoch(epoch.index, epoch.first), epoch.first):
        if position >= epoch.last:
            break
        lr = learning_rate(optim, progress.iteration, progress.warmup.active)
        trial.step.set_lr(lr)
        trial.step(*selection)  # updates `sums` on the device, no host sync
        epoch.seen += batch
        epoch.images_done += batch
        epoch.window_seen += batch
        progress.iteration += 1
        if progress.iteration == trial.probation_end:
            check_finite(trial.sums.first_bad, trial.shard)  # the rung's first steps were finite (fallback.py)
        if progress.iteration % TRAIN_CURVE_EVERY == 0 or position + 1 == epoch.last:  # and the epoch's end
            epoch.curve.mark(progress.iteration, trial.sums.loss, trial.sums.wrong, epoch.seen)
        _check_warmup_or_divergence(trial, epoch)
        if trial.checkpoint_dir is not None and every and progress.iteration % every == 0 and position + 1 < epoch.last:
            check_finite(trial.sums.first_bad, trial.shard)  # never checkpoint a diverged model
            _sync_sums(trial, epoch)
            trial.save()
    return lr


def _check_warmup_or_divergence(trial: _Trial, epoch: _Epoch) -> None:
    """While warming up, every WARMUP_CHECK_EVERY iterations (and at the warm-up's cap): stop on a non-finite loss
    and end the warm-up once the training error since the last check is below warmup.until_train_error (80% in
    Sec. 4.2). Afterwards, every DIVERGENCE_CHECK_EVERY iterations: stop on a non-finite loss. Each check is one
    host read of the device."""
    optim, progress, sums, shard = trial.spec.optim, trial.progress, trial.sums, trial.shard
    if progress.warmup.active:
        cap = optim.warmup.max_iterations if optim.warmup else None
        if progress.iteration % WARMUP_CHECK_EVERY == 0 or progress.iteration == cap:
            check_finite(sums.first_bad, shard)
            window_total, seen_total = shard.total([sums.window_wrong, epoch.window_seen], trial.runtime.device)
            error = window_total / seen_total  # the same on every rank, so is the warm-up decision
            progress.warmup = progress.warmup.after_check(optim, progress.iteration, error)
            sums.window_wrong.zero_()
            epoch.window_seen = 0
    elif progress.iteration % DIVERGENCE_CHECK_EVERY == 0:
        check_finite(sums.first_bad, shard)


def _sync_sums(trial: _Trial, epoch: _Epoch) -> float:
    """Running sums of all ranks into `progress` (one host sync); returns images trained this epoch."""
    sums = trial.sums
    *totals, done = trial.shard.total([sums.loss, sums.wrong, epoch.seen, sums.window_wrong, epoch.window_seen,
                                       epoch.images_done], trial.runtime.device)
    trial.progress.epoch_sums, trial.progress.warmup_window = totals[:3], totals[3:]
    return done


def _epoch_metrics(trial: _Trial, epoch: _Epoch, lr: float, images_per_sec: float) -> dict[str, Any]:
    """Training loss and error, the finer curve, test (and val) errors, lr, speed and device memory; the last
    epoch adds `done` and Figure 7's layer responses."""
    progress, optim, data, runtime, shard = trial.progress, trial.spec.optim, trial.data, trial.runtime, trial.shard
    loss_total, error_total, seen_total = progress.epoch_sums
    metrics: dict[str, Any] = {
        "epoch": epoch.index + 1, "iteration": progress.iteration,
        "epochs": math.ceil(optim.iterations / data.train.steps),
        "train_loss": loss_total / seen_total, "train_error": error_total / seen_total,
        **epoch.curve.metrics(shard, runtime.device),
        **evaluate(trial.model, data.evals["test"], runtime, shard).metrics("test")}
    if "val" in data.evals:
        metrics.update(evaluate(trial.model, data.evals["val"], runtime, shard).metrics("val"))
    metrics.update(lr=lr, images_per_sec=images_per_sec, **device_metrics(runtime.device), **trial.rung)
    if progress.iteration >= optim.iterations:
        metrics["done"] = True
        if shard.leader:
            with runtime.autocast():
                names, stds = layer_response_std(trial.model, (x for x, _ in data.evals["test"]))
            metrics.update(layer_response_std=stds, layer_response_names=names)
    return metrics


def check_finite(first_bad: torch.Tensor, shard: Shard = Shard()) -> None:
    """Raise DivergedError at the first iteration (over all ranks) whose loss was not finite; one host read."""
    iteration = shard.first_bad(first_bad)
    if iteration >= 0:
        raise DivergedError(iteration)


def data_parallel(model: nn.Module, runtime: Runtime) -> nn.Module:
    """The DDP wrapper that trains `model` (gradients averaged over ranks). Evaluation and checkpoints keep using
    `model` itself: DDP's forward is a collective, and only some ranks run those."""
    from torch.nn.parallel import DistributedDataParallel

    on_cuda = runtime.device.type == "cuda"
    return DistributedDataParallel(model, device_ids=[runtime.device] if on_cuda else None)
