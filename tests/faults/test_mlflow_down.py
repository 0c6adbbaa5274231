"""The MLflow tracking server away for a while: training goes on, the trials' records keep every epoch,
and MLflow is brought up to date from them when the server answers again, every epoch exactly once: while the
sweep runs, at its end, or by `resnet-sweep resume` after it; the sweep does not crash; a server that is down at
launch stops `run` at once with nothing started.

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
from orchestrator.tracking.server import quick_requests, unreachable
from orchestrator.tracking.writer import Tracker
from tests.conftest import RESNET_SWEEP, resnet_sweep

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
        assert len(client.get_metric_history(run_id, "final_test_error")) == 1
        run = client.get_run(run_id)
        assert run.data.tags["resnet_sweeps.state"] == "finished" and run.info.status == "FINISHED"
        assert run.data.tags["resnet_sweeps.starts"] == "1" and run.data.metrics["final_test_error"] == 0.25
        assert client.get_run(parent).info.status == "FINISHED"
        Tracker(server.uri).sync_trial(parent, root, info)


DOWN_SWEEP = """
name: mlflow-down
base:
  model: {family: cifar, depth: 8}
  data: {dataset: synthetic, synthetic_train: 16, synthetic_test: 16, augment: false}
  optim: {batch_size: 8, iterations: EPOCHS2, milestones: [1000000]}   # 2 iterations per epoch
  runtime: {device: cpu, eval_batch_size: 16}
grid:
  optim.lr: [0.1, 0.05]
resources: {cpu: 1, gpu: 0}
"""
EPOCHS = 60


@pytest.mark.slow
def test_sweep_survives_the_tracking_server_going_away(server, tmp_path):
    if not server.running:
        server.start()
    sweep = tmp_path / "down.yaml"
    sweep.write_text(DOWN_SWEEP.replace("EPOCHS2", str(2 * EPOCHS)))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RESNET_SWEEPS_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    began = time.monotonic()
    driver = subprocess.Popen([RESNET_SWEEP, "run", str(sweep), "--num-cpus", "2", "--tracking-uri", server.uri],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    client = _client(server.uri)
    try:
        logged_before = _wait_for_epochs(client, driver, at_least=3, timeout=180)
        server.stop()
        stopped, down_from = time.monotonic(), time.time() * 1000
        restart = server.start()
        down_until = time.time() * 1000
        during = driver.poll() is None  # else the sweep's end (it tries for up to FINAL_WAIT_S) sends it all
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    elapsed = time.monotonic() - began
    assert driver.returncode == 0, out + err
    assert "2 finished" in out

    experiment = client.get_experiment_by_name("mlflow-down")
    parents = client.search_runs([experiment.experiment_id], filter_string="tags.`resnet_sweeps.role` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    assert len(runs) == 2
    waited = 0
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["resnet_sweeps.state"] == "finished"
        record = next((tmp_path / "home").glob(f"ray_results/mlflow-down-*/{run.info.run_name}_*/metrics.jsonl"))
        assert [e["iteration"] for e in trial_record.read(record).epochs] == list(range(2, 2 * EPOCHS + 1, 2))
        for key in ("train_loss", "test_error", "lr"):  # every epoch exactly once: step = iteration
            assert _steps(client, run.info.run_id, key) == list(range(2, 2 * EPOCHS + 1, 2)), (run.info.run_name, key)
        # Metrics are stamped when the trial recorded them: these epochs ended while the server was away.
        waited += sum(down_from < m.timestamp < down_until for m in client.get_metric_history(run.info.run_id,
                                                                                              "train_loss"))
    assert waited > 0  # training went on meanwhile, and what it reported reached the server afterwards
    assert "MLflow is behind" not in err and "Traceback" not in err
    print(f"sweep {elapsed:.1f} s; server away {restart:.1f} s from {stopped - began:.1f} s on "
          f"({logged_before} epochs logged before, {waited} epochs of the 2 trials sent late, "
          f"{'while the sweep ran' if during else 'by its last flush'})")


def _wait_for_epochs(client, driver: subprocess.Popen, at_least: int, timeout: float) -> int:
    """Wait until some trial has `at_least` epochs in MLflow; returns the most any trial has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.poll() is not None:
            raise AssertionError(f"the sweep ended early: {driver.communicate()}")
        with quick_requests():
            experiment = client.get_experiment_by_name("mlflow-down")
            if experiment is not None:
                runs = client.search_runs([experiment.experiment_id],
                                          filter_string="tags.`resnet_sweeps.role` = 'trial'")
                most = max((len(client.get_metric_history(r.info.run_id, "train_loss")) for r in runs), default=0)
                if most >= at_least:
                    return most
        time.sleep(0.5)
    raise AssertionError(f"no trial logged {at_least} epochs within {timeout} s")


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
