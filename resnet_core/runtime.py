"""How a trial runs on this machine: device, autocast dtype, memory layout, CUDA graphs, optimizer kernels.

`resolve_runtime` turns RuntimeSpec's "auto" choices into concrete ones once, so the training loop asks plain
questions. On CUDA a small CIFAR trial is bound by kernel launches, not arithmetic, hence reduced-precision
autocast, channels_last, a fused SGD kernel and CUDA graphs (torch.compile's reduce-overhead mode). On the CPU the
default is plain eager fp32, but every one of those paths can be requested there too (and is tested there). The
whole-step CUDA graph (`runtime.cuda_graph: step`) captures what is left outside the compiled graphs (batch gather,
augmentation, SGD, metric sums) as well: its captured function is plain PyTorch and runs uncaptured on the CPU.

Precision by capability: `precision: auto` is bf16 where the GPU computes it natively (compute capability 8.0 on:
A100, H100, consumer cards since the RTX 30 series), fp16 autocast with a gradient scaler on older GPUs (V100 and
T4 emulate bf16, slowly), fp32 on the CPU. If a fast path fails on this machine anyway, fallback.py drops it.
"""
from __future__ import annotations

import contextlib
import os
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
    cuda_graph: str = "compiled"  # RuntimeSpec.cuda_graph resolved: compiled | step | off
    compile_threads: int = 1  # inductor's compile workers: the trial's CPU share, not the host's cores
    # The whole step is captured once with torch.cuda.graph and replayed (step.py): `step` on CUDA without data
    # parallelism or a gradient scaler (whose skipped steps a replayed graph cannot skip).
    step_graph: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def cuda_graphs(self) -> bool:
        """torch.compile's reduce-overhead mode graphs the compiled forward and backward."""
        return (self.cuda_graph == "compiled" and self.compile and self.device.type == "cuda"
                and not self.data_parallel)

    @property
    def whole_step(self) -> bool:
        """The step is written for capture as a whole (lr as a device tensor, no autocast cache), step.py."""
        return self.cuda_graph == "step"

    @property
    def scaled(self) -> bool:
        """fp16 autocast: the loss is scaled for backward (torch.amp.GradScaler) so small gradients survive fp16."""
        return self.autocast_dtype == torch.float16

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]

    @property
    def compile_mode(self) -> str | None:
        return "reduce-overhead" if self.cuda_graphs and self.compile_backend == "inductor" else None

    def autocast(self, cache: bool = True) -> ContextManager:
        """bf16 or fp16 autocast when chosen. `cache=False` inside a captured CUDA graph: autocast's cache of weight
        casts would otherwise hold tensors made during capture and return stale ones at replay."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, cache_enabled=cache)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def resolve_runtime(spec: RuntimeSpec, data_parallel: bool = False, best_mode: str | None = None) -> Runtime:
    """Concrete choices for this process; CUDA means the current CUDA device (a DDP launcher sets it per rank).
    `cuda_graph: auto` takes `best_mode` when given, else the fastest mode that passed parity in this GPU model's
    machine profile, else CONSERVATIVE_CUDA_GRAPH."""
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise SpecError("runtime.device", "cuda", "auto or cpu: no CUDA device is visible to this process")
    on_gpu = spec.device != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    on_cuda = device.type == "cuda"
    dtype = autocast_dtype(spec.precision, device)
    compile_on = spec.compile == "on" or (spec.compile == "auto" and on_cuda)
    cuda_graph = spec.cuda_graph
    if cuda_graph == "auto":
        cuda_graph = best_mode or (profiled_cuda_graph(device) if on_cuda else None) or CONSERVATIVE_CUDA_GRAPH
    return Runtime(device, dtype, spec.channels_last and on_cuda, compile_on, fused_sgd_supported(device),
                   compile_backend=spec.compile_backend, data_parallel=data_parallel, cuda_graph=cuda_graph,
                   compile_threads=cpu_share(),
                   step_graph=cuda_graph == "step" and on_cuda and not data_parallel and dtype != torch.float16)


# `runtime.cuda_graph: auto` without a machine profile that says better: torch.compile's own CUDA graphs, which
# skip what they cannot capture, rather than the whole-step capture no GPU of this model has yet passed.
CONSERVATIVE_CUDA_GRAPH = "compiled"


def profiled_cuda_graph(device: torch.device) -> str | None:
    """The fastest mode that passed parity in this GPU model's machine profile (`resnet-sweep doctor --gpu`)."""
    from resnet_core.machine_profile import best_cuda_graph, find_profile

    return best_cuda_graph(find_profile(torch.cuda.get_device_name(device), torch.__version__, torch.version.cuda))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of RuntimeSpec.precision on `device` (None: fp32)."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if native_bf16(device) else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU has bf16 arithmetic units (compute capability 8.0 on); older ones emulate it in fp32."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def cpu_share() -> int:
    """CPU threads this process may use: torch's intra-op threads (Ray sets OMP_NUM_THREADS from a trial's `cpu`
    resource, so packed trials each see their share), never more than the cores it is allowed to run on."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(torch.get_num_threads(), allowed))


def prepare_compile(runtime: Runtime) -> None:
    """Settings torch.compile reads when it compiles, set for this trial before its first compile.

    Inductor sizes its pool of compile workers by the host's cores (up to 32): eight trials packed on a 16-core
    GPU machine would start 8 x 16 compiler processes. Each trial gets its CPU share instead.
    """
    if runtime.compile and runtime.compile_backend == "inductor":
        import torch._inductor.config as inductor_config

        inductor_config.compile_threads = runtime.compile_threads


def fused_sgd_supported(device: torch.device) -> bool:
    """Whether this torch build has a fused SGD kernel for `device` (CUDA, and CPU in recent releases)."""
    try:
        param = torch.zeros(1, device=device, requires_grad=True)
        torch.optim.SGD([param], lr=0.1, momentum=0.9, fused=True)
        return True
    except (RuntimeError, TypeError, ValueError):
        return False


def device_metrics(device: torch.device) -> dict[str, float]:
    """Per-epoch GPU figures for the trial's curves: peak memory allocated since the last call (GiB; the peak is
    reset for the next epoch) and the GPU's utilisation now (percent, when NVML can say). Nothing on a CPU."""
    if device.type != "cuda":
        return {}
    out = {"gpu_peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30}
    torch.cuda.reset_peak_memory_stats(device)
    try:
        out["gpu_utilization"] = float(torch.cuda.utilization(device))
    except Exception:  # noqa: BLE001  no NVML (pynvml) here: memory alone
        pass
    return out
