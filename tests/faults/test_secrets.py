"""Credentials in a tracking URI never reach the terminal (security)."""
import json
import pickle

import pytest

from orchestrator.records import state
from orchestrator.cli import main
from orchestrator.tracking.uris import redact_uri, ui_command

SECRET_URI = "https://alice:s3cr3t-t0ken@mlflow.example.org:5000"


def test_passwords_are_redacted_and_everything_else_kept():
    assert redact_uri(SECRET_URI) == "https://alice:***@mlflow.example.org:5000"
    assert redact_uri("sqlite:////home/a/mlruns.db") == "sqlite:////home/a/mlruns.db"
    assert redact_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert "s3cr3t" not in ui_command(SECRET_URI)


def test_status_does_not_print_the_token(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path))
    record = state.SweepRecord(name="secret", sweep_file="s.yaml", experiment="secret", tracking_uri=SECRET_URI,
                               parent_run_id="0" * 32, storage_path=str(tmp_path), experiment_path=str(tmp_path),
                               trials=[], state="finished")
    state.save(record, {"name": "secret"})
    assert main(["status", "--json"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out and json.loads(out)[0]["tracking_uri"] == redact_uri(SECRET_URI)


def test_tune_experiment_state_does_not_carry_the_password():
    """Tune pickles its run config, callbacks included, into tuner.pkl in the experiment directory on the
    sweep's storage (an S3 bucket on a cluster, readable by whoever reads the checkpoints): the callback's
    pickled state must not hold the tracking server's password."""
    from orchestrator.running.mlflow_callback import MlflowSweepCallback

    assert b"s3cr3t" not in pickle.dumps(MlflowSweepCallback(SECRET_URI, "0" * 32, "/records", "secret"))
