"""The MLflow tracking server down for a while mid-sweep (issue 7): training goes on, what the driver could not log
waits in order and reaches the server when it is back, every epoch exactly once; the sweep does not crash; a
server that is down at launch stops `run` at once with nothing started.

A real `mlflow server` (SQLite store in tmp, 127.0.0.1, a free port) is killed and started again on the same port
and store. Its start takes ~5 s on a quiet machine and ~17 s on a busy 2-core one: the down time is that long.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestrator import state, tracking_outbox
from orchestrator.mlflow_callback import model_cost, unsent_file
from orchestrator.sweep import expand, load_sweep
from orchestrator.tracking import MISSING_STEPS, Tracker, quick_requests
from orchestrator.tracking_outbox import End, Epoch, Outbox
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


def _epoch(step: int) -> Epoch:
    return Epoch.of({"iteration": step, "train_loss": 1.0 / step, "train_error": 0.5, "test_error": 0.5,
                     "lr": 0.1, "epoch": step // 8})


@pytest.mark.slow  # two server starts: ~30-50 s on a busy 2-core machine
def test_writes_wait_in_order_while_the_server_is_away_and_arrive_once(server, monkeypatch, capsys, tmp_path):
    """The Outbox against a real server: killed (connection refused; what waits is kept in a file and sent by
    `resnet-sweep resume` after the restart), then frozen (no answer)."""
    monkeypatch.setattr(tracking_outbox, "MAX_PENDING_EPOCHS", 4)  # the bound, small enough to reach here
    if not server.running:
        server.start()
    tracker, client = Tracker(server.uri), _client(server.uri)
    sweep = load_sweep(ROOT / "sweeps" / "smoke.yaml")
    trials = [t.to_dict() for t in expand(sweep)]
    parent = tracker.start_sweep("outbox", sweep.name, sweep.to_dict(), len(trials), tags={})
    outbox = Outbox(tracker, parent)
    box = outbox.box(trials[0], lambda: model_cost(trials[0]["spec"]))
    outbox.start(box)
    for step in (8, 16):
        outbox.put(box, _epoch(step))
    assert outbox.flush() and box.run_id and not box.pending

    server.stop()  # a crash: the port refuses connections until the new server is up
    waits = []
    for step in range(24, 88, 8):  # 8 epochs while away; 4 kept: the first (its request may have reached the
        outbox.put(box, _epoch(step))  # server) and the newest
        began = time.monotonic()
        assert outbox.flush() is False
        waits.append(time.monotonic() - began)
    outbox.put(box, _epoch(80))  # the same step again (a replayed result): queued once
    outbox.put(box, End("finished", {"iteration": 80, "train_loss": 0.0125, "test_error": 0.25}))
    assert max(waits) < 2.0, waits  # a refused connection costs Tune's loop milliseconds, not minutes
    assert [w.step for w in box.pending if isinstance(w, Epoch)] == [24, 64, 72, 80]
    assert box.dropped == [32, 40, 48, 56]
    assert outbox.unsent() == [f"{trials[0]['name']} (run {box.run_id}): steps 24,32,40,48,56,64,72,80 "
                               f"final state 'finished'"]
    # The sweep ends now: it finishes, says what was not logged, and keeps it for `resume` (as the callback does).
    monkeypatch.setattr(tracking_outbox, "FINAL_WAIT_S", 1.0)
    assert outbox.flush_at_end() is False
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))
    kept = unsent_file(sweep.name, parent)
    outbox.save(kept)
    outbox.report_unsent(kept, sweep.name)
    said = capsys.readouterr().err
    assert f"tracking server {server.uri} could not be reached" in said and box.run_id in said
    assert "steps 24,32,40,48,56,64,72,80 final state 'finished'" in said
    assert f"kept in {kept}: `resnet-sweep resume smoke` sends them" in said
    state.save(state.SweepRecord(name=sweep.name, sweep_file="smoke.yaml", experiment="outbox",
                                 tracking_uri=server.uri, parent_run_id=parent, storage_path=str(tmp_path),
                                 experiment_path=str(tmp_path / "tune"), trials=[], state="finished"))

    restart = server.start()
    resumed = resnet_sweep("resume", sweep.name, env={**os.environ}, timeout=120)  # a later process sends them
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"sent the MLflow writes kept in {kept}" in resumed.stdout and not kept.exists()
    run = client.get_run(box.run_id)
    assert _steps(client, box.run_id) == [8, 16, 24, 64, 72, 80]  # once each; the dropped ones named:
    assert run.data.tags[MISSING_STEPS] == "32,40,48,56"
    assert run.data.tags["resnet_sweeps.state"] == "finished" and run.info.status == "FINISHED"
    assert run.data.metrics["final_test_error"] == 0.25
    assert len(client.get_metric_history(box.run_id, "final_test_error")) == 1

    # A server that takes requests but does not answer: the request times out (1 s here; a user's setting of
    # MLflow's variable is kept), the server may still commit it later: sent again, it is not logged twice.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    outbox = Outbox(tracker, parent)
    second = outbox.box(trials[1], lambda: model_cost(trials[1]["spec"]))
    outbox.start(second)
    outbox.put(second, _epoch(8))
    assert outbox.flush()
    server.signal(signal.SIGSTOP)
    try:
        outbox.put(second, _epoch(16))
        outbox.put(second, End("finished", {"iteration": 16, "train_loss": 0.5, "test_error": 0.5}))
        began = time.monotonic()
        assert outbox.flush() is False
        frozen_wait = time.monotonic() - began
        assert frozen_wait < 4.0, frozen_wait
        assert outbox.flush() is False  # within the back-off after a slow failure: not even tried
        assert time.monotonic() - began < 4.5
    finally:
        server.signal(signal.SIGCONT)
    time.sleep(1.0)  # the server works through what it received while frozen
    committed_meanwhile = _steps(client, second.run_id)
    assert outbox.flush_at_end()
    assert _steps(client, second.run_id) == [8, 16]
    assert client.get_run(second.run_id).data.tags["resnet_sweeps.state"] == "finished"
    assert len(client.get_metric_history(second.run_id, "final_test_error")) == 1
    print(f"server restart {restart:.1f} s; refused write {max(waits) * 1000:.0f} ms; frozen server "
          f"{frozen_wait:.1f} s; committed while frozen: {committed_meanwhile}")


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
        during = driver.poll() is None  # else the sweep's last flush (it waits up to FINAL_WAIT_S) sends it all
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
        assert MISSING_STEPS not in run.data.tags
        for key in ("train_loss", "test_error", "lr"):  # every epoch exactly once: step = iteration
            assert _steps(client, run.info.run_id, key) == list(range(2, 2 * EPOCHS + 1, 2)), (run.info.run_name, key)
        # Metrics are stamped when the driver got them: these epochs ended while the server was away.
        waited += sum(down_from < m.timestamp < down_until for m in client.get_metric_history(run.info.run_id,
                                                                                              "train_loss"))
    assert waited > 0  # training went on meanwhile, and what it reported reached the server afterwards
    assert "could not be reached" not in err and "Traceback" not in err
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
    assert elapsed < 60  # the CLI's imports take a few seconds on a busy machine; MLflow's retries took minutes
    print(f"unreachable server: exit 1 in {elapsed:.1f} s")


def test_callback_keeps_what_it_could_not_send_at_the_end(tmp_path, monkeypatch, capsys):
    """The driver's callback with nothing listening: its hooks return at once, and at the experiment's end it
    says what was not logged and keeps it in the sweep's state directory."""
    from orchestrator.mlflow_callback import MlflowSweepCallback

    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path))
    monkeypatch.setattr(tracking_outbox, "FINAL_WAIT_S", 0.5)
    uri, parent = f"http://127.0.0.1:{_free_port()}", "0" * 32
    callback = MlflowSweepCallback(uri, parent, str(unsent_file("gone", parent)))
    began = time.monotonic()
    callback.setup()
    callback.on_experiment_end(trials=[])
    assert time.monotonic() - began < 5
    said = capsys.readouterr().err
    assert f"sweep parent run {parent}: state 'finished'" in said
    assert "`resnet-sweep resume gone` sends them" in said
    kept = json.loads(unsent_file("gone", parent).read_text())
    assert kept["sweep_state"] == "finished" and kept["tracking_uri"] == uri and kept["runs"] == []
