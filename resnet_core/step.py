"""One training iteration (gather, augment, forward, backward, SGD, running sums) and the three ways it runs.

`TrainStep.body` is the whole iteration as plain PyTorch with no host sync. It runs as it is (eager, or with the
forward pass through torch.compile, whose reduce-overhead mode graphs forward and backward on CUDA), or, with
`runtime.cuda_graph: step` on CUDA, it is captured once into one CUDA graph and replayed every iteration: the
host then launches a copy of the next batch's indices and one graph per step, instead of about 30 kernels plus
the compiled graphs' Python bookkeeping. A ResNet-20 step at batch 128 is only about 1 ms of GPU work, so what
the host spends per step sets the pace. Because the captured function is plain PyTorch, the CPU tests run it
uncaptured and compare it with the eager step; only the capture itself needs a GPU (gpu_stages.py, run by
`resnet-sweep doctor --gpu`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from resnet_core.data import TrainBatches
from resnet_core.runtime import Runtime, prepare_compile

# Iterations run uncaptured on a side stream before the capture (PyTorch's documented recipe for whole-network
# capture): they create the momentum buffers, pick cuDNN algorithms and, when compiling, compile.
GRAPH_WARMUP_STEPS = 3

Forward = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class StepSums:
    """Running sums on the device that every step updates in place and the host reads only at checks (epoch
    ends, warm-up and divergence checks). Fixed tensors for the whole trial, so a captured graph updates them."""

    loss: torch.Tensor  # float64: sum of loss x images this epoch
    wrong: torch.Tensor  # float64: wrong predictions this epoch
    window_wrong: torch.Tensor  # float64: wrong predictions since the last warm-up check
    first_bad: torch.Tensor  # int64: first iteration with a non-finite loss, -1 while there is none
    iteration: torch.Tensor  # int64: the schedule iteration of the next step

    @classmethod
    def on(cls, device: torch.device) -> "StepSums":
        f64 = {"dtype": torch.float64, "device": device}
        i64 = {"dtype": torch.int64, "device": device}
        return cls(torch.zeros((), **f64), torch.zeros((), **f64), torch.zeros((), **f64),
                   torch.full((), -1, **i64), torch.zeros((), **i64))

    def start(self, loss: float, wrong: float, window_wrong: float, iteration: int) -> None:
        """Set the sums (outside any graph): at an epoch's start, from a checkpoint's partial sums."""
        self.loss.fill_(loss)
        self.wrong.fill_(wrong)
        self.window_wrong.fill_(window_wrong)
        self.iteration.fill_(iteration)

    def add(self, loss: torch.Tensor, wrong: torch.Tensor, images: int) -> None:
        """Fold one step's 0-dim loss and wrong count in: a handful of tiny kernels, no host sync."""
        self.loss.add_(loss.double(), alpha=images)
        self.wrong.add_(wrong)
        self.window_wrong.add_(wrong)
        bad = torch.isfinite(loss).logical_not() & (self.first_bad < 0)
        self.first_bad.copy_(torch.where(bad, self.iteration, self.first_bad))
        self.iteration.add_(1)


def make_forward(model: nn.Module, runtime: Runtime) -> Forward:
    """(images, labels) -> (mean loss, wrong predictions), both 0-dim device tensors; through torch.compile when
    runtime.compile (AOTAutograd compiles the backward too)."""
    cache = not runtime.whole_step

    def forward(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with runtime.autocast(cache=cache):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels)
        return loss, (logits.argmax(1) != labels).sum()

    if not runtime.compile:
        return forward
    prepare_compile(runtime)
    # One trial per process at a time (a reused Ray actor runs trial after trial): dynamo keys its cache on the
    # code object of `forward`, shared by every trial, so the previous trials' entries (one per architecture)
    # would pile up until its recompile limit, after which later trials silently run eager. A new trial starts
    # from empty caches instead, which also frees the previous trial's CUDA-graph memory pools.
    torch.compiler.reset()
    return torch.compile(forward, backend=runtime.compile_backend, mode=runtime.compile_mode, dynamic=False)


