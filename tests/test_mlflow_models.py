"""What MLflow keeps beyond the curves, without Ray: a trial's models (final and best) synced from its record and
checkpoints into a real SQLite store, once however often the sync runs; the best checkpoint the trainable keeps;
`tracking.models: best` refused without a validation split; system samples; the progress summary line."""
from __future__ import annotations

import json
import os
import time

import pytest

from orchestrator.records import trial_record
from orchestrator.running.best_checkpoint import best_so_far, keep_if_best
from orchestrator.running.progress import summary_line
from orchestrator.running.system_metrics import Sampler
from tests.conftest import resnet_sweep, tiny_sweep


def checkpoint_at(directory, spec, iteration: int, seed: int = 0) -> None:
    """A checkpoint of `spec`'s network as training writes it (weights drawn with `seed`), at `iteration`."""
    import torch

    from resnet_core.checkpoint import save_checkpoint
    from resnet_core.model import build_model
    from resnet_core.resume import Progress, checkpoint_state

    torch.manual_seed(seed)
    net = build_model(spec.model, spec.data.classes)
    save_checkpoint(directory, checkpoint_state(spec, net, torch.optim.SGD(net.parameters(), lr=0.1),
                                                Progress(iteration=iteration)))


def test_best_checkpoint_is_the_lowest_validation_error_so_far(tmp_path):
    latest = tmp_path / "trial" / "latest"
    latest.mkdir(parents=True)
    kept = []
    for iteration, val in ((4, 0.5), (8, 0.3), (12, 0.4)):
        (latest / "next.pt").write_bytes(str(iteration).encode())
        os.replace(latest / "next.pt", latest / "checkpoint.pt")  # as train() writes each epoch's: a new file
        kept.append(keep_if_best(latest, {"iteration": iteration, "val_error": val}))
    assert kept == [True, True, False] and best_so_far(latest) == 0.3
    assert (tmp_path / "trial" / "best" / "checkpoint.pt").read_bytes() == b"8"
    assert not keep_if_best(latest, {"iteration": 16, "test_error": 0.1})  # no validation split: nothing kept


@pytest.mark.slow  # a SQLite store's migrations and two torch.export runs: ~10 s
def test_final_and_best_models_logged_once_and_loadable_at_any_batch(tmp_path):
    import mlflow
    import torch
    from mlflow import MlflowClient

    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import sweep_from_dict
    from orchestrator.tracking.writer import Tracker
    from resnet_core import yaml12

    text = tiny_sweep("models", iterations=12, milestones=(8,)) + "tracking: {models: best}\n"
    text = text.replace("synthetic_test: 32", "synthetic_test: 32, val_split: 16")
    sweep = sweep_from_dict(yaml12.load(text))
    info = expand(sweep)[0].to_dict()
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    parent = Tracker(uri).start_sweep("models", sweep.name, sweep.to_dict(), 1, tags={})
    root = tmp_path / "experiment"
    record = trial_record.record_path(root, info)
    vals = {4: 0.5, 8: 0.25, 12: 0.375}
    trial_record.append(record, [trial_record.event("start", resumed_from_iteration=0)])
    trial_record.append(record, [trial_record.event("epoch", iteration=i, train_error=0.5, test_error=v + 0.1,
                                                    val_error=v, **({"done": True} if i == 12 else {}))
                                 for i, v in vals.items()])
    spec = expand(sweep)[0].spec
    checkpoint_at(record.parent / "best", spec, 8, seed=1)  # as the trainable kept it at the lowest val_error
    checkpoint_at(record.parent / "latest", spec, 12, seed=2)
    for _ in range(2):  # a second sync (a resumed driver: a fresh Tracker) logs nothing again
        run = Tracker(uri).sync_trial(parent, root, info)
    client = MlflowClient(uri)
    experiment_id = client.get_run(parent).info.experiment_id
    found = {m.name: m for m in client.search_logged_models([experiment_id])}
    assert set(found) == {f"{info['name']}-final", f"{info['name']}-best"}
    final, best = found[f"{info['name']}-final"], found[f"{info['name']}-best"]
    assert run.tags["resnet_sweeps.model.final"] == final.model_id and best.params["iteration"] == "8"
    assert {m.key: m.value for m in best.metrics}["val_error"] == 0.25  # the metrics of its own epoch
    assert {m.key: m.value for m in final.metrics}["val_error"] == 0.375
    inputs = {i.tags[0].value: json.loads(i.dataset.profile)["images"] for i in client.get_run(run.run_id).inputs
              .dataset_inputs}
    assert inputs == {"training": 48, "validation": 16, "test": 32}
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pytorch.load_model(f"models:/{best.model_id}")
    from resnet_core.model import build_model

    torch.manual_seed(1)
    net = build_model(spec.model, spec.data.classes).eval()
    images = torch.randn(7, 3, 32, 32)  # neither the export's batch of 2 nor 1
    assert torch.allclose(loaded(images), net(images), atol=1e-5)


