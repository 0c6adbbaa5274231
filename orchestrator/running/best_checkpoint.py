"""A trial's best checkpoint by validation error, kept beside its `latest/` one for `tracking.models: best`.

train() rewrites latest/checkpoint.pt by an atomic rename every epoch, so the file of an epoch whose validation
error is the lowest so far can be kept by a hard link to it (no copy of the bytes): the next epoch's rename
leaves the linked file alone. `best/checkpoint.pt` is replaced the same atomic way, and `best/metrics.json` says
which epoch it holds. Only trials with a validation split (data.val_split) have one; the MLflow sync logs it as
the trial's `best` model once the trial has finished.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from orchestrator.contract import BEST_DIR

CHECKPOINT, METRICS = "checkpoint.pt", "metrics.json"


def best_so_far(latest: Path) -> float | None:
    """The validation error of the checkpoint kept in best/ (None: none kept yet)."""
    try:
        return float(json.loads((latest.parent / BEST_DIR / METRICS).read_text())["val_error"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep_if_best(latest: Path | None, metrics: dict[str, Any]) -> bool:
    """Keep latest/checkpoint.pt (this epoch's) as the best one when its val_error is the lowest so far."""
    value = metrics.get("val_error")
    if latest is None or not isinstance(value, (int, float)) or value != value:
        return False
    previous = best_so_far(latest)
    if previous is not None and previous <= value:
        return False
    best = latest.parent / BEST_DIR
    best.mkdir(parents=True, exist_ok=True)
    temporary = best / f".{CHECKPOINT}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    try:
        os.link(latest / CHECKPOINT, temporary)
    except OSError:  # a file system without hard links: a copy
        shutil.copyfile(latest / CHECKPOINT, temporary)
    os.replace(temporary, best / CHECKPOINT)
    note = best / f".{METRICS}.tmp"
    note.write_text(json.dumps({"iteration": metrics.get("iteration"), "val_error": float(value)}))
    os.replace(note, best / METRICS)
    return True