class TrainStep:
    """Runs one iteration per call on a batch from `batches.epoch`, updating `sums`; never waits for the device.

    With runtime.whole_step the learning rate is a device tensor (fused SGD reads it at replay), set with
    `set_lr` between steps, and autocast caches nothing; on CUDA (runtime.step_graph) the first
    GRAPH_WARMUP_STEPS calls then run `body` on a side stream, the next one captures it into a CUDA graph, and
    every call from then on copies its batch into the graph's input and replays the graph. Elsewhere (the CPU,
    data-parallel workers) `body` runs uncaptured, the same arithmetic. Outputs of the compiled reduce-overhead
    graphs live in memory the next replay overwrites; `body` folds them into `sums` at once.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: TrainBatches,
                 runtime: Runtime, sums: StepSums):
        self.model, self.optimizer, self.batches, self.runtime, self.sums = model, optimizer, batches, runtime, sums
        self.forward = make_forward(model, runtime)
        self.lr_tensor: torch.Tensor | None = None
        if runtime.whole_step:  # a graph reads the lr from a tensor of its own; a float is baked in at capture
            self.lr_tensor = torch.tensor(float(optimizer.param_groups[0]["lr"]), device=runtime.device)
            for group in optimizer.param_groups:
                group["lr"] = self.lr_tensor
        self.lr: float | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graph_input: tuple[torch.Tensor, ...] = ()
        self.calls = 0
        # fp16: the loss is scaled before backward and a step with inf/NaN gradients is skipped (and the scale
        # lowered); with a fused SGD the scaler hands the optimizer its scale and check without a host sync.
        self.scaler = torch.amp.GradScaler(runtime.device.type) if runtime.scaled else None
        self.capturing = False  # inside the CUDA-graph warm-up or capture: what the fallback ladder drops if it fails

    def set_lr(self, lr: float) -> None:
        if lr == self.lr:
            return
        self.lr = lr
        if self.lr_tensor is not None:
            self.lr_tensor.fill_(lr)
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def body(self, *batch: torch.Tensor) -> None:
        """The iteration, as plain PyTorch without host syncs: the function a CUDA graph captures."""
        images, labels = self.batches.gather(*batch)
        loss, wrong = self.forward(images, labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.sums.add(loss.detach(), wrong.detach(), len(labels))

    def __call__(self, *batch: torch.Tensor) -> None:
        self.calls += 1
        if not self.runtime.step_graph:
            if self.runtime.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            self.body(*batch)
        elif self.graph is not None:
            for static, value in zip(self.graph_input, batch):
                static.copy_(value, non_blocking=True)
            self.graph.replay()
        else:
            self.capturing = True
            if self.calls <= GRAPH_WARMUP_STEPS:
                self._on_side_stream(batch)
            else:
                self._capture(batch)
                self.graph.replay()
            self.capturing = False

    def _on_side_stream(self, batch: tuple[torch.Tensor, ...]) -> None:
        if self.runtime.device.type != "cuda":  # no streams to order: a capture asked for off CUDA fails at capture
            self.body(*batch)
            return
        side = torch.cuda.Stream(self.runtime.device)
        side.wait_stream(torch.cuda.current_stream(self.runtime.device))
        with torch.cuda.stream(side):
            self.body(*batch)
        torch.cuda.current_stream(self.runtime.device).wait_stream(side)

    def _capture(self, batch: tuple[torch.Tensor, ...]) -> None:
        """Record `body` once; the capture runs nothing, so this call's iteration is the first replay."""
        self.graph_input = tuple(value.clone() for value in batch)
        self.optimizer.zero_grad(set_to_none=True)  # gradients are then allocated from the graph's pool
        torch.cuda.synchronize(self.runtime.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.body(*self.graph_input)
        self.graph = graph
