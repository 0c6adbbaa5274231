"""The MLflow tracking server away for a while: the trials' records keep every epoch, and MLflow is brought up
to date from them when the server answers again, every epoch exactly once: at the sweep's end, or by
`resnet-sweep resume` after it; a server that is down at launch stops `run` at once with nothing started. (A
server killed mid-sweep on a cluster, with training going on meanwhile, is one of the kills of test_chaos.py.)

A real `mlflow server` (SQLite store in tmp, 127.0.0.1, a free port) is killed and started again on the same port
and store, or frozen with SIGSTOP. Its start takes ~5 s on a quiet machine and ~17 s on a busy 2-core one: the
down time is that long.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.running import mlflow_callback
from orchestrator.records import state, trial_record
from orchestrator.running.mlflow_callback import MlflowSweepCallback
from orchestrator.specs.expansion import expand
from orchestrator.specs.reading import load_sweep
from orchestrator.tracking.server import unreachable
from orchestrator.tracking.writer import Tracker
from tests.conftest import resnet_sweep
from tests.test_mlflow_models import checkpoint_at

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """`mlflow server` in its own process group (the CLI starts uvicorn as a child): killed as a crash would."""

    def __init__(self, root: Path):
        self.root, self.port = root, _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 120) -> float:
        """Start and wait until it answers; returns the seconds that took."""
        began = time.monotonic()
        self.starts += 1
        out = open(self.root / f"mlflow-{self.starts}.log", "w")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job-runner processes
        self.process = subprocess.Popen(
            [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db",
             "--artifacts-destination", str(self.root / "artifacts")],
            cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return time.monotonic() - began
            except OSError:
                time.sleep(0.25)
        self.stop()
        log = (self.root / f"mlflow-{self.starts}.log").read_text()
        raise TimeoutError(f"mlflow server not up in {timeout} s:\n{log}")

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        server.stop()


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _steps(client, run_id: str, key: str = "train_loss") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def _epoch(step: int, done: bool = False) -> dict:
    return trial_record.event("epoch", iteration=step, epoch=step // 8, train_loss=1.0 / step, train_error=0.5,
                              test_error=0.25 if done else 0.5, lr=0.1, **({"done": True} if done else {}))


@pytest.mark.slow  # a server start and a `resnet-sweep resume` process: ~20-40 s on a busy 2-core machine
def test_a_server_that_comes_back_gets_every_epoch_exactly_once(server, monkeypatch, tmp_path):
    """One trial's record against a real server: synced, then the server freezes (requests time out; it may
    commit them later) while the trial records more epochs and finishes; the sweep's end cannot send them and says
    so; `resnet-sweep resume` sends them once the server answers: every epoch once, the final state, no new run."""
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # a frozen server costs 1 s a request here
    if not server.running:
        server.start()
    client = _client(server.uri)
    sweep = load_sweep(ROOT / "sweeps" / "smoke.yaml")
    info = expand(sweep)[0].to_dict()
    parent = Tracker(server.uri).start_sweep("outage", sweep.name, sweep.to_dict(), 4, tags={})
    root = tmp_path / "experiment"
    record = trial_record.record_path(root, info)
    trial_record.append(record, [trial_record.event("start", resumed_from_iteration=0, device="cpu")])
    trial_record.append(record, [_epoch(8), _epoch(16)])
    tracker = Tracker(server.uri)
    run_id = tracker.sync_trial(parent, root, info).run_id
    assert _steps(client, run_id) == [8, 16]

    trial_record.append(record, [_epoch(s) for s in (24, 32, 40)] + [_epoch(48, done=True)])
    checkpoint_at(record.parent / "latest", expand(sweep)[0].spec, 48)  # the finished trial's weights: its model
    server.signal(signal.SIGSTOP)
    try:
        with pytest.raises(Exception) as caught:
            tracker.sync_trial(parent, root, info)
        assert unreachable(caught.value), caught.value
        behind = tracker.sync_trials(parent, root, [info])
        assert behind and behind[0].startswith(f"{info['name']}: no answer from {server.uri}"), behind
    finally:
        server.signal(signal.SIGCONT)  # it works through what it received meanwhile, maybe committing some
    state.save(state.SweepRecord(name=sweep.name, sweep_file="smoke.yaml", experiment="outage",
                                 tracking_uri=server.uri, parent_run_id=parent, storage_path=str(tmp_path),
                                 experiment_path=str(root), trials=[], state="finished", mlflow_behind=behind),
               sweep.to_dict())
    resumed = resnet_sweep("resume", sweep.name, env={**os.environ}, timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "MLflow is up to date" in resumed.stdout and state.load(sweep.name).mlflow_behind == []

    for _ in range(2):  # and syncing again changes nothing
        runs = client.search_runs([client.get_run(parent).info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
        assert [r.info.run_id for r in runs] == [run_id]  # found again, never a second run
        for key in ("train_loss", "test_error", "lr"):
            assert _steps(client, run_id, key) == [8, 16, 24, 32, 40, 48], key
        run = client.get_run(run_id)
        assert run.data.tags["resnet_sweeps.state"] == "finished" and run.info.status == "FINISHED"
        assert run.data.tags["resnet_sweeps.starts"] == "1" and run.data.metrics["test_error"] == 0.25
        assert not [k for k in run.data.metrics if k.startswith("final_")]  # no copy of a curve's last point
        models = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'")
        assert [(m.name, str(m.status)) for m in models] == [(f"{info['name']}-final", "READY")]  # once
        assert run.data.tags["resnet_sweeps.model.final"] == models[0].model_id
        assert client.get_run(parent).info.status == "FINISHED"
        Tracker(server.uri).sync_trial(parent, root, info)


def test_run_fails_fast_when_the_server_is_not_there(tmp_path):
    """Nothing listens on the port: exit 1 within seconds, the URI named (its password hidden), nothing recorded."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RESNET_SWEEPS_HOME"] = str(tmp_path / "home")
    uri = f"http://alice:s3cr3t@127.0.0.1:{_free_port()}"
    began = time.monotonic()
    result = resnet_sweep("run", str(ROOT / "sweeps" / "smoke.yaml"), "--tracking-uri", uri, cwd=tmp_path, env=env,
                          timeout=120)
    elapsed = time.monotonic() - began
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot reach the MLflow tracking server at http://alice:***@127.0.0.1" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    assert not (tmp_path / "home").exists() and not list(tmp_path.iterdir())  # no record, no Ray results, no store
    print(f"unreachable server: exit 1 in {elapsed:.1f} s")


