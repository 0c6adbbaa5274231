"""Population-based training through the real CLI, a local Ray and a SQLite MLflow store: a population of 4 tiny
trials with a round every epoch. Exploits happen and are recorded (in the trial's record, as `exploits.json` on its
MLflow run, its hyperparameters as curves while its params keep the values it started with), an exploiting trial
starts from exactly the weights of the checkpoint it copied, with the new values, and the report shows the schedule.
A PBT sweep file is checked like any other: bad settings exit 2 naming the key."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from orchestrator.records.trial_record import read
from orchestrator.specs.reading import load_sweep
from resnet_core.specio import SpecError
from tests.conftest import resnet_sweep, tiny_sweep

ROOT = Path(__file__).resolve().parents[1]

# 2 iterations per epoch, 3 epochs: rounds after epochs 1 and 2 (none after the last)
PBT = tiny_sweep("pbt", train=32, test=32, batch=16, iterations=6, milestones=(), augment=False,
                 eval_batch=32) + """\
grid:
  optim.lr: [0.4, 0.1, 0.02, 0.005]
scheduler:
  kind: pbt
  metric: train_loss
  perturbation_interval: 1
  quantile_fraction: 0.5   # half the population exploits the other half every round
  mutations:
    optim.lr: {loguniform: [0.001, 0.5]}
    optim.weight_decay: {loguniform: [1e-5, 1e-3]}
