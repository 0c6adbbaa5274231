"""How a trial runs on this machine: device, autocast dtype, memory layout, CUDA graphs, optimizer kernels.

`resolve_runtime` turns RuntimeSpec's "auto" choices into concrete ones once, so the training loop asks plain
questions. On CUDA a small CIFAR trial is bound by kernel launches, not arithmetic, hence bf16 autocast,
channels_last, a fused SGD kernel and CUDA graphs (torch.compile's reduce-overhead mode). On the CPU the default
is plain eager fp32, but every one of those paths can be requested there too (and is tested there).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import torch

from resnet_core.spec import RuntimeSpec
from resnet_core.specio import SpecError


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain fp32
    channels_last: bool
    compile: bool
    fused_optimizer: bool  # one fused SGD kernel; else the multi-tensor (foreach) implementation
    compile_backend: str = "inductor"  # torch.compile backend; tests use aot_eager (same tracing, no codegen)
    data_parallel: bool = False  # one of several DDP workers: no CUDA graphs (they would freeze the all-reduce)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def cuda_graphs(self) -> bool:
        return self.compile and self.device.type == "cuda" and not self.data_parallel

    def autocast(self) -> ContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def resolve_runtime(spec: RuntimeSpec, data_parallel: bool = False) -> Runtime:
    """Concrete choices for this process; CUDA means the current CUDA device (a DDP launcher sets it per rank)."""
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise SpecError("runtime.device", "cuda", "auto or cpu: no CUDA device is visible to this process")
    on_gpu = spec.device != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    on_cuda = device.type == "cuda"
    bf16 = spec.precision == "bf16" or (spec.precision == "auto" and on_cuda)
    compile_on = spec.compile == "on" or (spec.compile == "auto" and on_cuda)
    return Runtime(device, torch.bfloat16 if bf16 else None, spec.channels_last and on_cuda, compile_on,
                   fused_sgd_supported(device), data_parallel=data_parallel)


def fused_sgd_supported(device: torch.device) -> bool:
    """Whether this torch build has a fused SGD kernel for `device` (CUDA, and CPU in recent releases)."""
    try:
        param = torch.zeros(1, device=device, requires_grad=True)
        torch.optim.SGD([param], lr=0.1, momentum=0.9, fused=True)
        return True
    except (RuntimeError, TypeError, ValueError):
        return False
