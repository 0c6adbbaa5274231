"""End to end through the real CLI: local Ray Tune, resnet_core training on CPU, a SQLite MLflow store, all in
tmp_path. The smoke sweep's runs are checked through MlflowClient (nesting, params, metrics by step, artifacts);
a driver SIGKILLed after its first trial finished, its `run` run again on a machine with an empty state directory,
continues the launch to completion without duplicate runs or re-runs."""
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


def check_models_and_data(c, run, last) -> None:
    """The trial's final weights as one READY LoggedModel of its run, at its last step with its architecture and
    its last epoch's metrics; its data sets (training, test) as the run's inputs, the metrics linked to them."""
    from mlflow.entities import LoggedModelStatus

    found = c.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    assert [(m.name, m.status) for m in found] == [(f"{run.info.run_name}-final", LoggedModelStatus.READY)]
    model = found[0]
    assert run.data.tags["resnet_sweeps.model.final"] == model.model_id and model.model_type == "resnet"
    assert model.params["model.depth"] == run.data.params["model.depth"] and model.params["iteration"] == "24"
    assert [(o.model_id, o.step) for o in c.get_run(run.info.run_id).outputs.model_outputs] == [(model.model_id, 24)]
    linked = {m.key: m for m in model.metrics}
    assert linked["test_error"].value == last.value and linked["test_error"].step == 24
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "test"} and inputs["test"].name == "synthetic-test"
    assert json.loads(inputs["training"].profile)["images"] == 64 and json.loads(inputs["test"].profile)["images"] == 32
    assert linked["test_error"].dataset_digest == inputs["test"].digest


def check_register(tmp_path, sweep_env, c, runs) -> None:
    """`register` puts the best trial's model in the registry as `champion`; loaded from there (pt2, exported at
    a batch of 2) it gives, on the trial's test set at the test set's batch size, the test error its run logged."""
    import mlflow
    import torch

    from resnet_core.layout import net_layout
    from resnet_core.loading import load_trial_data
    from resnet_core.spec import TrialSpec

    registered = resnet_sweep("register", "smoke", "--as", "smoke-net", cwd=tmp_path, env=sweep_env)
    assert registered.returncode == 0, registered.stderr
    assert "mlflow.pytorch.load_model('models:/smoke-net@champion')" in registered.stdout
    version = c.get_model_version_by_alias("smoke-net", "champion")
    best = runs[version.run_id]
    assert best.data.metrics["test_error"] == min(r.data.metrics["test_error"] for r in runs.values())
    mlflow.set_tracking_uri(c.tracking_uri)
    model = mlflow.pytorch.load_model("models:/smoke-net@champion")
    spec = TrialSpec.from_dict(yaml_artifact(c, best, tmp_path))  # the trial's config.yaml
    data = load_trial_data(spec.data, net_layout(spec.model).image_size, spec.optim.batch_size, 32, spec.seed,
                           torch.device("cpu"), torch.contiguous_format)
    wrong = seen = 0
    with torch.no_grad():
        for images, labels in data.evals["test"]:
            assert len(images) == 32  # the whole test set in one batch, not the export's batch of 2
            wrong += int((model(images).argmax(1) != labels).sum())
            seen += len(labels)
    assert wrong / seen == pytest.approx(best.data.metrics["test_error"], abs=1e-6)


def yaml_artifact(c, run, tmp_path) -> dict:
    from resnet_core import yaml12

    return yaml12.load(Path(c.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))).read_text())


