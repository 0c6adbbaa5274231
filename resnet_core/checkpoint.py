"""One trial's checkpoint: a single file written atomically, read back with weights-only loading.

It holds everything training needs to continue exactly where it stopped: model and optimizer state, the
iteration, the warm-up state, the partial sums of the epoch in progress, the RNG states, and the metrics of the
last finished epoch. Data order and augmentation are functions of (seed, epoch) (data.epoch_seed), so the
iteration alone fixes where in the data a resumed run picks up. Everything stored is tensors and plain Python
values, so `torch.load(weights_only=True)` reads it: loading a checkpoint never runs code from the file.
"""
from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import torch

from resnet_core.specio import SpecError

FILENAME = "checkpoint.pt"


class CheckpointWriteError(OSError):
    """Storage refused a checkpoint (disk full, read-only, no permission, quota): a run-time failure of the
    machine, not bad input, so it is an OSError (exit 1), never a SpecError (exit 2). Its message names the file
    and the system's reason; the previous checkpoint in that directory is untouched and no temporary file is left.

    The constructor takes OSError's own (errno, strerror, filename), so the error pickles (Ray sends it from a
    trial's worker to the driver) and `except OSError` still catches it."""

    def __str__(self) -> str:
        code = errno.errorcode.get(self.errno or 0)
        reason = f"{self.strerror} ({code})" if code else str(self.strerror)
        return (f"cannot write the checkpoint {self.filename}: {reason}; the previous checkpoint in that "
                "directory, if any, is unchanged")


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` to directory/checkpoint.pt via a temporary file and a rename, so a reader (or a crash
    mid-write) never sees a half-written checkpoint. Raises CheckpointWriteError when storage refuses it."""
    directory = Path(directory)
    final = directory / FILENAME
    temporary = directory / f".{FILENAME}.{os.getpid()}.tmp"
    buffer = io.BytesIO()
    torch.save(state, buffer)  # serialise first: torch's own file writer reports a full disk without errno
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename makes it the checkpoint
        os.replace(temporary, final)  # atomic on POSIX within one file system
    except OSError as err:
        _remove(temporary)
        # the path the system named (a directory it could not make), else the checkpoint, not our temporary name
        where = err.filename if err.filename and Path(err.filename) != temporary else final
        raise CheckpointWriteError(err.errno, err.strerror or str(err), str(where)) from err
    except BaseException:  # interrupted mid-write: no temporary file left behind
        _remove(temporary)
        raise
    _sync_directory(directory)
    return final


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # the storage that refused the write may refuse this too; nothing more to do then
        pass


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable; file systems that cannot fsync a directory (some network ones) are
    skipped: the rename is still atomic there, only its durability across a power cut is not promised."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
