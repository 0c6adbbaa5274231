"""The fallback ladder: a fast path that fails at a trial's start costs the trial that path, not the trial.

Rungs, fastest first: the whole-step CUDA graph, then torch.compile (with its own CUDA graphs on a GPU), then
eager; and for precision bf16, then fp16 with a gradient scaler (on a GPU), then fp32. An exception while
compiling or capturing, or any other exception or a non-finite loss in the first PROBATION_STEPS iterations of a
start under an accelerated rung, drops one rung, and train.py starts the trial again on it from the same state
(the same initial weights, or the same checkpoint), so it trains as a trial started on that rung would. Which
rung trained and why goes into every epoch's metrics (`rung`, and `fallback` after a drop). Only optimisations
are dropped: bad input (SpecError), storage errors, and any failure on the plain rung (eager fp32: the model's own
errors, out of memory) fail the trial as they always did.

Every start tries from the top again: a retried trial may land on a machine whose compiler works.
"""
from __future__ import annotations

import dataclasses

import torch

from resnet_core.checkpoint import CheckpointWriteError
from resnet_core.failures import DivergedError
from resnet_core.runtime import Runtime
from resnet_core.specio import SpecError
from resnet_core.step import GRAPH_WARMUP_STEPS

# Iterations of a start in which a failure is blamed on the rung: a step graph's warm-up, capture and first
# replays, and a compiled step's first calls, with a non-finite loss read at the end of them.
PROBATION_STEPS = GRAPH_WARMUP_STEPS + 3
RUNG, FALLBACK = "rung", "fallback"  # the epoch metrics' keys


def rung_name(runtime: Runtime) -> str:
    """What accelerates this rung, as the trial's record and its MLflow tag say it: `step_graph+compiled bf16`,
    `compiled fp32`, `eager fp16+scaler`, `eager fp32`."""
    modes = (["step_graph"] if runtime.step_graph else []) + (["compiled"] if runtime.compile else [])
    return f"{'+'.join(modes) or 'eager'} {runtime.precision}{'+scaler' if runtime.scaled else ''}"


def is_plain(runtime: Runtime) -> bool:
    """The bottom rung: nothing left to drop."""
    return not runtime.step_graph and not runtime.compile and runtime.autocast_dtype is None


def cause_of(err: BaseException, capturing: bool) -> str:
    """What failed: `compile` (torch.compile's dynamo or inductor raised), `capture` (the step graph's warm-up or
    capture), `nonfinite` (a NaN or infinite loss) or `error` (anything else)."""
    if isinstance(err, DivergedError):
        return "nonfinite"
    seen: BaseException | None = err
    while seen is not None:  # the compiler's own exception types, wherever torch keeps them in this release
        if any(k.__module__.startswith(("torch._dynamo", "torch._inductor")) for k in type(seen).__mro__):
            return "compile"
        seen = seen.__cause__
    return "capture" if capturing else "error"


def may_drop(err: BaseException) -> bool:
    """Failures a lower rung may cure; bad input and storage errors are the same on every rung."""
    return isinstance(err, Exception) and not isinstance(err, (SpecError, CheckpointWriteError))


def lower(runtime: Runtime, cause: str) -> Runtime | None:
    """The next rung after `cause` failed on `runtime`; None on the plain rung. A compile or capture failure drops
    that path; a non-finite loss or another error drops the fastest path still on."""
    no_graph = dataclasses.replace(runtime, step_graph=False, cuda_graph="compiled") if runtime.step_graph else None
    eager = dataclasses.replace(runtime, compile=False) if runtime.compile else None
    precision = None
    if runtime.autocast_dtype is not None:  # bf16 -> fp16 with a scaler (GPUs compute fp16 natively) -> fp32
        fp16 = runtime.autocast_dtype == torch.bfloat16 and runtime.device.type == "cuda"
        precision = dataclasses.replace(runtime, autocast_dtype=torch.float16 if fp16 else None, step_graph=False)
    first = {"capture": no_graph, "compile": eager}.get(cause)
    return next((r for r in (first, no_graph, eager, precision) if r is not None), None)


def drop_reason(err: BaseException, cause: str, failed: Runtime, next_rung: Runtime) -> str:
    """One line for the record: what failed on which rung, and where the trial went on."""
    what = {"compile": "compiling failed", "capture": "the CUDA-graph capture failed",
            "nonfinite": "the loss was not finite in the first steps"}.get(cause, "the first steps failed")
    message = (str(err).strip().splitlines() or [""])[0][:300]
    return f"{rung_name(failed)}: {what} ({type(err).__name__}: {message}); went on as {rung_name(next_rung)}"