def test_smoke_sweep_end_to_end(tmp_path, sweep_env):
    started = time.monotonic()
    result = resnet_sweep("run", str(ROOT / "sweeps" / "smoke.yaml"), *SMALLER, "--num-cpus", "2", cwd=tmp_path,
                          env={**sweep_env, "RESNET_SWEEPS_PROGRESS_S": "1"}, timeout=240)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 finished" in result.stdout and f"mlflow ui --backend-store-uri sqlite:///{tmp_path}" in result.stdout
    # stdout is a pipe: a line as each trial starts and ends, and summaries between (every second here, 30 s as sold)
    for name in ("resnet8-A-seed0", "plain8-A-seed0", "resnet14-A-seed0", "plain14-A-seed0"):
        assert f" started  {name}  iteration " in result.stdout
        assert f"finished  {name}  iteration 24/24" in result.stdout
    assert re.search(r"progress: .* of 4 trials; [\d,]+/96 iterations \(\d+%\)", result.stdout), result.stdout
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
    assert {t["rung"] for t in summary["trials"]} == {"eager fp32"}  # the fallback ladder's rung each trained on

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
        assert tags["resnet_sweeps.rung"] == "eager fp32" and "resnet_sweeps.fallback" not in tags  # the ladder
        assert params["model.depth"] in ("8", "14") and params["optim.iterations"] == "24"
        assert int(params["model.params"]) > 0 and int(params["model.macs"]) > 0
        history = c.get_metric_history(run.info.run_id, "test_error")
        assert [m.step for m in history] == [8, 16, 24]  # step = iteration; 8 iterations per epoch
        # MLflow is a view of the trial's record, beside its checkpoint: the same epochs, the same values.
        record = read(next((tmp_path / "home").glob(f"ray_results/smoke-*/{run.info.run_name}_*/metrics.jsonl")))
        assert [(e["iteration"], e["test_error"]) for e in record.epochs] == [(m.step, m.value) for m in history]
        # The curves a person charts, per epoch, and the trial process's CPU and memory over time (System metrics);
        # no single-point copy of a curve's last point: what a run has once (epochs, wall time) is a param.
        curves = {"train_loss", "train_error", "test_error", "test_top5_error", "lr", "images_per_sec"}
        system = {"system/process_cpu_utilization_percentage", "system/process_memory_usage_megabytes"}
        assert set(metrics) - curves - {"train_error_curve", "train_loss_curve"} == system, metrics
        for key in curves:
            assert len(c.get_metric_history(run.info.run_id, key)) == 3
        assert len(c.get_metric_history(run.info.run_id, "system/process_memory_usage_megabytes")) >= 3
        assert metrics["system/process_memory_usage_megabytes"] > 50  # a trial process holds torch at least
        assert params["epochs"] == "3" and float(params["wall_time_s"]) > 0
        check_models_and_data(c, run, history[-1])
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

    # The launch's outcome on its parent run, for the experiment's runs table.
    outcome = c.get_run(parent.info.run_id).data.metrics
    assert outcome["trials_finished"] == 4 and outcome["trials_failed"] == outcome["trials_stopped"] == 0
    assert outcome["best_test_error"] == min(r.data.metrics["test_error"] for r in runs)
    check_register(tmp_path, sweep_env, c, {r.info.run_id: r for r in runs})

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


# 2 iterations per epoch: 20 epochs a trial
KILL_SWEEP = tiny_sweep("killed", train=16, test=16, batch=8, iterations=40, milestones=(30,), augment=False,
                        eval_batch=16) + """\
grid:
  optim.lr: [0.1, 0.05, 0.02, 1000000.0]   # the last one diverges: recorded as such, not retried
max_concurrent: 1        # one trial after another, so "the first finished" is well defined
resources: {cpu: 1, gpu: 0}
"""


def wait_for_text(log: Path, text: str, driver: subprocess.Popen, timeout: float) -> None:
    """Poll the driver's log file until it holds `text`; fail, with the log, if the driver exits or time is up."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline and driver.poll() is None, f"no {text!r}: {log.read_text()[-4000:]}"
        time.sleep(0.1)


def _wait_for_epochs(storage: Path, trial: str, epochs: int, driver: subprocess.Popen, timeout: float) -> None:
    """Poll the trial's record until it holds `epochs` epochs."""
    deadline = time.monotonic() + timeout
    while not any(len(read(p).epochs) >= epochs for p in storage.glob(f"*/{trial}_*/metrics.jsonl")):
        assert time.monotonic() < deadline and driver.poll() is None, f"{trial}: no {epochs} epochs recorded"
        time.sleep(0.1)


def freeze_and_kill(driver: subprocess.Popen, storage: Path) -> dict:
    """SIGSTOP the driver's whole session (the driver, the local Ray it started, the trials), read every trial's
    record, then SIGKILL the session, as a machine that loses power: what the records say is what they said at the
    kill, however fast the trials run. Returns {trial name: its record's History at the kill}."""
    os.killpg(driver.pid, signal.SIGSTOP)
    try:
        return {p.parent.name.rsplit("_", 1)[0]: read(p) for p in storage.glob("*/*/metrics.jsonl")}
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)


