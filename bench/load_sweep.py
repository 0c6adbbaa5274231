"""Load: a sweep of many tiny trials through the installed `resnet-sweep run`, the driver's memory sampled.

    python bench/load_sweep.py                       # 200 trials on 2 CPUs, appends to RESULTS.md
    python bench/load_sweep.py --seeds 5 --lrs 4 --no-record

The sweep is ResNet-8 on 64 synthetic images, batch 32, 2 iterations (one epoch) per trial: a grid of
`--seeds` x `--lrs` trials, one CPU each, on a fresh local Ray of `--num-cpus` CPUs and a fresh SQLite MLflow
store. While it runs, the driver process's resident set size (RSS, MiB) is read every `--interval` seconds.
Afterwards every trial must have a FINISHED child run in MLflow with state `finished`: under load, no run lost.
Reported: wall time, start-up (command start to the first trial's run), the trials' phase (first trial start
to last trial end) per trial, and the driver's RSS at the start of the trials' phase, its middle and its end.
"Flat" means the RSS grows by less than `--bound-mib` from the moment a third of the trials had finished to the
last (a leak of one MLflow run or Tune result per trial would grow with every trial; the driver's one-time
imports happen around the first trial and are left out; Python's allocator grows in steps, hence a bound
rather than zero).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

RESULTS = Path(__file__).with_name("RESULTS.md")
RESNET_SWEEP = str(Path(sys.executable).with_name("resnet-sweep"))
NAME = "load"
FLAT_AFTER = 1 / 3  # "flat": no growth once this share of the trials has finished (past one-time imports)


def sweep_dict(seeds: int, lrs: int, models: str = "final") -> dict:
    """`seeds` x `lrs` trials of ResNet-8, each one epoch of 2 iterations on 64 synthetic images; `models`: the
    sweep's tracking.models (each trial's model logged, about 0.8 s of the driver's CPU, or none)."""
    return {"name": NAME, "description": "load test: many tiny trials; the numbers mean nothing",
            "base": {"model": {"family": "cifar", "depth": 8},
                     "data": {"dataset": "synthetic", "synthetic_train": 64, "synthetic_test": 32,
                              "augment": False},
                     "optim": {"lr": 0.1, "batch_size": 32, "iterations": 2, "milestones": [1]},
                     "runtime": {"device": "cpu", "eval_batch_size": 32}},
            "grid": {"optim.lr": [round(0.1 / (i + 1), 5) for i in range(lrs)]},
            "seeds": list(range(seeds)), "resources": {"cpu": 1, "gpu": 0}, "max_failures": 0,
            "tracking": {"models": models}}


def rss_mib(pid: int) -> float | None:
    """Resident set size of process `pid` in MiB from /proc (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024  # kB
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass
class LoadResult:
    trials: int
    returncode: int
    wall: float  # s, the whole command
    startup: float  # s, command start to the first trial's MLflow run start
    phase: float  # s, first trial start to last trial end
    samples: list[tuple[float, float]] = field(default_factory=list)  # (s since command start, driver RSS MiB)
    ends: list[float] = field(default_factory=list)  # s since command start at which each trial's run ended
    runs: int = 0  # child runs in MLflow
    finished: int = 0  # of those: status FINISHED and resnet_sweeps.state finished
    distinct: int = 0  # distinct trial ids among them (duplicates would show as runs > distinct)
    train_seconds: float = 0.0  # mean over trials of the time train() itself took (its epoch_time metrics)
    stdout: str = ""
    stderr: str = ""

    def rss_at(self, fraction: float) -> float:
        """Driver RSS (MiB) at `fraction` of the trials' phase (0: its start, 1: its end)."""
        at = self.startup + fraction * self.phase
        return min(self.samples, key=lambda s: abs(s[0] - at))[1]

    def growth_after(self, finished_fraction: float) -> float:
        """MiB the driver grew from the moment `finished_fraction` of the trials had ended to the end of the
        trials' phase (the highest RSS after vs the RSS then, so a transient peak counts as growth). Measuring
        from a count of finished trials, not from a time, leaves out the driver's one-time start-up steps:
        torch at the first trial's start, torch._dynamo (~150 MiB, imported by the MLflow callback's first
        layer_names on the meta device) at the first trial's end."""
        if not self.ends:
            return 0.0
        index = min(len(self.ends) - 1, max(0, int(finished_fraction * len(self.ends)) - 1))
        since, until = self.ends[index], self.ends[-1]
        at = [rss for t, rss in self.samples if t >= since]
        later = [rss for t, rss in self.samples if since <= t <= until]
        return max(later) - at[0] if at and later else 0.0


