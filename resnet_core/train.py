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
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from resnet_core.checkpoint import load_checkpoint, restore_rng_states, rng_states, save_checkpoint
from resnet_core.curve import CurveMarks
from resnet_core.data import EvalBatches
from resnet_core.distributed import Shard
from resnet_core.errors import Picklable
from resnet_core.layout import net_layout
from resnet_core.loading import load_trial_data
from resnet_core.model import ResNet, build_model
from resnet_core.responses import layer_response_std
from resnet_core.runtime import Runtime, device_metrics, resolve_runtime
from resnet_core.schedule import WARMUP_CHECK_EVERY, WarmupState, learning_rate
from resnet_core.spec import TransferSpec, TrialSpec
from resnet_core.specio import SpecError, flatten
from resnet_core.step import StepSums, TrainStep

DIVERGENCE_CHECK_EVERY = 100  # iterations between host reads of the non-finite-loss marker (besides epoch ends)
# Iterations between points of the finer training curve (Figure 6 plots training error against iterations, far
# more often than once per epoch), plus a point at each epoch's end. Each is a device-side snapshot of the running
# sums, read at the epoch's end with the epoch's own sums: no extra host sync during the epoch.
TRAIN_CURVE_EVERY = 20
CHECKPOINT_FORMAT = 1


class OutOfMemoryError(Picklable, RuntimeError):
    """The trial's device ran out of memory; the message says the batch size and what to change."""

    def __init__(self, spec: TrialSpec, workers: int, device: str, cause: BaseException):
        batch = spec.optim.batch_size
        share = f" ({batch // workers} per worker)" if workers > 1 else ""
        super().__init__(
            f"out of memory on {device} training {spec.model.name} at batch size {batch}{share}: lower "
            f"optim.batch_size (and optim.lr in proportion), use runtime.precision bf16, or give the trial a "
            f"device of its own (resources.gpu: 1 rather than a fraction). {type(cause).__name__}: "
            f"{str(cause).splitlines()[0] if str(cause) else ''}")


class DivergedError(Picklable, RuntimeError):
    """The training loss became NaN or infinite; `iteration` is the 0-based schedule iteration where it did."""

    def __init__(self, iteration: int):
        self.iteration = iteration
        super().__init__(f"diverged at iteration {iteration}: the training loss became NaN or infinite")


@dataclass
class Progress:
    """What a checkpoint must carry beyond model and optimizer to continue exactly."""

    iteration: int = 0
    warmup: WarmupState = field(default_factory=lambda: WarmupState(False))
    epoch_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # loss x images, errors, images
    warmup_window: list[float] = field(default_factory=lambda: [0.0, 0.0])  # errors, images since last check
    last_metrics: dict[str, Any] | None = None


def train(spec: TrialSpec, checkpoint_dir: str | Path | None = None,
          resume_from: str | Path | None = None) -> Iterator[dict[str, Any]]:
    """Yield per-epoch metrics; the last dict has `done: True` and `layer_response_std` (Figure 7).

    When `checkpoint_dir` is given, the checkpoint there is up to date before each yield. `resume_from` is such a
    directory: training continues at the same iteration, data position and warm-up state. A non-finite loss
    raises DivergedError. Bad input (spec, data, checkpoints) raises SpecError.

    Inside a torch.distributed process group every rank calls train() alike: each trains on its shard of every
    global batch under DDP, and all yield the same global metrics; rank 0 alone writes checkpoints and adds
    Figure 7's layer responses (measured on its share of the test set). Running out of device memory raises
    OutOfMemoryError, which names the batch size.
    """
    try:
        yield from _train(spec, checkpoint_dir, resume_from)
    except torch.OutOfMemoryError as err:  # CUDA (and other accelerators)
        raise OutOfMemoryError(spec, Shard.current().world, "the GPU", err) from err
    except RuntimeError as err:
        if "can't allocate memory" not in str(err):  # the CPU allocator's wording
            raise
        raise OutOfMemoryError(spec, Shard.current().world, "the CPU", err) from err