def test_killed_driver_run_again_continues_the_launch(tmp_path, sweep_env):
    """The same `run` again, on a machine whose state directory is empty (a retried Kubernetes job on a new head
    pod), continues the launch from its storage: one parent run, no trial re-run, every epoch once."""
    sweep = tmp_path / "killed.yaml"
    sweep.write_text(KILL_SWEEP)
    storage = tmp_path / "storage"
    command = [RESNET_SWEEP, "run", str(sweep), "--num-cpus", "2", "--storage", str(storage)]
    log = tmp_path / "first.log"
    with log.open("w") as out:
        driver = subprocess.Popen(command, cwd=tmp_path, env=sweep_env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        wait_for_text(log, "finished  resnet8-A-lr0.1-seed0", driver, timeout=180)
        _wait_for_epochs(storage, "resnet8-A-lr0.05-seed0", 3, driver, timeout=180)  # a few epochs in
        at_kill = freeze_and_kill(driver, storage)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == -signal.SIGKILL
    done_at_kill = {name for name, history in at_kill.items() if history.done}
    assert "resnet8-A-lr0.1-seed0" in done_at_kill

    c = client(tmp_path)
    before = resnet_sweep("status", "killed", "--json", cwd=tmp_path, env=sweep_env)
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["state"] == "interrupted"
    states = {t["name"]: t["state"] for t in json.loads(before.stdout)["trials"]}
    assert {name for name, s in states.items() if s in ("finished", "diverged")} == done_at_kill
    parent_id = json.loads(before.stdout)["parent_run_id"]
    first = {r.info.run_name: r for r in children(c, parent_id)}

    new_machine = {**sweep_env, "RESNET_SWEEPS_HOME": str(tmp_path / "new-home")}  # its state directory is empty
    again = subprocess.run(command, cwd=tmp_path, env=new_machine, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "continuing the unfinished launch of 'killed'" in again.stdout
    assert "1 diverged, 3 finished" in again.stdout

    runs = {r.info.run_name: r for r in children(c, parent_id)}
    diverged = runs.pop("resnet8-A-lr1e+06-seed0")
    assert diverged.data.tags["resnet_sweeps.state"] == "diverged" and diverged.info.status == "FAILED"
    assert diverged.data.tags["resnet_sweeps.starts"] == "1"  # a diverged trial is not retried
    assert 0 <= int(diverged.data.tags["resnet_sweeps.diverged_at_iteration"]) < 40
    assert len(children(c, parent_id)) == 4 and set(runs) == {"resnet8-A-lr0.1-seed0", "resnet8-A-lr0.05-seed0",
                                                              "resnet8-A-lr0.02-seed0"}
    parents = c.search_runs([c.get_run(parent_id).info.experiment_id],
                            filter_string="tags.`resnet_sweeps.role` = 'sweep'")
    assert [p.info.run_id for p in parents] == [parent_id] and parents[0].info.status == "FINISHED"
    for name, run in runs.items():
        assert run.data.tags["resnet_sweeps.state"] == "finished" and run.info.status == "FINISHED"
        steps = sorted(m.step for m in c.get_metric_history(run.info.run_id, "train_loss"))
        assert steps == list(range(2, 41, 2)), name  # every epoch exactly once: no step twice, none lost
    # one model per finished trial (the diverged one has none), whether it finished before the kill or after
    models = c.search_logged_models([c.get_run(parent_id).info.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(r.info.run_id for r in runs.values())
    assert {m.model_id for m in models} == {r.data.tags["resnet_sweeps.model.final"] for r in runs.values()}
    for name in done_at_kill - {"resnet8-A-lr1e+06-seed0"}:  # done before the kill: never run again
        assert runs[name].data.tags["resnet_sweeps.starts"] == "1", name
        assert runs[name].info.start_time == first[name].info.start_time, name
    for name, history in at_kill.items():
        if not history.done:  # under way at the kill: continued from its checkpoint, at least where its record was
            tags = runs[name].data.tags
            assert tags["resnet_sweeps.starts"] == "2", name
            assert history.last_iteration <= int(tags["resnet_sweeps.resumed_from_iteration"]) < 40, name
    assert any(not history.done for history in at_kill.values())  # the kill came mid-trial
