"""Where sweeps keep their state, so `status` and `resume NAME` work from a new process without starting Ray.

One small JSON record per sweep name under `$RESNET_SWEEPS_HOME/sweeps/` (default `~/.resnet_sweeps`): the
resolved sweep (a YAML copy beside it), the Tune experiment directory, the MLflow tracking URI and parent run,
the trials (id, name, iterations), where their records are, the driver's pid and the launch's state, and which
MLflow runs the last driver left behind their records. Written atomically; the latest
launch of a name replaces the record (earlier launches stay in MLflow as earlier parent runs).
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import CliError
from resnet_core import yaml12

State = Literal["running", "finished", "failed", "interrupted"]


def home() -> Path:
    """Root of the project's state: $RESNET_SWEEPS_HOME, else ~/.resnet_sweeps."""
    return Path(os.environ.get("RESNET_SWEEPS_HOME") or "~/.resnet_sweeps").expanduser().resolve()


def default_storage() -> Path:
    """Ray Tune's storage_path (trial checkpoints, experiment state) unless `--storage` says otherwise."""
    return home() / "ray_results"


@dataclass
class SweepRecord:
    name: str
    sweep_file: str  # as given to `run`
    experiment: str  # MLflow experiment
    tracking_uri: str
    parent_run_id: str
    storage_path: str  # Tune storage root (a path or a URI)
    experiment_path: str  # the Tune experiment directory that `resume` restores
    trials: list[dict[str, Any]]  # {id, name, iterations}
    state: State = "running"
    driver_pid: int | None = None
    driver_host: str = field(default_factory=socket.gethostname)
    address: str | None = None  # Ray cluster address, None for a local Ray
    samples: int | None = None  # a searched sweep's trials, made by its sampler as it runs (`trials` is empty)
    iterations_per_sample: int = 0  # the base trial's, for `status` before the sampler made a trial
    records_root: str = ""  # where the trials' records are (trial_record); "" for the experiment directory
    mlflow_behind: list[str] = field(default_factory=list)  # runs the last driver could not bring up to date
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    updated: str = ""

    @property
    def sweep_copy(self) -> Path:
        return sweep_dir(self.name) / "sweep.yaml"

    @property
    def records(self) -> str:
        """The root of the trials' records: the Tune experiment directory on file-system storage, else a folder
        of this state directory that the driver writes (see orchestrator/records/trial_record.py)."""
        return self.records_root or self.experiment_path

    def effective_state(self) -> State:
        """`running` only while the recorded driver lives (on this host); a killed driver means interrupted."""
        if self.state == "running" and not self.driver_alive():
            return "interrupted"
        return self.state

    def driver_alive(self) -> bool:
        if self.driver_pid is None or self.driver_host != socket.gethostname():
            return False
        try:
            os.kill(self.driver_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _not_zombie(self.driver_pid)


def check_not_running(name: str) -> None:
    """Refuse a second driver for a sweep whose driver is alive."""
    record = find(name)
    if record is not None and record.effective_state() == "running":
        raise CliError(f"sweep {name!r} is running already (driver pid {record.driver_pid} on "
                       f"{record.driver_host}); `resnet-sweep status {name}` shows it")


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def check_name(name: str) -> str:
    """A sweep name given on the command line (`status/resume/report NAME`) follows the rule of a sweep file's
    `name:`, so it cannot reach outside the state directory (`../x`) nor into an MLflow search filter (quotes)."""
    from orchestrator.specs.sweep import NAME_PATTERN

    if not NAME_PATTERN.match(name):
        raise CliError(f"NAME {name!r}: expected a sweep name of letters, digits, '-', '_' or '.' (its `name:`), "
                       "not a path")
    return name


def sweep_dir(name: str) -> Path:
    return home() / "sweeps" / check_name(name)


def record_path(name: str) -> Path:
    return sweep_dir(name) / "record.json"


def save(record: SweepRecord, sweep_dict: dict[str, Any] | None = None) -> None:
    """Write the record (and the resolved sweep copy, when given) atomically."""
    directory = sweep_dir(record.name)
    directory.mkdir(parents=True, exist_ok=True)
    if sweep_dict is not None:
        atomic_write(record.sweep_copy, yaml12.dump(sweep_dict))
    record.updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write(record_path(record.name), json.dumps(asdict(record), indent=2))


def find(name: str) -> SweepRecord | None:
    """The record of sweep `name`; None when no launch of that name has one under this state directory."""
    path = record_path(name)
    return SweepRecord(**json.loads(path.read_text())) if path.is_file() else None


def load(name: str) -> SweepRecord:
    """The record of sweep `name`; a CliError naming the sweeps known here when there is none."""
    record = find(name)
    if record is None:
        known = ", ".join(r.name for r in load_all()) or "none yet"
        raise CliError(f"no sweep named {name!r} under {home()} (known: {known}); "
                       "set RESNET_SWEEPS_HOME if it ran with another state directory")
    return record


def load_all() -> list[SweepRecord]:
    root = home() / "sweeps"
    if not root.is_dir():
        return []
    records = []
    for path in sorted(root.glob("*/record.json")):
        try:
            records.append(SweepRecord(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue  # a record from another version of the tool: skip rather than fail `status`
    return sorted(records, key=lambda r: r.created, reverse=True)


def update(name: str, **changes: Any) -> SweepRecord:
    record = load(name)
    for key, value in changes.items():
        setattr(record, key, value)
    save(record)
    return record


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
