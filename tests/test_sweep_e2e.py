"""End to end through the real CLI: local Ray Tune, resnet_core training on CPU, a SQLite MLflow store, all in
tmp_path. The smoke sweep's runs are checked through MlflowClient (nesting, params, metrics by step, artifacts);
a driver SIGKILLed after its first trial finished is resumed to completion without duplicate runs or re-runs."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from orchestrator.specs.expansion import expand
from orchestrator.specs.reading import load_sweep
from orchestrator.records.trial_record import read
from tests.conftest import RESNET_SWEEP, resnet_sweep, tiny_sweep

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sweep_env(tmp_path, monkeypatch):
    """Environment for the CLI: state in tmp_path, a local Ray of 2 CPUs, no cluster address."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RESNET_SWEEPS_HOME"] = str(tmp_path / "home")
    env["PYTHONUNBUFFERED"] = "1"
    monkeypatch.setenv("RESNET_SWEEPS_HOME", env["RESNET_SWEEPS_HOME"])
    return env


def client(tmp_path: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")


def children(c, parent_id: str) -> list:
    experiment_id = c.get_run(parent_id).info.experiment_id
    return c.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")


# The smoke sweep with a quarter of its images per step (the same 8 iterations per epoch, 4x less arithmetic) and
# half its iterations: 3 epochs.
SMALLER = ("--set", "data.synthetic_train=64", "--set", "data.synthetic_test=32", "--set", "optim.batch_size=8",
           "--set", "optim.iterations=24", "--set", "optim.milestones=[16,20]")


def test_smoke_sweep_end_to_end(tmp_path, sweep_env):
    started = time.monotonic()
    result = resnet_sweep("run", str(ROOT / "sweeps" / "smoke.yaml"), *SMALLER, "--num-cpus", "2", cwd=tmp_path,
                          env=sweep_env, timeout=240)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 finished" in result.stdout and f"mlflow ui --backend-store-uri sqlite:///{tmp_path}" in result.stdout
    print(f"smoke sweep: {elapsed:.1f} s wall")
    c = client(tmp_path)
    experiment = c.get_experiment_by_name("smoke")
    # The printed link opens the training view on this launch's trials, flat and best first, as charts.
    link = re.search(r"the trials: (\S+)", result.stdout.replace("\n", "")).group(1)
    assert link.startswith(f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?")
    query = parse_qs(link.split("?", 1)[1])
    assert query["workflowType"] == ["machine_learning"] and query["compareRunsMode"] == ["CHART"]
    assert query["orderByKey"] == ["metrics.`test_error`"]
    assert query["searchFilter"][0].startswith("tags.`mlflow.parentRunId` = '")

    status = resnet_sweep("status", "smoke", "--json", cwd=tmp_path, env=sweep_env)
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    assert summary["state"] == "finished" and len(summary["trials"]) == 4
    assert {t["state"] for t in summary["trials"]} == {"finished"}

    parents = c.search_runs([experiment.experiment_id], filter_string="tags.`resnet_sweeps.role` = 'sweep'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["resnet_sweeps.sweep"] == "smoke"
    description = load_sweep(ROOT / "sweeps" / "smoke.yaml").description
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == description == parent.data.tags["mlflow.note.content"]
    assert query["searchFilter"] == [f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"]
    runs = children(c, parent.info.run_id)
    assert sorted(r.info.run_name for r in runs) == sorted(["resnet8-A-seed0", "plain8-A-seed0",
                                                             "resnet14-A-seed0", "plain14-A-seed0"])
    sweep = load_sweep(ROOT / "sweeps" / "smoke.yaml", SMALLER[1::2])
    ids = {t.name: t.id for t in expand(sweep)}  # what `plan` shows
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert run.info.status == "FINISHED"
        assert tags["resnet_sweeps.role"] == "trial" and tags["resnet_sweeps.state"] == "finished"
        assert tags["resnet_sweeps.trial_id"] == ids[run.info.run_name]  # the plan's stable id
        assert tags["resnet_sweeps.device"] == "cpu" and "resnet_sweeps.torch" in tags
        assert params["model.depth"] in ("8", "14") and params["optim.iterations"] == "24"
        assert int(params["model.params"]) > 0 and int(params["model.macs"]) > 0
        history = c.get_metric_history(run.info.run_id, "test_error")
        assert [m.step for m in history] == [8, 16, 24]  # step = iteration; 8 iterations per epoch
        # MLflow is a view of the trial's record, beside its checkpoint: the same epochs, the same values.
        record = read(next((tmp_path / "home").glob(f"ray_results/smoke-*/{run.info.run_name}_*/metrics.jsonl")))
        assert [(e["iteration"], e["test_error"]) for e in record.epochs] == [(m.step, m.value) for m in history]
        # The curves a person charts, per epoch; the final results once; no `epoch` or final_ copy of each curve.
        curves = {"train_loss", "train_error", "test_error", "test_top5_error", "lr", "images_per_sec"}
        finals = {"final_test_error", "final_test_top5_error", "final_train_error", "epochs", "wall_time_s"}
        assert set(metrics) - curves - {"train_error_curve", "train_loss_curve"} == finals, metrics
        for key in curves:
            assert len(c.get_metric_history(run.info.run_id, key)) == 3
        assert metrics["final_test_error"] == history[-1].value and 0 <= metrics["final_train_error"] <= 1
        assert metrics["epochs"] == 3 and metrics["wall_time_s"] > 0
        # Figure 6's finer curve: every 20 iterations and at each epoch's end, at its own steps
        for key in ("train_error_curve", "train_loss_curve"):
            assert sorted(m.step for m in c.get_metric_history(run.info.run_id, key)) == [8, 16, 20, 24]
        artifacts = {a.path for a in c.list_artifacts(run.info.run_id)}
        assert artifacts == {"config.yaml", "layer_responses.json"}
        responses = json.loads(Path(c.download_artifacts(run.info.run_id, "layer_responses.json",
                                                         str(tmp_path))).read_text())
        depth = int(params["model.depth"])
        assert len(responses["layers"]) == len(responses["std"]) == depth - 1  # every 3x3 conv: all but the fc
        assert all(s > 0 for s in responses["std"])

    # The report rebuilds the sweep's figures from this real store, and logs them on the parent run.
    report = resnet_sweep("report", "smoke", cwd=tmp_path, env=sweep_env)
    assert report.returncode == 0, report.stderr
    written = {p.name for p in (tmp_path / "reports" / "smoke").iterdir()}
    assert {"fig6.png", "fig7.png", "report.md"} <= written
    logged = {a.path for a in c.list_artifacts(parent.info.run_id, "report")}
    assert {"report/fig6.png", "report/fig7.png", "report/report.md"} <= logged
    # ... and its summary becomes the parent run's description: the run page shows the reproduction.
    note = c.get_run(parent.info.run_id).data.tags["mlflow.note.content"]
    assert note.startswith("# Report: smoke") and "Degradation" in note
    assert f"](get-artifact?path=report%2Ffig6.png&run_uuid={parent.info.run_id})" in note
    assert "the trials: http://127.0.0.1:5000/#/experiments/" in report.stdout


# 2 iterations per epoch: 40 epochs a trial
KILL_SWEEP = tiny_sweep("killed", train=16, test=16, batch=8, iterations=80, milestones=(60,), augment=False,
                        eval_batch=16) + """\
grid:
  optim.lr: [0.1, 0.05, 0.02, 1000000.0]   # the last one diverges: recorded as such, not retried
max_concurrent: 1        # one trial after another, so "the first finished" is well defined
resources: {cpu: 1, gpu: 0}
"""


def _wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} within {timeout} s; output: {''.join(lines)}")


def _wait_for_epochs(home: Path, trial: str, epochs: int, driver: subprocess.Popen, timeout: float) -> None:
    """Poll the trial's record until it holds `epochs` epochs."""
    deadline = time.monotonic() + timeout
    while not any(len(read(p).epochs) >= epochs for p in home.glob(f"ray_results/*/{trial}_*/metrics.jsonl")):
        assert time.monotonic() < deadline and driver.poll() is None, f"{trial}: no {epochs} epochs recorded"
        time.sleep(0.1)


def test_killed_driver_resumes_without_duplicates_or_reruns(tmp_path, sweep_env):
    sweep = tmp_path / "killed.yaml"
    sweep.write_text(KILL_SWEEP)
    driver = subprocess.Popen([RESNET_SWEEP, "run", str(sweep), "--num-cpus", "2"], cwd=tmp_path, env=sweep_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for_line(driver, "finished  resnet8-A-lr0.1-seed0", timeout=180)
        _wait_for_epochs(tmp_path / "home", "resnet8-A-lr0.05-seed0", 3, driver, timeout=180)  # a few epochs in
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        try:  # the local Ray the driver started lives in its session: end it too, as a dead machine would
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert driver.returncode == -signal.SIGKILL

    c = client(tmp_path)
    before = resnet_sweep("status", "killed", "--json", cwd=tmp_path, env=sweep_env)
    assert before.returncode == 0, before.stderr
    states = {t["name"]: t["state"] for t in json.loads(before.stdout)["trials"]}
    assert json.loads(before.stdout)["state"] == "interrupted"
    assert states["resnet8-A-lr0.1-seed0"] == "finished"
    assert states["resnet8-A-lr0.02-seed0"] == "pending"
    parent_id = json.loads(before.stdout)["parent_run_id"]
    first = {r.info.run_name: r for r in children(c, parent_id)}
    assert set(first) == {"resnet8-A-lr0.1-seed0", "resnet8-A-lr0.05-seed0"}
    # Where the trial was when the driver died: its record (MLflow may lag it by Tune's result buffering).
    killed_at = read(next((tmp_path / "home").glob("ray_results/killed-*/resnet8-A-lr0.05-seed0_*/metrics.jsonl"))
                     ).last_iteration
    assert 0 < killed_at < 80

    resumed = resnet_sweep("resume", "killed", "--num-cpus", "2", cwd=tmp_path, env=sweep_env, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 diverged, 3 finished" in resumed.stdout

    runs = {r.info.run_name: r for r in children(c, parent_id)}
    diverged = runs.pop("resnet8-A-lr1e+06-seed0")
    assert diverged.data.tags["resnet_sweeps.state"] == "diverged" and diverged.info.status == "FAILED"
    assert diverged.data.tags["resnet_sweeps.starts"] == "1"  # a diverged trial is not retried
    assert 0 <= int(diverged.data.tags["resnet_sweeps.diverged_at_iteration"]) < 80
    assert len(children(c, parent_id)) == 4 and set(runs) == {"resnet8-A-lr0.1-seed0", "resnet8-A-lr0.05-seed0",
                                                              "resnet8-A-lr0.02-seed0"}
    parents = c.search_runs([c.get_run(parent_id).info.experiment_id],
                            filter_string="tags.`resnet_sweeps.role` = 'sweep'")
    assert [p.info.run_id for p in parents] == [parent_id] and parents[0].info.status == "FINISHED"
    for name, run in runs.items():
        assert run.data.tags["resnet_sweeps.state"] == "finished" and run.info.status == "FINISHED"
        steps = sorted(m.step for m in c.get_metric_history(run.info.run_id, "train_loss"))
        assert steps == list(range(2, 81, 2)), name  # every epoch exactly once: no step twice, none lost
    done_first = runs["resnet8-A-lr0.1-seed0"]
    assert done_first.data.tags["resnet_sweeps.starts"] == "1"  # finished before the kill: never re-run
    assert done_first.info.start_time == first["resnet8-A-lr0.1-seed0"].info.start_time
    interrupted = runs["resnet8-A-lr0.05-seed0"].data.tags
    assert interrupted["resnet_sweeps.starts"] == "2"
    # Continued from its checkpoint, written before each epoch's line in the record: at least where the record was.
    assert killed_at <= int(interrupted["resnet_sweeps.resumed_from_iteration"]) < 80
