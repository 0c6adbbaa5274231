"""Whether `run` continues a launch instead of starting one: the unfinished launch of the same resolved sweep in
the same storage, found there by a driver on any machine (a retried Ray or Kubernetes job on a new head node
with an empty disk) or in this machine's records.

A launch's state record is saved in its storage as well as here (records/state.py), and on object storage the
trials' records the driver keeps are copied into the Tune experiment (records/trial_record.py); so a driver with
nothing of its own finds the launch, makes it this machine's record of the sweep, and `resume` continues it.
"""
from __future__ import annotations

from pathlib import Path

from orchestrator.errors import CliError
from orchestrator.records import state, trial_record
from orchestrator.specs.sweep import SweepSpec


def unfinished_launch(sweep: SweepSpec, storage: str) -> state.SweepRecord | None:
    """The launch of this very sweep (the same resolved file) in this storage that has not finished, made this
    machine's record of the sweep so `resume` continues it; None when there is none. Its own storage's copy is
    the one that counts: this machine's record may be of a launch elsewhere, or gone with the machine."""
    stored = state.find_stored(storage, sweep.name)
    if stored is None:
        local = state.find(sweep.name)
        if local is None or local.storage_path != storage or not local.sweep_copy.is_file():
            return None
        from resnet_core import yaml12

        stored = local, yaml12.load(local.sweep_copy.read_text())
    record, sweep_dict = stored
    if sweep_dict != sweep.to_dict():
        return None
    if record.records_root and not Path(record.records_root).is_dir():  # object storage, another machine's
        records_here = state.sweep_dir(record.name) / record.experiment_path.rstrip("/").rpartition("/")[2]
        trial_record.fetch_mirrored(record.experiment_path, records_here)
        record.records_root = str(records_here)
    if not _trials_left(record):
        return None
    if record.effective_state() == "running":  # its driver lives on this machine
        raise CliError(f"sweep {sweep.name!r} is running already (driver pid {record.driver_pid} on "
                       f"{record.driver_host}); `resnet-sweep status {sweep.name}` shows it")
    state.save(record, sweep_dict)
    return record


def _trials_left(record: state.SweepRecord) -> bool:
    """Whether the launch has work left: interrupted (its driver is gone), or failed with some trial not done
    (the driver died of an error). A finished launch, or one whose trials all ended, is run again as a new one."""
    launch_state = record.effective_state()
    if launch_state == "interrupted" or launch_state == "running":
        return True
    if launch_state != "failed" or not record.trials:
        return False
    return any(not trial_record.read(trial_record.record_path(record.records, t)).done for t in record.trials)
