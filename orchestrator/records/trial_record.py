"""A trial's one durable record: `metrics.jsonl`, one JSON event per line, beside its `latest/` checkpoint.

The trial's leader process appends `start` (where it runs, which checkpoint it resumed from), one `epoch` per
finished epoch (after the checkpoint of that epoch is on disk, before Tune hears of it), `diverged`, and `failed`
with `final` (a SpecError: the same settings would fail again); the driver appends what only it sees: `crashed`
(Tune retries the trial), `failed` (Tune gave up on it), `stopped` (the scheduler, e.g. ASHA, stopped it) and
`exploit` (population-based training made it continue another trial's checkpoint with new values).
MLflow, `status` and `resume` are views brought up to date from it (orchestrator/tracking/writer.py's
`Tracker.sync_trial`); nothing else keeps epochs.

Where it lives: on file-system storage (local, or a shared mount every node sees) in the trial's directory of
the Tune experiment, written by the trial itself, so epochs finished while the driver was dying are kept. On
object storage (s3://) a trial cannot append to a file there; it hands its events to the driver in its Tune
results and the driver appends them to the same layout under the sweep's state directory, and copies each
into the trial's directory of the Tune experiment (`mirror`), where a driver on another machine, continuing the
launch, finds them (`fetch_mirrored`). There an epoch the
trial finished while the driver was dying is not recorded (its checkpoint is), so its MLflow history can miss
it after `resume`; with Tune's checkpoint reported every epoch the trial is at most one epoch ahead.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILENAME = "metrics.jsonl"


def shared_state_dir(storage_path: str, experiment_dir: str) -> str | None:
    """The Tune experiment directory as a file-system path when storage is one (local, or a mount every node
    sees): the trials write their records there themselves. None on object storage."""
    if "://" in storage_path and not storage_path.startswith("file://"):
        return None
    return str(Path(storage_path.removeprefix("file://")).expanduser() / experiment_dir)


def trial_dirname(info: dict[str, Any]) -> str:
    """The trial's directory in the Tune experiment ({name}_{id} of Trial.to_dict()); its record sits inside."""
    return f"{info['name']}_{info['id']}"


def record_path(root: str | Path, info: dict[str, Any]) -> Path:
    return Path(root) / trial_dirname(info) / FILENAME


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """An event stamped now (ms): the time MLflow shows for its metrics, however late they reach it, and part of
    what makes sending an epoch twice a no-op (MLflow's SQL store skips an exact duplicate)."""
    return {"event": kind, "time_ms": int(time.time() * 1000), **fields}


def append(path: Path, events: list[dict[str, Any]]) -> None:
    """Append events, one line each, in one write. A line torn by a kill is closed first, so it costs only
    itself (the reader skips it)."""
    if not events:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(e, allow_nan=True) + "\n" for e in events)
    with path.open("ab+") as f:
        if f.tell() and (f.seek(-1, 2), f.read(1))[1] != b"\n":
            text = "\n" + text
        f.write(text.encode())


@dataclass(frozen=True)
class History:
    """What a record says: epochs by iteration, the starts, and how the latest start ended (if it has)."""

    epochs: tuple[dict[str, Any], ...] = ()  # ascending iteration, one per iteration (the latest written)
    starts: tuple[dict[str, Any], ...] = ()
    state: str = "pending"  # pending (no event) | running | finished | diverged | failed | stopped
    end: dict[str, Any] = field(default_factory=dict)  # the event that ended it: final epoch, diverged, ...
    last_error: str | None = None  # of a crash Tune retried
    exploits: tuple[dict[str, Any], ...] = ()  # population-based training: each time it continued another trial

    @property
    def last_iteration(self) -> int:
        return int(self.epochs[-1]["iteration"]) if self.epochs else -1

    @property
    def done(self) -> bool:
        """An outcome that running it again would not change: `resume` does not. A trial Tune gave up on after
        crashes is not done: `resume` gives it another start from its checkpoint."""
        return self.state in ("finished", "diverged", "stopped") or (self.state == "failed" and self.end.get("final"))


def read(path: Path) -> History:
    """The record at `path` (an empty History when there is none); unreadable lines are skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return History()
    epochs: dict[int, dict[str, Any]] = {}
    starts: list[dict[str, Any]] = []
    state, end, last_error, exploits = "pending", {}, None, []
    for line in lines:
        try:
            e = json.loads(line)
            kind = e["event"]
        except (ValueError, TypeError, KeyError):
            continue
        if kind == "start":
            starts.append(e)
            state, end = "running", {}
        elif kind == "epoch":
            epochs[int(e["iteration"])] = e
            state, end = ("finished", e) if e.get("done") else ("running", {})
        elif kind in ("diverged", "failed", "stopped"):
            state, end = kind, e
        elif kind == "crashed":
            last_error = e.get("error")
        elif kind == "exploit":
            exploits.append(e)
    return History(tuple(epochs[i] for i in sorted(epochs)), tuple(starts), state, end, last_error, tuple(exploits))


def mirror(root: str | Path, experiment_path: str, info: dict[str, Any]) -> None:
    """On object storage, where the driver writes the trials' records under its own state directory (`root`):
    copy the trial's record to its directory of the Tune experiment, where a driver on another machine finds it
    (`fetch_mirrored`)."""
    from orchestrator.records import storage_files

    storage_files.write_text(f"{experiment_path.rstrip('/')}/{trial_dirname(info)}/{FILENAME}",
                             record_path(root, info).read_text())


def fetch_mirrored(experiment_path: str, root: Path) -> int:
    """Copy every record `mirror` left in the Tune experiment into `root`, this machine's records folder for the
    launch; how many."""
    from orchestrator.records import storage_files

    found = storage_files.files_named(experiment_path, FILENAME)
    for location in found:
        trial_dir = location.rstrip("/").rsplit("/", 2)[-2]
        (root / trial_dir).mkdir(parents=True, exist_ok=True)
        storage_files.write_text(str(root / trial_dir / FILENAME), storage_files.read_text(location))
    return len(found)
