"""A trial's record (orchestrator/records/trial_record.py): what it says after starts, epochs, crashes and kills."""
from __future__ import annotations

from orchestrator.records import trial_record
from orchestrator.records.trial_record import append, event, read, record_path

INFO = {"id": "0123456789ab", "name": "resnet8-A-seed0"}


def test_a_record_tells_epochs_starts_and_outcome(tmp_path):
    path = record_path(tmp_path, INFO)
    assert path == tmp_path / "resnet8-A-seed0_0123456789ab" / "metrics.jsonl"
    assert read(path).state == "pending" and read(path).last_iteration == -1
    append(path, [event("start", resumed_from_iteration=0), event("epoch", iteration=8, train_loss=2.0)])
    append(path, [event("crashed", error="Killed")])
    assert read(path).state == "running" and read(path).last_error == "Killed"
    append(path, [event("failed", error="CheckpointWriteError: no space")])  # Tune gave up on it
    assert read(path).state == "failed" and not read(path).done  # `resume` runs it again
    append(path, [event("start", resumed_from_iteration=8), event("epoch", iteration=16, train_loss=1.0),
                  event("epoch", iteration=16, train_loss=1.0, done=True)])  # the same epoch again: kept once
    history = read(path)
    assert history.state == "finished" and history.done and history.end["done"]
    assert [e["iteration"] for e in history.epochs] == [8, 16] and len(history.starts) == 2
    append(path, [event("start"), event("diverged", diverged_at_iteration=20, error="NaN loss")])
    assert read(path).state == "diverged" and read(path).done and read(path).end["diverged_at_iteration"] == 20


def test_a_line_torn_by_a_kill_costs_only_itself(tmp_path):
    path = record_path(tmp_path, INFO)
    append(path, [event("start"), event("epoch", iteration=8)])
    with path.open("a") as f:
        f.write('{"event": "epoch", "itera')  # the trial was SIGKILLed mid-write
    append(path, [event("start"), event("epoch", iteration=16)])  # its retry closes the torn line first
    assert [e["iteration"] for e in read(path).epochs] == [8, 16] and len(read(path).starts) == 2


def test_resume_finds_the_newest_tune_checkpoint_on_storage(tmp_path):
    """On object storage `resume` hands each trial Tune's newest checkpoint (listed through pyarrow, here on a
    local path; Ray Train's for a data-parallel trial)."""
    from orchestrator.running.tune_runner import newest_tune_checkpoint

    trial = tmp_path / trial_record.trial_dirname(INFO)
    assert newest_tune_checkpoint(str(tmp_path), INFO) is None
    for name in ("checkpoint_000001", "checkpoint_000003", "train/checkpoint_000002", "error.txt"):
        (trial / name).mkdir(parents=True)
    assert newest_tune_checkpoint(str(tmp_path), INFO) == f"{trial}/checkpoint_000003"
