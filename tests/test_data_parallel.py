"""Data-parallel trials: `resources: {workers: N}` trains one trial on N DDP processes through Ray Train's
TorchTrainer inside Tune; here N = 2 gloo workers on the CPU, with real Ray and a SQLite MLflow store, and one
worker SIGKILLed mid-trial (the trial resumes from its checkpoint and logs each epoch once)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from orchestrator.records import trial_record
from orchestrator.specs.expansion import expand
from orchestrator.specs.reading import sweep_from_dict
from orchestrator.specs.sweep import SweepSpec
from resnet_core.augment import fit_normalizer
from resnet_core.data import TensorSplit, TensorTrainBatches
from resnet_core.distributed import Shard
from resnet_core.specio import SpecError
from tests.conftest import RESNET_SWEEP

TINY = {"model": {"family": "cifar", "depth": 8},
        "data": {"dataset": "synthetic", "synthetic_train": 64, "synthetic_test": 32, "augment": False},
        "optim": {"lr": 0.05, "batch_size": 8, "milestones": [16, 20], "iterations": 24},  # 3 epochs of 8
        "runtime": {"device": "cpu", "eval_batch_size": 32}}


@pytest.mark.parametrize("augment", [False, True])
def test_shards_of_a_batch_are_exactly_the_one_process_batch(augment):
    images = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    split = TensorSplit(images, torch.arange(50))
    normalizer = fit_normalizer(images, "channel")

    def batches(shard: Shard) -> list:
        train = TensorTrainBatches(split, normalizer, 16, seed=3, augment=augment, shard=shard)
        return [train.gather(*batch) for batch in train.epoch(1)]

    whole = batches(Shard())
    parts = [batches(Shard(rank, 3)) for rank in range(3)]
    assert len(whole) == 3 and all(len(p) == 3 for p in parts)  # the same steps, all full (2 images sit out)
    assert [len(y) for _, y in parts[0]] == [5] * 3 and [len(y) for _, y in parts[2]] == [6] * 3
    for step, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([p[step][1] for p in parts]), y)
        assert torch.equal(torch.cat([p[step][0] for p in parts]), x)  # same crops and flips per image


def test_shard_bounds_cover_the_test_set_once():
    for world in (1, 2, 3, 8):
        bounds = [Shard(rank, world).bounds(1001) for rank in range(world)]
        assert bounds[0][0] == 0 and bounds[-1][1] == 1001
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def sweep(resources: dict, batch_size: int = 8) -> SweepSpec:
    base = {**TINY, "optim": {**TINY["optim"], "batch_size": batch_size}}
    return sweep_from_dict({"name": "ddp", "base": base, "resources": resources})


def test_workers_need_a_batch_they_can_split_evenly():
    assert len(expand(sweep({"workers": 2, "gpu_per_worker": 1}))) == 1
    with pytest.raises(SpecError) as err:
        expand(sweep({"workers": 3}))
    assert err.value.key_path == "base.optim.batch_size" and "multiple of resources.workers (3)" in str(err.value)
    for bad in ({"workers": 0}, {"workers": 1.5}, {"gpu_per_worker": -1}, {"gpu": 1, "gpu_per_worker": 0.5}):
        with pytest.raises(SpecError) as err:
            sweep(bad)
        assert err.value.key_path.startswith("resources."), err.value


EPOCHS = 6  # of 8 iterations: long enough to kill a worker after epoch 2


@pytest.mark.slow
def test_a_two_worker_trial_trains_under_ddp_survives_a_killed_worker_and_logs_once_per_epoch(tmp_path):
    """The whole path on CPU: 2 gloo workers train one trial; one of them is SIGKILLed after epoch 2, Ray Train
    fails the trial, Tune retries it, and the new workers continue from rank 0's last checkpoint."""
    from mlflow import MlflowClient

    from resnet_core.checkpoint import load_checkpoint

    base = {**TINY, "optim": {**TINY["optim"], "iterations": 8 * EPOCHS, "milestones": [40]}}
    spec = {"name": "ddp", "base": base, "seeds": [0], "resources": {"cpu": 1, "workers": 2}, "max_failures": 1}
    sweep_file = tmp_path / "ddp.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    home, storage, log = tmp_path / "home", tmp_path / "storage", tmp_path / "driver.log"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RESNET_SWEEPS_HOME"] = str(home)
    with log.open("w") as out:
        driver = subprocess.Popen([RESNET_SWEEP, "run", str(sweep_file), "--num-cpus", "2", "--storage",
                                   str(storage), "--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}"],
                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        history = None
        while history is None or len(trial_record.read(history).epochs) < 2:  # 2 epochs recorded
            assert time.monotonic() < deadline and driver.poll() is None, log.read_text()[-4000:]
            history = next(storage.glob("ddp-*/resnet8-*/metrics.jsonl"), None)
            time.sleep(0.05)
        workers = [pid for pid in ray_processes(home) if Path(f"/proc/{pid}/cmdline").read_bytes()
                   .startswith(b"ray::RayTrainWorker")]
        assert len(workers) == 2, workers
        os.kill(workers[-1], signal.SIGKILL)
        while trial_record.read(history).last_error is None:  # Tune saw the trial fail: rank 0 is stopped too
            assert time.monotonic() < deadline and driver.poll() is None, log.read_text()[-4000:]
            time.sleep(0.05)
        at_kill = int(load_checkpoint(history.parent / "latest")["iteration"])
        assert driver.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, log.read_text()[-4000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert "1 finished" in log.read_text()

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])
    (trial,) = [r for r in runs if r.data.tags.get("resnet_sweeps.role") == "trial"]
    tags = trial.data.tags
    assert tags["resnet_sweeps.state"] == "finished" and tags["resnet_sweeps.workers"] == "2"
    assert tags["resnet_sweeps.starts"] == "2" and int(tags["resnet_sweeps.resumed_from_iteration"]) == at_kill >= 16
    for metric in ("train_loss", "test_error"):
        steps = [m.step for m in client.get_metric_history(trial.info.run_id, metric)]
        assert sorted(steps) == list(range(8, 8 * EPOCHS + 1, 8)), steps  # every epoch once
    artifacts = {a.path for a in client.list_artifacts(trial.info.run_id)}
    assert "layer_responses.json" in artifacts  # rank 0 measured Figure 7

    trial_dir = history.parent
    assert (trial_dir / "latest" / "checkpoint.pt").is_file()  # rank 0's, what the retry started from
    assert not list((trial_dir / "train").glob("checkpoint_*"))  # no copies: the storage is a file system


def ray_processes(home: Path) -> dict[int, Path]:
    """pid -> cwd of every `ray::` process whose environment names this test's RESNET_SWEEPS_HOME."""
    marker = f"RESNET_SWEEPS_HOME={home}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"ray::"):
                continue
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            found[int(entry.name)] = Path(os.readlink(entry / "cwd"))
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found