def _train(spec: TrialSpec, checkpoint_dir: str | Path | None,
           resume_from: str | Path | None) -> Iterator[dict[str, Any]]:
    shard = Shard.current()
    runtime = resolve_runtime(spec.runtime, data_parallel=shard.world > 1)
    optim = spec.optim
    torch.manual_seed(spec.seed)  # model initialisation; data order and augmentation use data.epoch_seed
    data = load_trial_data(spec.data, net_layout(spec.model).image_size, optim.batch_size,
                           spec.runtime.eval_batch_size, spec.seed, runtime.device, runtime.memory_format, shard)
    model = build_model(spec.model, data.num_classes).to(runtime.device, memory_format=runtime.memory_format)
    frozen = apply_transfer(model, spec.transfer)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                                nesterov=optim.nesterov, **({"fused": True} if runtime.fused_optimizer
                                                            else {"foreach": True}))
    progress = Progress(warmup=WarmupState.start(optim))
    if resume_from is not None:
        progress = resume(spec, resume_from, model, optimizer)
        if progress.iteration >= optim.iterations and progress.last_metrics is not None:
            yield progress.last_metrics  # a finished trial: report, do not train further
            return
    sums = StepSums.on(runtime.device)
    step = TrainStep(data_parallel(model, runtime) if shard.world > 1 else model, optimizer, data.train, runtime,
                     sums)
    per_epoch = data.train.steps  # full batches: the paper's iterations of 128 (Sec. 4.2)
    total_epochs = math.ceil(optim.iterations / per_epoch)
    batch = optim.batch_size // shard.world  # this rank's images per step

    while progress.iteration < optim.iterations:
        epoch = progress.iteration // per_epoch  # 0-based
        first = progress.iteration - epoch * per_epoch
        last = min(per_epoch, optim.iterations - epoch * per_epoch)  # the final epoch may be partial
        epoch_sums, warmup_window = shard.own(progress.epoch_sums), shard.own(progress.warmup_window)
        sums.start(epoch_sums[0], epoch_sums[1], warmup_window[0], progress.iteration)
        seen, window_seen = int(epoch_sums[2]), int(warmup_window[1])  # images (this rank's), on the host
        started, images_done = time.perf_counter(), 0
        curve = CurveMarks(progress.iteration, sums.loss, sums.wrong, seen)
        set_train_mode(model, frozen)

        def sync_sums() -> float:
            """Running sums of all ranks into `progress` (one host sync); returns images trained this epoch."""
            *totals, done = shard.total([sums.loss, sums.wrong, seen, sums.window_wrong, window_seen, images_done],
                                        runtime.device)
            progress.epoch_sums, progress.warmup_window = totals[:3], totals[3:]
            return done

        for position, selection in enumerate(data.train.epoch(epoch, first), first):
            if position >= last:
                break
            lr = learning_rate(optim, progress.iteration, progress.warmup.active)
            step.set_lr(lr)
            step(*selection)  # updates `sums` on the device, no host sync
            seen += batch
            images_done += batch
            window_seen += batch
            progress.iteration += 1
            if progress.iteration % TRAIN_CURVE_EVERY == 0 or position + 1 == last:  # and the epoch's end
                curve.mark(progress.iteration, sums.loss, sums.wrong, seen)
            if progress.warmup.active:
                cap = optim.warmup.max_iterations if optim.warmup else None
                if progress.iteration % WARMUP_CHECK_EVERY == 0 or progress.iteration == cap:
                    check_finite(sums.first_bad, shard)
                    window_total, seen_total = shard.total([sums.window_wrong, window_seen], runtime.device)
                    error = window_total / seen_total  # the same on every rank, so is the warm-up decision
                    progress.warmup = progress.warmup.after_check(optim, progress.iteration, error)
                    sums.window_wrong.zero_()
                    window_seen = 0
            elif progress.iteration % DIVERGENCE_CHECK_EVERY == 0:
                check_finite(sums.first_bad, shard)
            every = spec.runtime.checkpoint_every
            if checkpoint_dir is not None and every and progress.iteration % every == 0 and position + 1 < last:
                check_finite(sums.first_bad, shard)
                sync_sums()
                if shard.leader:
                    save_checkpoint(checkpoint_dir, checkpoint_state(spec, model, optimizer, progress))
        check_finite(sums.first_bad, shard)
        images_total = sync_sums()  # the epoch's one host sync
        train_seconds = time.perf_counter() - started
        loss_total, error_total, seen_total = progress.epoch_sums
        metrics: dict[str, Any] = {
            "epoch": epoch + 1, "iteration": progress.iteration, "epochs": total_epochs,
            "train_loss": loss_total / seen_total, "train_error": error_total / seen_total,
            **curve.metrics(shard, runtime.device),
            **evaluate(model, data.evals["test"], runtime, shard).metrics("test")}
        if "val" in data.evals:
            metrics.update(evaluate(model, data.evals["val"], runtime, shard).metrics("val"))
        metrics.update(lr=lr, images_per_sec=images_total / max(train_seconds, 1e-9), **device_metrics(runtime.device))
        if progress.iteration >= optim.iterations:
            metrics["done"] = True
            if shard.leader:
                with runtime.autocast():
                    names, stds = layer_response_std(model, (x for x, _ in data.evals["test"]))
                metrics.update(layer_response_std=stds, layer_response_names=names)
        metrics["epoch_time"] = time.perf_counter() - started
        progress.epoch_sums = [0.0, 0.0, 0.0]
        progress.last_metrics = metrics
        if checkpoint_dir is not None and shard.leader:
            save_checkpoint(checkpoint_dir, checkpoint_state(spec, model, optimizer, progress))
        yield metrics


