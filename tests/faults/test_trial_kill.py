"""A trial process SIGKILLed mid-epoch: Tune retries it from its last checkpoint and it finishes; its
MLflow child run records the second start and the checkpoint it resumed from, and its metric history has every
epoch exactly once.

Real processes throughout: the installed `resnet-sweep run` drives a local Ray of 2 CPUs with two tiny trials on
synthetic data; the test watches the victim's record, metrics.jsonl (the trainable appends one line per epoch,
just before it reports) and, once an epoch has been reported and the next one is under way, SIGKILLs the Ray worker
process running that trial. The process is found by what identifies it and nothing else on a shared machine: a
`ray::` process title, our RESNET_SWEEPS_HOME in its environment, and Tune's per-trial working directory as its cwd.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RESNET_SWEEP
from orchestrator.records import trial_record
from resnet_core.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

# 384 images in batches of 32: 12 iterations per epoch (about a second on one busy CPU core), 6 epochs.
PER_EPOCH, EPOCHS = 12, 6


def kill_sweep(name: str) -> str:
    """Two tiny trials with one retry each, the sweep both kill tests (trial, node) interrupt."""
    return f"""
name: {name}
base:
  model: {{family: cifar, depth: 8}}
  data: {{dataset: synthetic, synthetic_train: 384, synthetic_test: 32, augment: false}}
  optim: {{batch_size: 32, iterations: {PER_EPOCH * EPOCHS}, milestones: [{PER_EPOCH * 4}]}}
  runtime: {{device: cpu, eval_batch_size: 32}}
grid:
  optim.lr: [0.1, 0.05]
resources: {{cpu: 1, gpu: 0}}
max_failures: 1          # one retry: the kill uses it
"""


SWEEP = kill_sweep("trialkill")
VICTIM, OTHER = "resnet8-A-lr0.05-seed0", "resnet8-A-lr0.1-seed0"
TIMEOUT_S = 240  # the whole sweep, kill and retry included; about 40 s on an idle 2-core machine


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


def trial_process(home: Path, trial_dir: str) -> int | None:
    """The Ray worker process running the trial whose Tune directory is named `trial_dir` (Tune makes its
    working directory `.../working_dirs/<trial_dir>` and chdirs the trial's process into it)."""
    pids = [pid for pid, cwd in ray_processes(home).items() if cwd.name == trial_dir]
    return pids[0] if len(pids) == 1 else None


def epochs_reported(history: Path) -> int:
    """Epochs in the trial's record (its start events aside)."""
    return len(trial_record.read(history).epochs)


def client(tmp_path: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")


def test_sigkilled_trial_resumes_from_its_checkpoint_and_logs_each_epoch_once(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RESNET_SWEEPS_HOME=str(home), PYTHONUNBUFFERED="1")
    sweep = tmp_path / "trialkill.yaml"
    sweep.write_text(SWEEP)
    log = tmp_path / "driver.log"
    started = time.monotonic()
    deadline = started + TIMEOUT_S
    with log.open("w") as out:
        driver = subprocess.Popen([RESNET_SWEEP, "run", str(sweep), "--num-cpus", "2"], cwd=tmp_path, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # The victim's epoch history: .../ray_results/trialkill-<time>/<name>_<id>/metrics.jsonl.
        history = None
        while history is None or epochs_reported(history) < 2:  # epoch 2 recorded: epoch 3 under way
            assert time.monotonic() < deadline and driver.poll() is None, log.read_text()[-4000:]
            history = next(home.glob(f"ray_results/trialkill-*/{VICTIM}_*/metrics.jsonl"), None)
            time.sleep(0.05)
        pid = trial_process(home, history.parent.name)
        assert pid is not None, f"no single Ray process for {history.parent.name}: {ray_processes(home)}"
        killed_after = epochs_reported(history)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic() - started
        # The trial's last checkpoint as the kill left it (written atomically; its retry needs seconds to start).
        shutil.copyfile(history.parent / "latest" / "checkpoint.pt", tmp_path / "at-kill.pt")
        assert 0 < killed_after < EPOCHS, killed_after  # it was mid-sweep, not finished already
        driver.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        try:  # the local Ray lives in the driver's session: nothing outlives the test, even on failure
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        driver.wait(timeout=30)
    elapsed = time.monotonic() - started
    output = log.read_text()
    print(f"trial kill: pid {pid} ({VICTIM}) SIGKILLed after {killed_after} epochs at {killed_at:.1f} s; "
          f"sweep done in {elapsed:.1f} s")
    assert driver.returncode == 0, output[-4000:]
    assert "Sweep trialkill: 2 finished" in output, output[-4000:]

    c = client(tmp_path)
    experiment = c.get_experiment_by_name("trialkill")
    parents = c.search_runs([experiment.experiment_id], filter_string="tags.`resnet_sweeps.role` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = c.search_runs([experiment.experiment_id],
                         filter_string=f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    runs = {r.info.run_name: r for r in runs}
    assert set(runs) == {VICTIM, OTHER}  # no run lost, none duplicated by the retry
    for name, run in runs.items():
        assert run.data.tags["resnet_sweeps.state"] == "finished" and run.info.status == "FINISHED", name
        for key in ("train_loss", "test_error"):
            steps = [m.step for m in c.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(PER_EPOCH, PER_EPOCH * EPOCHS + 1, PER_EPOCH)), (name, key, steps)
        assert run.data.metrics["final_test_error"] == c.get_metric_history(run.info.run_id, "test_error")[-1].value
    tags = runs[VICTIM].data.tags
    assert tags["resnet_sweeps.starts"] == "2"  # killed once, retried once
    assert runs[OTHER].data.tags["resnet_sweeps.starts"] == "1"
    assert runs[OTHER].data.tags["resnet_sweeps.resumed_from_iteration"] == "0"
    # Restarted from its last checkpoint, not from scratch: the one it had written when killed.
    last_checkpoint = int(load_checkpoint(tmp_path / "at-kill.pt")["iteration"])
    assert last_checkpoint >= PER_EPOCH * killed_after
    print(f"trial kill: {VICTIM} restarted once, from iteration {last_checkpoint}; runs lost: 0")
    check_resumed_from(tags, last_checkpoint)


def check_resumed_from(tags: dict[str, str], last_checkpoint: int) -> None:
    """The run's resumed_from_iteration tag names the checkpoint the retry started from."""
    resumed = int(tags["resnet_sweeps.resumed_from_iteration"])
    assert resumed == last_checkpoint, (resumed, last_checkpoint)
