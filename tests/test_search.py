"""Search beyond grids, through the real CLI, a local Ray and a SQLite MLflow store: Optuna's TPE
proposes each trial through Ray Tune's search API, ASHA stops poor ones early, and a stopped trial is recorded as
`stopped` with its iteration in MLflow, `status` and the report; `resume` refuses a search with a clear message."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from orchestrator.specs.expansion import probe_trials
from orchestrator.specs.reading import load_sweep
from resnet_core.specio import SpecError
from tests.conftest import resnet_sweep, tiny_sweep

ROOT = Path(__file__).resolve().parents[1]

# 4 iterations per epoch: 6 epochs a trial
SEARCH = tiny_sweep("searched", batch=16, iterations=24, milestones=(20,), augment=False, eval_batch=32) + """\
search:
  kind: optuna
  num_samples: 4
  metric: test_error
  seed: 0
  space:
    optim.lr: {loguniform: [1e-4, 0.5]}
    optim.weight_decay: {loguniform: [1e-5, 1e-3]}
scheduler: {kind: asha, grace_period: 1, reduction_factor: 2}
max_concurrent: 1     # one after another: each later trial meets the rungs of the earlier ones
resources: {cpu: 1, gpu: 0}
report: [table6]
"""


def test_search_space_is_validated_at_its_ends(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SEARCH.replace("optim.weight_decay: {loguniform: [1e-5, 1e-3]}",
                                   "optim.batch_size: {choice: [16, 0]}"))
    with pytest.raises(SpecError, match=r"search.space.optim.batch_size: got 0"):
        load_sweep(path)
    path.write_text(SEARCH.replace("loguniform: [1e-4, 0.5]", "loguniform: [0, 0.5]"))
    with pytest.raises(SpecError, match=r"search.space.optim.lr.loguniform: got \[0, 0.5\], expected .* low > 0"):
        load_sweep(path)
    path.write_text(SEARCH + "grid: {model.depth: [8, 14]}\n")
    with pytest.raises(SpecError, match="no grid with optuna search"):
        load_sweep(path)
    path.write_text(SEARCH)
    sweep = load_sweep(path)
    assert [t.spec.optim.lr for t in probe_trials(sweep)] == [1e-4, 0.5]
    assert sweep.search.to_dict()["space"]["optim.lr"] == {"loguniform": [1e-4, 0.5]}


@pytest.mark.slow
def test_optuna_search_with_asha_records_stopped_trials(tmp_path, monkeypatch):
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
           "RESNET_SWEEPS_HOME": str(tmp_path / "home")}
    sweep = tmp_path / "searched.yaml"
    sweep.write_text(SEARCH)
    result = resnet_sweep("run", str(sweep), "--num-cpus", "2", cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = c.get_experiment_by_name("searched")
    runs = c.search_runs([experiment.experiment_id], filter_string="tags.`resnet_sweeps.role` = 'trial'",
                         order_by=["attributes.start_time ASC"])
    assert [r.info.run_name.rsplit("-", 1)[1] for r in runs] == ["s0", "s1", "s2", "s3"]
    lrs = [float(r.data.params["optim.lr"]) for r in runs]
    assert all(1e-4 <= lr <= 0.5 for lr in lrs) and len(set(lrs)) == 4  # sampled, not the base's 0.1
    assert all(1e-5 <= float(r.data.params["optim.weight_decay"]) <= 1e-3 for r in runs)
    stopped = [r for r in runs if r.data.tags["resnet_sweeps.state"] == "stopped"]
    assert stopped, [(r.info.run_name, r.data.tags["resnet_sweeps.state"]) for r in runs]
    for run in stopped:  # stopped early: fewer than 24 iterations logged, KILLED rather than FINISHED
        steps = [m.step for m in c.get_metric_history(run.info.run_id, "test_error")]
        assert run.info.status == "KILLED" and max(steps) < 24
        assert int(run.data.tags["resnet_sweeps.last_step"]) == max(steps)
    finished = [r for r in runs if r.data.tags["resnet_sweeps.state"] == "finished"]
    assert len(finished) + len(stopped) == 4 and all(r.info.status == "FINISHED" for r in finished)

    status = json.loads(resnet_sweep("status", "searched", "--json", cwd=tmp_path, env=env).stdout)
    rows = {t["name"]: t for t in status["trials"]}
    assert status["state"] == "finished" and set(rows) == {r.info.run_name for r in runs}
    for run in stopped:
        row = rows[run.info.run_name]
        assert row["state"] == "stopped" and row["iteration"] == int(run.data.tags["resnet_sweeps.last_step"])

    report = resnet_sweep("report", "searched", cwd=tmp_path, env=env)
    assert report.returncode == 0, report.stderr
    assert f"{len(stopped)} stopped" in (tmp_path / "reports" / "searched" / "report.md").read_text()

    from orchestrator.records import state

    monkeypatch.setenv("RESNET_SWEEPS_HOME", env["RESNET_SWEEPS_HOME"])
    state.update("searched", state="interrupted")  # as a driver killed mid-search leaves it
    refused = resnet_sweep("resume", "searched", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "searches with optuna: `resume` cannot continue a search" in refused.stderr


def test_ready_hpo_sweep_searches_lr_weight_decay_and_batch():
    sweep = load_sweep(ROOT / "sweeps" / "hpo_resnet20.yaml")
    assert sweep.search.kind == "optuna" and sweep.scheduler.kind == "asha"
    assert {d.key for d in sweep.search.space} == {"optim.lr", "optim.weight_decay", "optim.batch_size"}
    assert sweep.search.metric == sweep.scheduler.metric == "val_error" and sweep.base.data.val_split == 5000
    assert math.isclose(min(t.spec.optim.lr for t in probe_trials(sweep)), 0.01)
