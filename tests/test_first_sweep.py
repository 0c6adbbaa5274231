"""A first real sweep on a new machine: missing data is refused before anything starts, every error
crosses Ray's process boundary intact, a trial whose settings cannot work fails once and is not retried, and
Ctrl-C stops the sweep cleanly so that `resume` finishes it."""
from __future__ import annotations

import errno
import importlib
import inspect
import json
import os
import pickle
import pkgutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.records import trial_record
from tests.conftest import RESNET_SWEEP, resnet_sweep

ROOT = Path(__file__).resolve().parents[1]


def _project_exceptions() -> set[type]:
    found = set()
    for package in ("resnet_core", "orchestrator"):
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                    found.add(obj)
    return found


def _examples() -> dict[type, BaseException]:
    from orchestrator.errors import CliError
    from orchestrator.tracking.models import ExportError
    from orchestrator.tracking.server import TrackingUnreachable
    from resnet_core.checkpoint import CheckpointWriteError
    from resnet_core.data import DatasetError
    from resnet_core.failures import DivergedError, OutOfMemoryError
    from resnet_core.spec import TrialSpec
    from resnet_core.specio import SpecError

    examples = [SpecError("optim.lr", "fast", "a number", "sweeps/x.yaml"),
                DatasetError("/data/cifar10", "looked in /data/cifar10/cifar-10-batches-py: missing test_batch",
                             "a directory holding cifar-10-batches-py/"),
                DivergedError(17),
                OutOfMemoryError(TrialSpec.from_dict({}), 2, "the GPU", RuntimeError("CUDA out of memory")),
                CheckpointWriteError(errno.ENOSPC, "No space left on device", "/ckpt/checkpoint.pt"),
                CliError("no sweep named 'x'"), TrackingUnreachable("cannot reach the MLflow tracking server"),
                ExportError("resnet8-A-seed0: torch.export failed: a data-dependent shape")]
    return {type(e): e for e in examples}


def test_every_exception_of_the_project_survives_pickling():
    """Ray sends a trial's exception to the driver pickled: same type, same message, same fields after."""
    examples = _examples()
    assert _project_exceptions() == set(examples), "add an example of each new exception class here"
    for cls, err in examples.items():
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is cls and str(again) == str(err) and again.args == err.args
        assert vars(again) == vars(err)


@pytest.mark.parametrize("where, sets", [
    ("base.data.root", ["data.root={empty}"]),
    ("grid.data.root", ["grid.data.root=[{empty}]"]),
])
def test_missing_data_exits_2_before_anything_starts(tmp_path, where, sets):
    empty = tmp_path / "no-cifar-here"
    empty.mkdir()
    home = tmp_path / "home"
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RESNET_SWEEPS_HOME": str(home)}
    sweep = ROOT / "sweeps" / "table6_cifar10.yaml"
    args = [a for s in sets for a in ("--set", s.format(empty=empty))]
    started = time.monotonic()
    result = resnet_sweep("run", str(sweep), *args, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"resnet-sweep run: error: {sweep}: {where}: got '{empty}'" in result.stderr
    assert f"looked in {empty}/cifar-10-batches-py: missing data_batch_1" in result.stderr
    assert "data.download: true" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""  # one line
    assert not (tmp_path / "mlruns.db").exists() and not home.exists()  # no MLflow run, no state record
    print(f"refused in {time.monotonic() - started:.1f} s")


def test_imagenet_folders_are_checked_without_decoding(tmp_path):
    from resnet_core.data import DatasetError
    from resnet_core.data_check import ensure_dataset
    from resnet_core.spec import DataSpec

    for split, classes in (("train", ["n01", "n02"]), ("val", ["n01"])):
        for name in classes:
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "a.JPEG").write_bytes(b"\xff\xd8")
    spec = DataSpec(dataset="imagenet", root=str(tmp_path))
    with pytest.raises(DatasetError, match="train/ and val/ hold different class folders"):
        ensure_dataset(spec)
    (tmp_path / "val" / "n02").mkdir()
    (tmp_path / "val" / "n02" / "b.JPEG").write_bytes(b"\xff\xd8")
    ensure_dataset(spec)


