"""Where sweeps keep their state, so `status` and `resume NAME` work from a new process without starting Ray.

One small JSON record per sweep name under `$RESNET_SWEEPS_HOME/sweeps/` (default `~/.resnet_sweeps`): the
resolved sweep (a YAML copy beside it), the Tune experiment directory, the MLflow tracking URI and parent run,
the trials (id, name, iterations), where their records are, the driver's pid and the launch's state, and which
MLflow runs the last driver left behind their records. Written atomically; the latest
launch of a name replaces the record (earlier launches stay in MLflow as earlier parent runs).

Each save also writes the same two files under the launch's storage (`STORED_LAUNCHES/NAME/` of the `--storage`
folder or bucket every node sees): a driver that comes back on another machine with an empty disk, as a retried
Kubernetes job's does, finds there the launch to continue (`find_stored`).
"""
from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import CliError
from orchestrator.records import storage_files
from resnet_core import yaml12

State = Literal["running", "finished", "failed", "interrupted"]


def home() -> Path:
    """Root of the project's state: $RESNET_SWEEPS_HOME, else ~/.resnet_sweeps."""
    from resnet_core.machine_profile import state_home

    return state_home()


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


def launch_log(name: str) -> Path:
    """What the sweep's drivers on this machine log beyond their output: the tracebacks of trials' crashes."""
    return sweep_dir(name) / "launch.log"


def save(record: SweepRecord, sweep_dict: dict[str, Any] | None = None) -> None:
    """Write the record (and the resolved sweep copy, when given) atomically, here and in the launch's storage."""
    directory = sweep_dir(record.name)
    directory.mkdir(parents=True, exist_ok=True)
    sweep_text = yaml12.dump(sweep_dict) if sweep_dict is not None else None
    if sweep_text is not None:
        atomic_write(record.sweep_copy, sweep_text)
    record.updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record_text = json.dumps(asdict(record), indent=2)
    atomic_write(record_path(record.name), record_text)
    stored = _stored_dir(record.storage_path, record.name)
    try:
        if sweep_text is not None:
            storage_files.write_text(f"{stored}/sweep.yaml", sweep_text)
        storage_files.write_text(f"{stored}/record.json", record_text)
    except (OSError, ValueError) as err:  # the local record stands; only a driver elsewhere would miss this one
        print(f"warning: could not write the launch's record to its storage ({stored}): {err}", file=sys.stderr)


# The folder of a storage root that holds each sweep's latest launch, beside Tune's experiment directories.
STORED_LAUNCHES = "resnet-sweeps-launches"


def find_stored(storage: str, name: str) -> tuple[SweepRecord, dict[str, Any]] | None:
    """The latest launch of `name` recorded in `storage` (its record and resolved sweep), None when there is
    none; one that another version of the tool wrote and this one cannot read counts as none."""
    stored = _stored_dir(storage, name)
    try:
        record = SweepRecord(**json.loads(storage_files.read_text(f"{stored}/record.json")))
        return record, yaml12.load(storage_files.read_text(f"{stored}/sweep.yaml"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as err:
        print(f"note: ignoring the unreadable launch record in {stored}: {err}", file=sys.stderr)
        return None


def _stored_dir(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{STORED_LAUNCHES}/{check_name(name)}"


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
    storage_files.write_text(str(path), text)
