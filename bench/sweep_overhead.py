"""What Ray Tune and MLflow cost a sweep: the same tiny trials in-process back to back vs `resnet-sweep run`.

    python bench/sweep_overhead.py                       # 4 trials of ~15 s each, appends to RESULTS.md
    python bench/sweep_overhead.py --trials 2 --trial-seconds 5 --no-record

In-process: `resnet_core.train.train` called directly, one trial after another, one torch thread, writing a
checkpoint every epoch like the sweep does. Through the sweep: the same trial specs (ResNet-8 on synthetic
CIFAR-shaped data) as a sweep file run by the real CLI in a subprocess: a fresh local Ray (one CPU for trials,
so they also run one after another with one thread), a fresh SQLite MLflow store, Tune checkpoints, the
trainable and the MLflow callback. Reported: wall time of each, the fixed start-up cost (time to the first
logged metric minus the in-process time to the first epoch), and the per-trial overhead beyond that.
Targets: under 5% overhead and under 0.5 s per trial for trials of a minute, on a 2-core machine.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

RESULTS = Path(__file__).with_name("RESULTS.md")
RESNET_SWEEP = str(Path(sys.executable).with_name("resnet-sweep"))
TRAIN_IMAGES, BATCH = 512, 64  # 8 iterations per epoch


def trial_dict(iterations: int, lr: float) -> dict:
    return {"model": {"family": "cifar", "depth": 8},
            "data": {"dataset": "synthetic", "synthetic_train": TRAIN_IMAGES, "synthetic_test": 256,
                     "augment": True},
            "optim": {"lr": lr, "batch_size": BATCH, "iterations": iterations, "milestones": [iterations // 2]},
            "runtime": {"device": "cpu", "eval_batch_size": 256}}


def in_process(specs: list, workdir: Path) -> tuple[float, float, list[list[tuple[float, float]]]]:
    """(wall seconds for all trials, seconds from the start to the first epoch's metrics, per trial the
    (time the epoch's metrics arrived, its epoch_time) of every epoch)."""
    import torch

    from resnet_core.train import train

    torch.set_num_threads(1)  # what a Ray trial with cpu: 1 gets (OMP_NUM_THREADS=1)
    start = time.monotonic()
    first = None
    epochs: list[list[tuple[float, float]]] = []
    for i, spec in enumerate(specs):
        epochs.append([])
        for metrics in train(spec, checkpoint_dir=workdir / f"ckpt{i}"):
            first = first if first is not None else time.monotonic() - start
            epochs[-1].append((time.monotonic(), metrics["epoch_time"]))
    return time.monotonic() - start, first, epochs


def breakdown(epochs: list[list[tuple[float, float]]]) -> dict[str, float]:
    """Where the time between epochs goes, from (arrival time, epoch_time) per epoch of trials run back to back:
    `per_epoch`, the median of arrival gap minus the epoch's own training and evaluation time (checkpoint, report
    round trip); `between`, the median of the next trial's first arrival minus its epoch_time minus the previous
    trial's last arrival (trial end and the next one's set-up: data, model, Tune's scheduling)."""
    import statistics

    gaps = [b[0] - a[0] - b[1] for trial in epochs for a, b in zip(trial, trial[1:])]
    switches = [nxt[0][0] - nxt[0][1] - prev[-1][0] for prev, nxt in zip(epochs, epochs[1:]) if prev and nxt]
    return {"per_epoch": statistics.median(gaps) if gaps else float("nan"),
            "between": statistics.median(switches) if switches else float("nan"),
            "epochs": statistics.mean(len(t) for t in epochs)}


def calibrate(seconds: float) -> int:
    """Iterations that make one trial last about `seconds` here (one thread)."""
    import torch

    from resnet_core.spec import TrialSpec
    from resnet_core.train import train

    torch.set_num_threads(1)
    spec = TrialSpec.from_dict(trial_dict(16, 0.1))
    times = [m["epoch_time"] for m in train(spec)]
    per_iteration = times[-1] / 8  # the second epoch: past the first-epoch warm-up
    return max(8, int(round(seconds / per_iteration / 8)) * 8)


def through_sweep(iterations: int, lrs: list[float], workdir: Path) -> dict[str, float]:
    """`resnet-sweep run` of the same trials; times from the process and from MLflow's run start/end times."""
    import yaml
    from mlflow import MlflowClient

    sweep = {"name": "overhead", "base": trial_dict(iterations, lrs[0]), "grid": {"optim.lr": lrs},
             "resources": {"cpu": 1, "gpu": 0}, "max_failures": 0}
    path = workdir / "overhead.yaml"
    path.write_text(yaml.safe_dump(sweep))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RESNET_SWEEPS_HOME"] = str(workdir / "home")
    start_wall = time.time()
    start = time.monotonic()
    done = subprocess.run([RESNET_SWEEP, "run", str(path), "--num-cpus", "1"], cwd=workdir, env=env,
                          capture_output=True, text=True)
    wall = time.monotonic() - start
    end_wall = time.time()
    if done.returncode != 0:
        raise SystemExit(f"resnet-sweep run failed:\n{done.stdout}\n{done.stderr}")
    client = MlflowClient(f"sqlite:///{workdir / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("overhead")
    trials = [r for r in client.search_runs([experiment.experiment_id])
              if r.data.tags.get("resnet_sweeps.role") == "trial"]
    first_metric = min(m.timestamp for r in trials for m in client.get_metric_history(r.info.run_id, "train_loss"))
    first_start = min(r.info.start_time for r in trials) / 1000
    last_end = max(r.info.end_time for r in trials) / 1000
    # Per trial in the order Tune ran them: (when the epoch was recorded, its epoch_time) per epoch, from the
    # trials' records (the stamps MLflow shows; epoch_time is not an MLflow metric).
    from orchestrator.records import trial_record

    histories = [trial_record.read(p) for p in (workdir / "home").rglob(trial_record.FILENAME)]
    epochs = [[(e["time_ms"] / 1000, e["epoch_time"]) for e in h.epochs]
              for h in sorted(histories, key=lambda h: h.epochs[0]["time_ms"] if h.epochs else 0)]
    return {"wall": wall, "first_metric": first_metric / 1000 - start_wall,
            "startup": first_start - start_wall,  # CLI start, MLflow store, Ray start, first trial scheduled
            "trials": last_end - first_start,  # trials back to back, as Tune ran them
            "teardown": end_wall - last_end, **{f"sweep_{k}": v for k, v in breakdown(epochs).items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--trial-seconds", type=float, default=15.0, help="target length of one trial here")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    args = parser.parse_args(argv)

    import ray
    import torch

    from resnet_core.spec import TrialSpec

    iterations = calibrate(args.trial_seconds)
    lrs = [round(0.1 / (i + 1), 4) for i in range(args.trials)]
    specs = [TrialSpec.from_dict(trial_dict(iterations, lr)) for lr in lrs]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for sub in ("before", "after", "sweep"):
            (work / sub).mkdir()
        # In-process before and after the sweep: other load on the machine drifts, the mean evens it out.
        direct_a, first_a, epochs_a = in_process(specs, work / "before")
        sweep = through_sweep(iterations, lrs, work / "sweep")
        direct_b, first_b, epochs_b = in_process(specs, work / "after")
    local = {k: (v + breakdown(epochs_b)[k]) / 2 for k, v in breakdown(epochs_a).items()}
    load_after = os.getloadavg()[0]
    direct, direct_first = (direct_a + direct_b) / 2, (first_a + first_b) / 2
    n = args.trials
    per_trial = (sweep["trials"] - direct) / n  # Tune + trainable + MLflow, per trial, past start-up
    overhead = (sweep["wall"] - direct) / direct
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.system()}"
    versions = f"torch {torch.__version__}, ray {ray.__version__}, mlflow {_version('mlflow')}"
    lines = [
        f"trials: {n} x ResNet-8, {iterations} iterations of batch {BATCH} on {TRAIN_IMAGES} synthetic "
        f"images, one thread each; load average {load_before:.1f} before, {load_after:.1f} after",
        f"in-process, back to back:       {direct:7.1f} s  ({direct_a:.1f} before, {direct_b:.1f} after the sweep;"
        f" first epoch after {direct_first:.1f} s)",
        f"resnet-sweep run, whole command: {sweep['wall']:7.1f} s  (first metric in MLflow after "
        f"{sweep['first_metric']:.1f} s)",
        f"  start-up to first trial:       {sweep['startup']:7.1f} s  (CLI, MLflow store, Ray, first actor)",
        f"  trials, first start-last end:  {sweep['trials']:7.1f} s",
        f"  tear-down and summary:         {sweep['teardown']:7.1f} s",
        f"overhead per trial past start-up: {per_trial:6.2f} s  ({100 * per_trial / (direct / n):.1f}% of a "
        f"{direct / n:.1f} s trial)",
        f"total overhead (whole command):  {100 * overhead:6.1f} %",
        f"where it goes (medians; arrival gaps minus the epochs' own train+eval time):",
        f"  per epoch, in-process (checkpoint):           {local['per_epoch']:6.3f} s",
        f"  per epoch, through the sweep (+ report trip): {sweep['sweep_per_epoch']:6.3f} s "
        f"(x {sweep['sweep_epochs']:.0f} epochs a trial)",
        f"  between trials, in-process (data, model):     {local['between']:6.3f} s",
        f"  between trials, through the sweep:            {sweep['sweep_between']:6.3f} s",
    ]
    print("\n".join([machine, versions, *lines]))
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write(f"\n## Sweep overhead: Ray Tune + MLflow vs in-process ({datetime.date.today()})\n\n"
                    f"`python bench/sweep_overhead.py --trials {args.trials} --trial-seconds {args.trial_seconds:g}`"
                    f" on {machine}; {versions}.\n\n```\n" + "\n".join(lines) + "\n```\n")
        print(f"appended to {RESULTS}")
    return 0


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    sys.exit(main())