resources: {cpu: 0.5, gpu: 0}   # the whole population at once on 2 CPUs: a round waits for no trial to start
"""


def _digest(checkpoint_dir: str) -> str:
    """sha256 over the model tensors of a checkpoint, in name order."""
    import torch

    model = torch.load(Path(checkpoint_dir) / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    digest = hashlib.sha256()
    for name in sorted(model):
        digest.update(name.encode())
        digest.update(model[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_pbt_exploits_are_recorded_and_continue_the_copied_weights(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
           "RESNET_SWEEPS_HOME": str(tmp_path / "home")}
    (tmp_path / "pbt.yaml").write_text(PBT)
    result = resnet_sweep("run", str(tmp_path / "pbt.yaml"), "--num-cpus", "2", cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 finished" in result.stdout

    records = {path.parent.name.rsplit("_", 1)[0]: read(path)
               for path in tmp_path.glob("home/ray_results/pbt-*/*/metrics.jsonl")}
    assert len(records) == 4
    exploits = [(name, e) for name, history in records.items() for e in history.exploits]
    assert {e["epoch"] for _, e in exploits} == {1, 2}, exploits  # two rounds, each with exploits
    for name, exploit in exploits:
        history = records[name]
        start = next(s for s in history.starts if s.get("exploit") == exploit["n"])
        # It continued the other trial's checkpoint of the same round: its weights, its iteration.
        assert start["exploited_from"] == exploit["from_trial"] != name
        assert start["weights"] == _digest(exploit["checkpoint"])
        assert start["resumed_from_iteration"] == exploit["at_iteration"] == 2 * exploit["epoch"]
        # ... with the explored values, which its next epoch trained with
        after = next(e for e in history.epochs if e["iteration"] == exploit["at_iteration"] + 2)
        assert set(exploit["new"]) == {"optim.lr", "optim.weight_decay"}
        assert after["hparam.optim.lr"] == pytest.approx(exploit["new"]["optim.lr"])
        assert after["lr"] == pytest.approx(exploit["new"]["optim.lr"])  # no milestones: PBT's lr is the lr
        assert after["hparam.optim.weight_decay"] == pytest.approx(exploit["new"]["optim.weight_decay"])

    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = c.get_experiment_by_name("pbt")
    runs = c.search_runs([experiment.experiment_id], filter_string="tags.`resnet_sweeps.role` = 'trial'")
    assert len(runs) == 4
    for run in runs:
        history = records[run.info.run_name]
        assert run.info.status == "FINISHED"
        lr_curve = c.get_metric_history(run.info.run_id, "hparam.optim.lr")
        assert sorted(m.step for m in lr_curve) == [2, 4, 6]  # one value per epoch, each epoch once
        assert sorted(m.step for m in c.get_metric_history(run.info.run_id, "train_loss")) == [2, 4, 6]
        assert run.data.params["optim.lr"] == run.info.run_name.split("-lr")[1].split("-")[0]  # as it started
        if history.exploits:
            assert run.data.tags["resnet_sweeps.exploits"] == str(len(history.exploits))
            path = c.download_artifacts(run.info.run_id, "exploits.json", str(tmp_path))
            lineage = json.loads(Path(path).read_text())
            assert [(e["epoch"], e["from_trial"], e["new"]) for e in lineage] == [
                (e["epoch"], e["from_trial"], e["new"]) for e in history.exploits]
            assert all(set(e["old"]) == {"optim.lr", "optim.weight_decay"} for e in lineage)

    # The report (as `resnet-sweep report` builds it, here in this process: test_search runs the command)
    from orchestrator.report.build import build_report
    from orchestrator.report.paper import paper_values
    from orchestrator.report.rows import read_sweep
    from orchestrator.report.search_rows import read_search

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    sweep = read_sweep("pbt", uri)
    report = build_report(sweep, tmp_path / "report", paper_values(), (), read_search(uri, sweep))
    assert "## Search" in report.markdown and "Population-based training over optim.lr, optim.weight_decay" \
        in report.markdown
    best = min(runs, key=lambda r: r.data.metrics["train_loss"])
    assert f"- Best configuration: {best.info.run_name} " in report.markdown
    schedule = [f"{m.value:.3g} (at it {m.step})" for m in sorted(
        c.get_metric_history(best.info.run_id, "hparam.optim.lr"), key=lambda m: m.step)]
    changes = [s for i, s in enumerate(schedule) if i == 0 or s.split()[0] != schedule[i - 1].split()[0]]
    assert "  - optim.lr: " + " -> ".join(changes) in report.markdown  # the schedule it ended up with
    assert (tmp_path / "report" / "search.png").stat().st_size > 0


@pytest.mark.parametrize("change, key, expected", [
    ("    optim.weight_decay: {loguniform: [1e-5, 1e-3]}\n", "scheduler.mutations.model.depth",
     "one of optim.lr, optim.momentum, optim.weight_decay"),
    ("  optim.lr: [0.4, 0.1, 0.02, 0.005]\n", "grid.model.depth", "no model key in the grid with pbt"),
    ("milestones: []", "base.optim.milestones", r"\[\] with pbt mutating optim.lr"),
    ("resources: {cpu: 0.5, gpu: 0}", "seeds", "one seed with pbt"),
])
def test_pbt_settings_that_cannot_work_are_refused_naming_the_key(tmp_path, change, key, expected):
    replacement = {"scheduler.mutations.model.depth": "    model.depth: {choice: [8, 14]}\n",
                   "grid.model.depth": "  model.depth: [8, 14]\n", "base.optim.milestones": "milestones: [4]",
                   "seeds": "resources: {cpu: 0.5, gpu: 0}\nseeds: [0, 1]\n"}[key]
    path = tmp_path / "pbt.yaml"
    path.write_text(PBT.replace(change, replacement))
    with pytest.raises(SpecError, match=rf"pbt.yaml.*{key}: got .* expected {expected}"):
        load_sweep(path)


def test_ready_pbt_sweep_trains_resnet20_with_lr_and_weight_decay_mutated():
    sweep = load_sweep(ROOT / "sweeps" / "pbt_resnet20.yaml")
    assert sweep.scheduler.kind == "pbt" and sweep.scheduler.metric == "val_error"
    assert {d.key for d in sweep.scheduler.mutations} == {"optim.lr", "optim.weight_decay"}
    assert sweep.base.optim.milestones == () and sweep.base.data.val_split == 5000 and sweep.base.model.depth == 20