def run_load(workdir: Path, seeds: int, lrs: int, num_cpus: int = 2, interval: float = 0.5,
             timeout: float = 3600, models: str = "final") -> LoadResult:
    """Write the sweep, run it through the CLI while sampling the driver's RSS, then count its runs in MLflow."""
    import yaml
    from mlflow import MlflowClient

    path = workdir / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(sweep_dict(seeds, lrs, models), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RESNET_SWEEPS_HOME"] = str(workdir / "home")
    samples: list[tuple[float, float]] = []
    start_wall, start = time.time(), time.monotonic()
    proc = subprocess.Popen([RESNET_SWEEP, "run", str(path), "--num-cpus", str(num_cpus)], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = rss_mib(proc.pid)
            if rss is not None:
                samples.append((time.monotonic() - start, rss))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wall = time.monotonic() - start
    result = LoadResult(seeds * lrs, proc.returncode, wall, 0.0, 0.0, samples, stdout=stdout, stderr=stderr)
    client = MlflowClient(f"sqlite:///{workdir / 'mlruns.db'}")
    experiment = client.get_experiment_by_name(NAME)
    if experiment is None:
        return result
    runs = client.search_runs([experiment.experiment_id], "tags.`resnet_sweeps.role` = 'trial'",
                              max_results=50_000)
    result.runs = len(runs)
    result.finished = sum(r.info.status == "FINISHED" and r.data.tags.get("resnet_sweeps.state") == "finished"
                          for r in runs)
    result.distinct = len({r.data.tags.get("resnet_sweeps.trial_id") for r in runs})
    times = [r.data.metrics["epoch_time"] for r in runs if "epoch_time" in r.data.metrics]  # one epoch a trial
    result.train_seconds = sum(times) / len(times) if times else 0.0
    if runs and all(r.info.end_time for r in runs):
        first_start = min(r.info.start_time for r in runs) / 1000
        result.startup = first_start - start_wall
        result.phase = max(r.info.end_time for r in runs) / 1000 - first_start
        result.ends = sorted(r.info.end_time / 1000 - start_wall for r in runs)
    return result


def summary(result: LoadResult, num_cpus: int, bound_mib: float) -> list[str]:
    per_trial = result.phase / result.trials if result.trials else 0.0
    overhead = per_trial * num_cpus - result.train_seconds
    growth = result.growth_after(FLAT_AFTER)
    flat = growth < bound_mib
    return [
        f"trials: {result.trials} (grid), child runs in MLflow: {result.runs}, finished: {result.finished}, "
        f"distinct trial ids: {result.distinct}, runs lost: {result.trials - result.finished}; exit code "
        f"{result.returncode}",
        f"wall time: {result.wall:.1f} s; start-up to the first trial: {result.startup:.1f} s; trials' phase "
        f"(first start to last end): {result.phase:.1f} s",
        f"per trial: {per_trial:.2f} s of wall time in the trials' phase ({per_trial * num_cpus:.2f} CPU-slot "
        f"seconds with {num_cpus} trials at a time), of which training (epoch_time) {result.train_seconds:.2f} s: "
        f"overhead {overhead:.2f} s per trial",
        f"driver RSS (MiB) at the trials' start / middle / end: {result.rss_at(0):.0f} / {result.rss_at(0.5):.0f} "
        f"/ {result.rss_at(1):.0f}; peak {max(s[1] for s in result.samples):.0f}",
        f"driver RSS growth from {FLAT_AFTER:.0%} of the trials finished to the last: {growth:.1f} MiB "
        f"({'flat' if flat else 'NOT flat'}: bound {bound_mib:g} MiB)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--lrs", type=int, default=10, help="learning rates in the grid (trials = seeds x lrs)")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--bound-mib", type=float, default=50.0, help="second-half RSS growth still 'flat'")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    args = parser.parse_args(argv)

    import mlflow
    import ray
    import torch

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_load(Path(tmp), args.seeds, args.lrs, args.num_cpus, args.interval)
    lines = summary(result, args.num_cpus, args.bound_mib)
    curve = ", ".join(f"{result.rss_at(f):.0f}" for f in (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1))
    lines.append(f"driver RSS (MiB) at 0, 10, ..., 100% of the trials' phase: {curve}")
    print("\n".join(lines))
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n", file=sys.stderr)
    if not args.no_record:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with RESULTS.open("a") as out:
            out.write(f"\n## Load: {result.trials} tiny trials through `resnet-sweep run`, {stamp}: CPU only "
                      f"({os.cpu_count()} cores)\n\n")
            out.write(f"Versions: python {platform.python_version()}, torch {torch.__version__}, ray "
                      f"{ray.__version__}, mlflow {mlflow.__version__}.\n")
            out.write(f"Host: {platform.platform()}; 1/5/15-minute load average at start: "
                      f"{' '.join(f'{x:.1f}' for x in load_before)}. Command: `python bench/load_sweep.py "
                      f"{' '.join(argv if argv is not None else sys.argv[1:])}".rstrip() + "`.\n")
            out.write(f"Sweep: ResNet-8, 64 synthetic images, batch 32, 2 iterations (1 epoch) per trial, grid "
                      f"{args.seeds} seeds x {args.lrs} lrs, cpu 1 per trial on a local Ray of {args.num_cpus} "
                      "CPUs, SQLite MLflow store.\n\n```\n")
            out.write("\n".join(lines))
            out.write("\n```\n")
    ok = result.returncode == 0 and result.finished == result.trials == result.distinct
    return 0 if ok and result.growth_after(FLAT_AFTER) < args.bound_mib else 1


if __name__ == "__main__":
    sys.exit(main())
