"""A launch's state lives with its storage: the state record's copy there, found by a driver on another machine
(an empty state directory), which continues the unfinished launch of the same sweep and nothing else; on object
storage the trials' records the driver kept come along (mirrored into the Tune experiment). Real files; the
storage here is a folder, which the same code reaches as it reaches a bucket."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from orchestrator.records import state, trial_record
from orchestrator.running.unfinished import unfinished_launch
from orchestrator.specs.expansion import expand
from orchestrator.specs.reading import load_sweep
from tests.conftest import tiny_sweep


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """Switch to a machine with its own empty state directory: machine("a"), machine("b")."""
    def use(name: str):
        monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / f"home-{name}"))
    return use


def launched(tmp_path, name="kept", records_root="", grid="optim.lr: [0.1, 0.05]"):
    sweep_file = tmp_path / f"{name}.yaml"
    sweep_file.write_text(tiny_sweep(name) + f"grid:\n  {grid}\n")
    sweep = load_sweep(sweep_file)
    storage = str(tmp_path / "storage")
    record = state.SweepRecord(
        name=name, sweep_file=str(sweep_file), experiment=name, tracking_uri="sqlite:///x.db", parent_run_id="p1",
        storage_path=storage, experiment_path=f"{storage}/{name}-20261203-120000",
        trials=[{"id": t.id, "name": t.name, "iterations": 8} for t in expand(sweep)], driver_pid=2**22 + 1,
        records_root=records_root)
    state.save(record, sweep.to_dict())
    return sweep, record


def test_the_storage_copy_is_found_from_an_empty_state_directory(tmp_path, machine):
    machine("a")
    sweep, record = launched(tmp_path)
    machine("b")
    assert state.find(sweep.name) is None
    found = unfinished_launch(sweep, record.storage_path)  # its driver (no such pid) is gone: interrupted
    assert found is not None and found.parent_run_id == "p1" and found.experiment_path == record.experiment_path
    assert state.find(sweep.name).parent_run_id == "p1"  # now this machine's record, as `resume` reads it
    assert state.load(sweep.name).sweep_copy.is_file()


def test_a_changed_sweep_a_finished_launch_or_other_storage_is_not_continued(tmp_path, machine):
    machine("a")
    sweep, record = launched(tmp_path)
    machine("b")
    changed = load_sweep(tmp_path / "kept.yaml", ["optim.lr=[0.1]"])
    assert unfinished_launch(changed, record.storage_path) is None
    assert unfinished_launch(sweep, str(tmp_path / "elsewhere")) is None
    machine("a")
    state.update(sweep.name, state="finished")
    machine("c")
    assert unfinished_launch(sweep, record.storage_path) is None


def test_a_failed_launch_is_continued_only_while_a_trial_is_not_done(tmp_path, machine):
    machine("a")
    sweep, record = launched(tmp_path)
    state.update(sweep.name, state="failed")  # the driver died of an error: nothing of the trials recorded yet
    machine("b")
    assert unfinished_launch(sweep, record.storage_path) is not None
    for info in record.trials:
        trial_record.append(trial_record.record_path(record.experiment_path, info),
                            [trial_record.event("failed", final=True, error="SpecError: bad")])
    machine("c")
    assert unfinished_launch(sweep, record.storage_path) is None


def test_records_the_driver_kept_come_along_on_object_storage(tmp_path, machine):
    """On object storage the driver writes the trials' records under its state directory and copies each into
    the Tune experiment; a driver on another machine fetches them into its own."""
    machine("a")
    old_root = tmp_path / "home-a" / "records"
    sweep, record = launched(tmp_path, records_root=str(old_root))
    info = record.trials[0]
    trial_record.append(trial_record.record_path(old_root, info),
                        [trial_record.event("start", resumed_from_iteration=0),
                         trial_record.event("epoch", iteration=4, train_loss=1.5, test_error=0.5)])
    trial_record.mirror(old_root, record.experiment_path, info)
    machine("b")
    (old_root / trial_record.trial_dirname(info) / trial_record.FILENAME).unlink()  # gone with machine a
    old_root.joinpath(trial_record.trial_dirname(info)).rmdir()
    old_root.rmdir()
    found = unfinished_launch(sweep, record.storage_path)
    assert found.records_root != str(old_root) and str(tmp_path / "home-b") in found.records_root
    history = trial_record.read(trial_record.record_path(found.records, info))
    assert [e["iteration"] for e in history.epochs] == [4] and history.last_iteration == 4
    assert json.loads(state.record_path(sweep.name).read_text())["records_root"] == found.records_root


def test_an_unreadable_storage_copy_is_ignored_with_a_note(tmp_path, machine, capsys):
    machine("a")
    sweep, record = launched(tmp_path)
    (tmp_path / "storage" / state.STORED_LAUNCHES / sweep.name / "record.json").write_text('{"name": 1, "x": 2}')
    assert state.find_stored(record.storage_path, sweep.name) is None
    assert "ignoring the unreadable launch record" in capsys.readouterr().err
    assert replace(record) == record  # the local record is untouched