def test_sweep_end_with_the_server_away_says_what_is_behind(tmp_path, monkeypatch, capsys):
    """The driver's callback with nothing listening: Tune's hooks only note the trial (a thread syncs), and at
    the experiment's end it names the runs MLflow lacks and marks the sweep's state record, so `resume` knows
    there is something to send; the trial's record keeps what Tune handed over."""
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path))
    monkeypatch.setattr(mlflow_callback, "FINAL_WAIT_S", 0.5)
    uri, parent = f"http://127.0.0.1:{_free_port()}", "0" * 32
    state.save(state.SweepRecord(name="gone", sweep_file="gone.yaml", experiment="gone", tracking_uri=uri,
                                 parent_run_id=parent, storage_path=str(tmp_path), experiment_path=str(tmp_path),
                                 trials=[]))
    info = {"id": "abc", "name": "resnet8-A-seed0", "spec": {}}
    trial = SimpleNamespace(config={"trial": info}, status="TERMINATED", last_result={"final": True})
    callback = MlflowSweepCallback(uri, parent, str(tmp_path / "records"), "gone")
    callback.setup()
    callback.on_trial_result(0, [trial], trial, {"record": [_epoch(8)]})  # as a trial on object storage sends it
    callback.on_experiment_end(trials=[trial])
    said = capsys.readouterr().err
    assert "MLflow is behind the trials' records for 2 runs" in said and "`resnet-sweep resume gone`" in said
    behind = state.load("gone").mlflow_behind
    assert behind[0].startswith(f"resnet8-A-seed0: no answer from {uri}") and parent in behind[1]
    assert [e["iteration"] for e in trial_record.read(trial_record.record_path(tmp_path / "records", info)).epochs] == [8]
