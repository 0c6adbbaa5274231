"""Search beyond grids, through the real CLI, a local Ray and a SQLite MLflow store: Optuna's TPE
proposes each trial through Ray Tune's search API, ASHA stops poor ones early, and a stopped trial is recorded as
`stopped` with its iteration in MLflow, `status` and the report. A search whose driver is SIGKILLed midway is
continued by `resume`: trials done stay done, the others go on from their checkpoints, Optuna's study keeps the
results from before the kill, and the search ends with `num_samples` trials, each epoch once in MLflow."""
from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.specs.expansion import probe_trials
from orchestrator.specs.reading import load_sweep
from resnet_core.specio import SpecError
from orchestrator.records.trial_record import read, record_path
from orchestrator.report.search_figure import search_figure
from orchestrator.report.search_rows import Search, SearchTrial
from orchestrator.report.search_section import asha_savings, best_trial, schedule_line, search_lines
from orchestrator.running.search import SEARCH_STATE
from tests.conftest import RESNET_SWEEP, resnet_sweep, tiny_sweep

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


def _saved_search(home: Path) -> tuple[Path, dict]:
    """The experiment directory of the search and its searcher's saved state ({} before the first save)."""
    found = list(home.glob("ray_results/searched-*"))
    if not found or not (found[0] / SEARCH_STATE).is_file():
        return (found[0] if found else home), {}
    return found[0], pickle.loads((found[0] / SEARCH_STATE).read_bytes())


def _kill_midway(tmp_path: Path, env: dict) -> tuple[Path, dict]:
    """`run` the search, SIGKILL its driver (and the local Ray of its session) once a second trial has an epoch
    in its record; the experiment directory and the trials' records ({trial id: History}) at the kill."""
    sweep = tmp_path / "searched.yaml"
    sweep.write_text(SEARCH)
    driver = subprocess.Popen([RESNET_SWEEP, "run", str(sweep), "--num-cpus", "2"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while True:
            root, saved = _saved_search(tmp_path / "home")
            trials = list(saved.get("trials", {}).values())
            if len(trials) >= 2 and read(record_path(root, trials[1])).epochs:
                break
            assert time.monotonic() < deadline and driver.poll() is None, "no second trial's epoch to kill at"
            time.sleep(0.1)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    _, saved = _saved_search(tmp_path / "home")
    return root, {info["id"]: read(record_path(root, info)) for info in saved["trials"].values()}


@pytest.mark.slow
def test_optuna_search_with_asha_records_stopped_trials_and_resumes_after_a_kill(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
           "RESNET_SWEEPS_HOME": str(tmp_path / "home")}
    root, at_kill = _kill_midway(tmp_path, env)
    assert len(at_kill) >= 2 and any(h.done for h in at_kill.values())
    result = resnet_sweep("resume", "searched", "--num-cpus", "2", cwd=tmp_path, env=env, timeout=300)
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
    ids = [r.data.tags["resnet_sweeps.trial_id"] for r in runs]
    assert len(set(ids)) == 4 and set(at_kill) <= set(ids)  # num_samples in all, the earlier ones among them
    for run in runs:  # every epoch once, whichever launch trained it
        steps = [m.step for m in c.get_metric_history(run.info.run_id, "train_loss")]
        assert len(steps) == len(set(steps)), run.info.run_name
        before = at_kill.get(run.data.tags["resnet_sweeps.trial_id"])
        if before is not None and before.done:  # ended before the kill: not trained again
            assert run.data.tags["resnet_sweeps.starts"] == "1"
        elif before is not None and before.epochs:  # went on from its checkpoint
            assert before.last_iteration <= int(run.data.tags["resnet_sweeps.resumed_from_iteration"])
    # The resumed study holds every trial's result, those from before the kill as the records had them.
    study = pickle.loads(pickle.loads((root / SEARCH_STATE).read_bytes())["optuna"])["_ot_study"]
    told = {float(f"{t.params['optim.lr']:.3g}"): t for t in study.trials}  # trial names show 3 digits
    assert len(study.trials) == 4 and all(t.state.is_finished() for t in study.trials)
    for run in runs:
        before = at_kill.get(run.data.tags["resnet_sweeps.trial_id"])
        if before is not None and before.done:
            trial = told[float(run.data.params["optim.lr"])]
            assert trial.value == pytest.approx(before.epochs[-1]["test_error"])
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
    text = (tmp_path / "reports" / "searched" / "report.md").read_text()
    assert f"{len(stopped)} stopped" in text
    assert "## Search" in text and "Optuna (TPE) search over optim.lr, optim.weight_decay: 4 trials" in text
    assert f"- ASHA stopped {len(stopped)} of 4 trials" in text and "- Best configuration: " in text
    assert (tmp_path / "reports" / "searched" / "search.png").stat().st_size > 0


def _trial(name: str, state: str, lr: float, error: float | None, iteration: int, **more) -> SearchTrial:
    return SearchTrial(name, state, (("optim.lr", lr),), error, error, error, iteration, 24, **more)


def test_search_section_names_the_best_configuration_and_what_asha_saved(tmp_path):
    trials = (_trial("a-s0", "finished", 0.1, 0.30, 24), _trial("b-s1", "stopped", 0.3, 0.50, 4),
              _trial("c-s2", "finished", 0.01, 0.20, 24), _trial("d-s3", "stopped", 1e-3, 0.90, 8),
              _trial("e-s4", "failed", 0.2, None, 0))
    search = Search("optuna", "asha", "val_error", "min", ("optim.lr",), ("optim.lr",), trials)
    assert best_trial(search).run_name == "c-s2"
    assert asha_savings(search) == (2, 24 + 4 + 24 + 8, 5 * 24)
    lines = "\n".join(search_lines(search))
    assert "- Best configuration: c-s2 (optim.lr=0.01): val_error 20.00%, validation error 20.00%, test error " \
           "20.00%." in lines
    assert "- ASHA stopped 2 of 5 trials: 60 of 120 iterations trained, 60 (50%) saved" in lines
    assert lines.index("| c-s2 |") < lines.index("| a-s0 |") < lines.index("| e-s4 |")  # best first
    # PBT: the best trial's values where they changed, over its iterations
    pbt = _trial("p", "finished", 0.1, 0.2, 24, schedule=(("optim.lr", ((8, 0.1), (16, 0.1), (24, 0.08))),),
                 exploits=1)
    assert schedule_line(pbt) == ["optim.lr: 0.1 (at it 8) -> 0.08 (at it 24)"]
    figure = search_figure(Search("pbt", "pbt", "val_error", "min", ("optim.lr",), ("optim.lr",), (pbt,)),
                           tmp_path / "search.png")
    assert figure.stat().st_size > 0


def test_ready_hpo_sweep_searches_lr_weight_decay_and_batch():
    sweep = load_sweep(ROOT / "sweeps" / "hpo_resnet20.yaml")
    assert sweep.search.kind == "optuna" and sweep.scheduler.kind == "asha"
    assert {d.key for d in sweep.search.space} == {"optim.lr", "optim.weight_decay", "optim.batch_size"}
    assert sweep.search.metric == sweep.scheduler.metric == "val_error" and sweep.base.data.val_split == 5000
    assert math.isclose(min(t.spec.optim.lr for t in probe_trials(sweep)), 0.01)