def check_finite(first_bad: torch.Tensor, shard: Shard = Shard()) -> None:
    iteration = shard.first_bad(first_bad)
    if iteration >= 0:
        raise DivergedError(iteration)


def data_parallel(model: nn.Module, runtime: Runtime) -> nn.Module:
    """The DDP wrapper that trains `model` (gradients averaged over ranks). Evaluation and checkpoints keep using
    `model` itself: DDP's forward is a collective, and only some ranks run those."""
    from torch.nn.parallel import DistributedDataParallel

    on_cuda = runtime.device.type == "cuda"
    return DistributedDataParallel(model, device_ids=[runtime.device] if on_cuda else None)


@dataclass(frozen=True)
class Evaluation:
    """Errors (fractions) of one evaluation pass. With multi-crop batches ([B, crops, ...], the paper's 10-crop
    test, Sec. 3.4) top1/top5 average the softmax over the crops and the center_ pair is the single center crop
    (the 1-crop figure ResNeXt's tables give); with single-view batches the center_ pair is None. top5 is None
    when the classifier has 5 classes or fewer."""

    top1: float
    top5: float | None = None
    center_top1: float | None = None
    center_top5: float | None = None

    def metrics(self, split: str) -> dict[str, float]:
        """{'test_error': ..., 'test_top5_error': ..., 'test_error_1crop': ..., 'test_top5_error_1crop': ...}"""
        named = {f"{split}_error": self.top1, f"{split}_top5_error": self.top5,
                 f"{split}_error_1crop": self.center_top1, f"{split}_top5_error_1crop": self.center_top5}
        return {k: v for k, v in named.items() if v is not None}


CENTER_CROP = 4  # torchvision's TenCrop order: four corners, the center, then the same five flipped


@torch.no_grad()
def evaluate(model: nn.Module, batches: EvalBatches, runtime: Runtime, shard: Shard = Shard()) -> Evaluation:
    """Top-1 and top-5 error in eval mode; [B, crops, ...] batches average the softmax over crops (10-crop) and
    also score the center crop alone. Under data parallelism `batches` is this rank's share and the errors are over
    all ranks' shares. Counts stay on the device until one read at the end."""
    was_training = model.training
    model.eval()
    wrong = torch.zeros(4, dtype=torch.int64, device=runtime.device)  # top1, top5, center top1, center top5
    count, multi_crop, classes = 0, False, 0
    for images, labels in batches:
        with runtime.autocast():
            if images.dim() == 5:
                multi_crop = True
                b, crops = images.shape[:2]
                probs = model(images.flatten(0, 1)).float().softmax(-1).view(b, crops, -1)
                scored = ((probs.mean(1), 0), (probs[:, min(CENTER_CROP, crops - 1)], 2))
            else:
                scored = ((model(images).float(), 0),)
        for scores, slot in scored:
            classes = scores.shape[1]
            top = scores.topk(min(5, classes), dim=1).indices  # [B, k], best first
            hits = top == labels[:, None]
            wrong[slot] += (~hits[:, 0]).sum()
            wrong[slot + 1] += (~hits.any(1)).sum()
        count += len(labels)
    model.train(was_training)
    *totals, count_total = shard.total([*wrong, count], runtime.device)
    errors = [t / max(count_total, 1) for t in totals]
    top5 = classes > 5
    return Evaluation(errors[0], errors[1] if top5 else None, errors[2] if multi_crop else None,
                      errors[3] if multi_crop and top5 else None)


