"""What a trial's checkpoint holds beyond weights, and how training picks up from it exactly.

checkpoint.py writes and reads the file; this module decides its contents: the spec, model and optimizer state,
the iteration, the warm-up state, the partial sums of the epoch in progress, the RNG states and the metrics of the
last finished epoch (`Progress` is the part the training loop keeps up to date).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_core.checkpoint import load_checkpoint, restore_rng_states, rng_states
from resnet_core.schedule import WarmupState
from resnet_core.spec import TrialSpec
from resnet_core.specio import SpecError, flatten

CHECKPOINT_FORMAT = 1


@dataclass
class Progress:
    """What a checkpoint must carry beyond model and optimizer to continue exactly."""

    iteration: int = 0
    warmup: WarmupState = field(default_factory=lambda: WarmupState(False))
    epoch_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # loss x images, errors, images
    warmup_window: list[float] = field(default_factory=lambda: [0.0, 0.0])  # errors, images since last check
    last_metrics: dict[str, Any] | None = None


def checkpoint_state(spec: TrialSpec, model: nn.Module, optimizer: torch.optim.Optimizer,
                     progress: Progress) -> dict[str, Any]:
    """Everything `resume` needs, as tensors and plain values (so weights-only loading reads it back)."""
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
        key = differing[0]
        raise SpecError("resume_from", str(location),
                        f"a checkpoint of this trial ({key} is {saved.get(key)!r} there, {current[key]!r} here)")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_states(state["rng"])
    return Progress(iteration=int(state["iteration"]), warmup=WarmupState.from_dict(state["warmup"]),
                    epoch_sums=list(state["epoch_sums"]), warmup_window=list(state["warmup_window"]),
                    last_metrics=state["last_metrics"])