# The first trial holds out more images than there are: a spec error that only its data reveals, inside the
# worker. The second runs long enough (30 epochs of 2 iterations) to be interrupted mid-way.
FIRST_SWEEP = """
name: first
base:
  model: {family: cifar, depth: 8}
  data: {dataset: synthetic, synthetic_train: 16, synthetic_test: 16, augment: false}
  optim: {batch_size: 8, iterations: 60, milestones: [45]}
  runtime: {device: cpu, eval_batch_size: 16}
grid:
  data.dataset: [cifar10, synthetic]
overrides:  # 20 training images in the files: a hold-out of 100 is known to be too many only once the trial reads them
  - {when: {data.dataset: cifar10}, set: {data.root: CIFAR_ROOT, data.val_split: 100}}
max_concurrent: 1
max_failures: 2
resources: {cpu: 1, gpu: 0}
"""


@pytest.mark.slow
def test_failed_trial_is_not_retried_and_ctrl_c_then_resume_finishes(tmp_path):
    from tests.test_data import write_cifar10  # here, not at the top: pytest would collect its tests twice

    home = tmp_path / "home"
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RESNET_SWEEPS_HOME": str(home),
           "PYTHONUNBUFFERED": "1"}
    write_cifar10(tmp_path / "cifar")  # a tiny cifar-10-batches-py: 4 images per batch file
    sweep = tmp_path / "first.yaml"
    sweep.write_text(FIRST_SWEEP.replace("CIFAR_ROOT", str(tmp_path / "cifar")))
    driver = subprocess.Popen([RESNET_SWEEP, "run", str(sweep), "--num-cpus", "2"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # Ctrl-C once the second trial has recorded two epochs of its own (its record, metrics.jsonl), mid-way.
        deadline = time.monotonic() + 180
        while not any(len(trial_record.read(p).epochs) >= 2 for p in home.glob("ray_results/first-*/*/metrics.jsonl")):
            assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
            time.sleep(0.1)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, out + err
    assert "interrupted: `resnet-sweep resume first` continues where it stopped" in out
    assert "Traceback" not in out + err and "Error" not in err, out + err

    status = json.loads(resnet_sweep("status", "first", "--json", cwd=tmp_path, env=env).stdout)
    assert status["state"] == "interrupted"
    failed, other = status["trials"]
    assert failed["state"] == "failed" and other["state"] == "interrupted"
    assert failed["error"].startswith("SpecError: data.val_split: got 100, expected fewer than the 20")

    resumed = resnet_sweep("resume", "first", "--num-cpus", "2", cwd=tmp_path, env=env, timeout=240)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr  # one trial failed: the sweep did not succeed
    assert "1 failed, 1 finished" in resumed.stdout
    assert f"failed: {failed['name']}: SpecError: data.val_split: got 100" in resumed.stdout

    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    runs = {r.data.tags["resnet_sweeps.trial_id"]: r for r in c.search_runs(
        [c.get_experiment_by_name("first").experiment_id], filter_string="tags.`resnet_sweeps.role` = 'trial'")}
    bad, good = runs[failed["id"]], runs[other["id"]]
    assert bad.data.tags["resnet_sweeps.state"] == "failed" and bad.info.status == "FAILED"
    assert bad.data.tags["resnet_sweeps.starts"] == "1"  # not retried, though max_failures allows 2
    assert "data.val_split: got 100" in bad.data.tags["resnet_sweeps.error"]
    assert good.data.tags["resnet_sweeps.state"] == "finished"
    steps = sorted(m.step for m in c.get_metric_history(good.info.run_id, "train_loss"))
    assert steps == list(range(2, 61, 2))  # every epoch exactly once across the interrupt

    shown = resnet_sweep("status", "first", cwd=tmp_path, env=env)
    assert f"failed: {failed['name']}: SpecError: data.val_split: got 100" in shown.stdout


def test_status_progress_and_eta_from_trial_rows():
    from datetime import datetime, timedelta, timezone

    from orchestrator.records.trial_view import sweep_progress

    created = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
    rows = [{"state": "finished", "iteration": 100, "iterations": 100},
            {"state": "failed", "iteration": 0, "iterations": 100},  # will train no further: counts whole
            {"state": "running", "iteration": 50, "iterations": 100},
            {"state": "pending", "iteration": 0, "iterations": 100}]
    later = created + timedelta(seconds=250)
    progress = sweep_progress(rows, created.isoformat(), "running", now=later)
    assert progress["iterations_done"] == 250 and progress["iterations_total"] == 400
    assert progress["eta_s"] == pytest.approx(150)  # 150 iterations left at 1 per second
    assert sweep_progress(rows, created.isoformat(), "interrupted", now=later)["eta_s"] is None