def test_best_models_need_a_validation_split(tmp_path):
    sweep = tmp_path / "best.yaml"
    sweep.write_text(tiny_sweep("best") + "tracking: {models: best}\n")
    planned = resnet_sweep("plan", str(sweep))
    assert planned.returncode == 2
    assert "tracking.models: got 'best', expected final or none" in planned.stderr
    assert "data.val_split" in planned.stderr


def test_a_sample_holds_the_process_cpu_and_memory():
    sampler = Sampler(interval_s=0.05).start()
    deadline, samples = time.monotonic() + 10, []
    while time.monotonic() < deadline and len(samples) < 2:  # take() adds one: more come from the thread
        sum(i * i for i in range(10_000))
        samples = sampler.take()
    sampler.stop()
    assert len(samples) >= 2 and all(s["process_memory_usage_megabytes"] > 10 for s in samples)
    assert all(s["process_cpu_utilization_percentage"] >= 0 for s in samples)
    assert [s["time_ms"] for s in samples] == sorted(s["time_ms"] for s in samples)


def test_the_progress_summary_counts_iterations_and_estimates_the_rest():
    rows = [{"state": "finished", "iteration": 100, "iterations": 100},
            {"state": "running", "iteration": 50, "iterations": 100},
            {"state": "pending", "iteration": 0, "iterations": 200}]
    assert summary_line(rows, 60.0) == ("progress: 1 finished, 1 pending, 1 running of 3 trials; 150/400 iterations "
                                        "(38%); ETA 1m40s")


def test_a_data_sets_digest_follows_its_files_and_its_sizes_the_subset(tmp_path):
    from orchestrator.tracking.datasets import files_digest, split_sizes

    for split, count in (("train", 3), ("val", 2)):  # ImageNet's layout: train/ and val/ of class folders
        (tmp_path / split / "n01").mkdir(parents=True)
        for i in range(count):
            (tmp_path / split / "n01" / f"{i}.JPEG").write_bytes(bytes([i]) * 10)
    digest, counted = files_digest(str(tmp_path))
    assert counted == {"train": 3, "test": 2} and files_digest(str(tmp_path))[0] == digest
    (tmp_path / "val" / "n01" / "1.JPEG").write_bytes(b"another image")
    assert files_digest(str(tmp_path))[0] != digest and files_digest(str(tmp_path / "absent")) == ("", {})
    assert split_sizes({"dataset": "imagenet", "val_split": 1}, counted) == {"train": 2, "test": 2, "val": 1}
    assert split_sizes({"dataset": "cifar10", "train_limit": 1000, "test_limit": None}, {}) == {"train": 1000,
                                                                                                "test": 10_000}
    assert split_sizes({"dataset": "imagenet"}, {}) == {"train": None, "test": None}  # folders not seen here


@pytest.mark.slow  # a SQLite store's migrations and one torch.export: ~6 s
def test_a_model_left_pending_by_a_killed_driver_is_completed_once(tmp_path):
    """The driver died while logging a trial's model: the model exists PENDING, already linked to the run as its
    output with its epoch's metrics. The next driver's sync makes it READY, with no second model or link."""
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric

    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import sweep_from_dict
    from orchestrator.tracking.writer import Tracker
    from resnet_core import yaml12

    sweep = sweep_from_dict(yaml12.load(tiny_sweep("pending", iterations=8, milestones=(6,))))
    trial = expand(sweep)[0]
    info, uri, root = trial.to_dict(), f"sqlite:///{tmp_path / 'mlruns.db'}", tmp_path / "experiment"
    parent = Tracker(uri).start_sweep("pending", sweep.name, sweep.to_dict(), 1, tags={})
    record = trial_record.record_path(root, info)
    trial_record.append(record, [trial_record.event("start", resumed_from_iteration=0),
                                 trial_record.event("epoch", iteration=8, train_error=0.5, test_error=0.25)])
    run = Tracker(uri).sync_trial(parent, root, info)  # the run with its epoch, the trial not yet finished
    client = MlflowClient(uri)
    experiment_id = client.get_run(parent).info.experiment_id
    name = f"{info['name']}-final"
    pending = client.create_logged_model(experiment_id, name=name, source_run_id=run.run_id)
    client.log_outputs(run.run_id, [LoggedModelOutput(pending.model_id, 8)])
    client.log_batch(run.run_id, metrics=[Metric("test_error", 0.25, 1, 8, model_id=pending.model_id)])
    checkpoint_at(record.parent / "latest", trial.spec, 8)
    trial_record.append(record, [trial_record.event("epoch", iteration=8, train_error=0.5, test_error=0.25,
                                                    done=True)])
    Tracker(uri).sync_trial(parent, root, info)
    models = client.search_logged_models([experiment_id])
    assert [(m.model_id, m.status) for m in models] == [(pending.model_id, LoggedModelStatus.READY)]
    assert [o.model_id for o in client.get_run(run.run_id).outputs.model_outputs] == [pending.model_id]
