"""One trial's checkpoint: a single file written atomically, read back with weights-only loading.

It holds everything training needs to continue exactly where it stopped: model and optimizer state, the
iteration, the warm-up state, the partial sums of the epoch in progress, the RNG states, and the metrics of the
last finished epoch. Data order and augmentation are functions of (seed, epoch) (data.epoch_seed), so the
iteration alone fixes where in the data a resumed run picks up. Everything stored is tensors and plain Python
values, so `torch.load(weights_only=True)` reads it: loading a checkpoint never runs code from the file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from resnet_core.specio import SpecError

FILENAME = "checkpoint.pt"


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` to directory/checkpoint.pt via a temporary file and a rename, so a reader (or a crash
    mid-write) never sees a half-written checkpoint."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / FILENAME
    temporary = directory / f".{FILENAME}.{os.getpid()}.tmp"
    torch.save(state, temporary)
    os.replace(temporary, final)  # atomic on POSIX within one file system
    return final


def checkpoint_path(location: str | Path, key: str) -> Path:
    """A checkpoint file from a directory holding one, or the file itself; SpecError on `key` otherwise."""
    path = Path(location).expanduser()
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        raise SpecError(key, str(location), f"a checkpoint directory holding {FILENAME} (or that file), "
                                            "as written by resnet_core.train with a checkpoint_dir")
    return path


def load_checkpoint(location: str | Path, key: str = "resume_from") -> dict[str, Any]:
    """Read a checkpoint onto the CPU with weights-only unpickling; the caller moves tensors where they belong."""
    path = checkpoint_path(location, key)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files: bad input, not a crash
        raise SpecError(key, str(path), f"a readable checkpoint ({type(err).__name__}: {err})") from err


def rng_states() -> dict[str, Any]:
    """Global torch RNG states (CPU and every CUDA device); training draws its data randomness elsewhere, but
    anything else random (a future dropout, cuDNN's choices are not RNG) resumes where it was."""
    states: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