def set_train_mode(model: nn.Module, frozen: list[nn.Module]) -> None:
    """Train mode, except frozen parts stay in eval mode so their BN statistics do not drift either."""
    model.train()
    for module in frozen:
        module.eval()


def apply_transfer(model: ResNet, transfer: TransferSpec) -> list[nn.Module]:
    """Load transfer.checkpoint's weights into `model` and freeze what transfer.train keeps fixed.

    all: every layer learns. last_stage: the stem and all but the last stage are frozen. head: everything but
    a new classifier is frozen. The classifier is loaded only when its shape matches (same class count) and
    transfer.train is not `head`; otherwise it keeps its fresh initialisation. Returns the frozen modules.
    """
    if transfer.checkpoint is None:
        return []
    weights = load_checkpoint(transfer.checkpoint, key="transfer.checkpoint")["model"]
    own = model.state_dict()
    new_head = transfer.train == "head" or weights.get("fc.weight", torch.empty(0)).shape != own["fc.weight"].shape
    weights = {k: v for k, v in weights.items() if not (new_head and k.startswith("fc."))}
    wrong = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in weights and not k.startswith("fc.")]
    if wrong or missing:
        raise SpecError("transfer.checkpoint", transfer.checkpoint,
                        f"a checkpoint of the same architecture as model ({len(wrong)} tensors differ, e.g. "
                        f"{(wrong + missing)[0]})")
    model.load_state_dict(weights, strict=False)
    frozen: list[nn.Module] = {"all": [], "last_stage": [model.stem, *model.stages[:-1]],
                               "head": [model.stem, model.stages] + ([model.final_act] if model.final_act else [])
                               }[transfer.train]
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def checkpoint_state(spec: TrialSpec, model: nn.Module, optimizer: torch.optim.Optimizer,
                     progress: Progress) -> dict[str, Any]:
    optimizer_state = optimizer.state_dict()
    for group in optimizer_state["param_groups"]:  # a float, whichever step wrote it (step.py: a device tensor)
        group["lr"] = float(group["lr"])
    return {"format": CHECKPOINT_FORMAT, "spec": spec.to_dict(), "model": model.state_dict(),
            "optimizer": optimizer_state, "iteration": progress.iteration,
            "warmup": progress.warmup.to_dict(), "epoch_sums": progress.epoch_sums,
            "warmup_window": progress.warmup_window, "rng": rng_states(), "last_metrics": progress.last_metrics}


def resume(spec: TrialSpec, location: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> Progress:
    """Restore model, optimizer, RNG and progress from a checkpoint of the same model and seed."""
    state = load_checkpoint(location, key="resume_from")
    saved = flatten({"model": state["spec"]["model"], "seed": state["spec"]["seed"]})
    current = flatten({"model": spec.to_dict()["model"], "seed": spec.seed})
    differing = [k for k in current if saved.get(k) != current[k]]
    if differing:
        raise SpecError("resume_from", str(location), f"a checkpoint of this trial ({differing[0]} is "
                                                      f"{saved.get(differing[0])!r} there, {current[differing[0]]!r} here)")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_states(state["rng"])
    return Progress(iteration=int(state["iteration"]), warmup=WarmupState.from_dict(state["warmup"]),
                    epoch_sums=list(state["epoch_sums"]), warmup_window=list(state["warmup_window"]),
                    last_metrics=state["last_metrics"])

