"""A sweep through chaos: on a real two-node Ray cluster with an `mlflow server` (tests/loopback_cluster.py), a
seeded killer SIGKILLs trial processes, the worker node (started again a few seconds later), the tracking server
(restarted likewise) and the driver (followed by what a user or a retried Kubernetes job does: `resume NAME`, or
the same `run` again from a machine whose state directory is empty), at random moments, while the sweep runs.

Then every trial is compared with the same trial trained undisturbed (resnet_core's `train` in this process,
one thread, as a trial of `cpu: 1` runs): its final metrics and final weights must equal it bit for bit; MLflow
must hold exactly one child run per trial under one parent run, and each epoch exactly once.

    python bench/chaos.py                     # 24 trials, >= 10 trial kills, 2 of each other kind; seed 0
    python bench/chaos.py --seed 7 --record   # another schedule; the figures appended to bench/RESULTS.md

The suite runs a short version of the same harness (tests/faults/test_chaos.py). Needs root and iproute2 (a
private network namespace, as the cluster tests).
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from loopback_cluster import FAST_NODE_DEATH, RAY_PORT, LoopbackCluster, loopback_cluster  # noqa: E402

RESNET_SWEEP = str(Path(sys.executable).with_name("resnet-sweep"))
KINDS = ("trial", "node", "mlflow", "driver")
MAX_RETRIES = 6  # driver exits other than our kills (a tracking server down at its start) a job would retry
# What a trial learned, compared bit for bit; timings (images_per_sec, the system samples) differ by design.
LEARNED = ("iteration", "lr", "train_loss", "train_error", "test_error", "test_top5_error")


@dataclass(frozen=True)
class Plan:
    """The sweep and the kills. `kills`: how many of each kind, made in a seeded random order at seeded random
    gaps of `gap_s` seconds; the sweep must outlast them (else the figures say fewer kills)."""

    trials: int = 24
    epochs: int = 8
    per_epoch: int = 6  # iterations per epoch (batches of 32)
    kills: dict[str, int] = field(default_factory=lambda: {"trial": 10, "node": 2, "mlflow": 2, "driver": 2})
    seed: int = 0
    gap_s: tuple[float, float] = (2.0, 6.0)
    down_s: tuple[float, float] = (2.0, 5.0)  # how long a killed node or tracking server stays down
    timeout_s: float = 900

    def sweep(self, name: str) -> str:
        lrs = [round(0.1 - 0.002 * i, 4) for i in range(self.trials)]
        return f"""name: {name}
base:
  model: {{family: cifar, depth: 8}}
  data: {{dataset: synthetic, synthetic_train: {32 * self.per_epoch}, synthetic_test: 32, augment: false}}
  optim: {{batch_size: 32, iterations: {self.per_epoch * self.epochs}, milestones: [{self.per_epoch * self.epochs // 2}]}}
  runtime: {{device: cpu, eval_batch_size: 32}}
grid:
  optim.lr: {lrs}
resources: {{cpu: 1, gpu: 0}}
max_failures: 20          # every kill of a trial's process or node is a crash Tune retries
"""


@dataclass
class Outcome:
    kills: Counter
    driver_starts: list[str]  # how each driver after the first came: resume, run-again, retry
    elapsed_s: float
    figures: dict[str, Any] = field(default_factory=dict)

    def problems(self, plan: Plan) -> list[str]:
        """What is off: each figure against what it must be."""
        f, found = self.figures, []
        for kind, wanted in plan.kills.items():
            if self.kills[kind] < wanted:
                found.append(f"{kind} kills: {self.kills[kind]} < {wanted} (the sweep ended first)")
        for key in ("trials_not_finished", "epochs_missing", "epochs_duplicated", "trials_differing",
                    "restarts_behind"):
            if f[key]:
                found.append(f"{key}: {f[key]}")
        if f["parent_runs"] != 1 or f["child_runs_per_trial"] != {1} or f["experiment_dirs"] != 1:
            found.append(f"launches: parent runs {f['parent_runs']}, Tune experiments {f['experiment_dirs']}, "
                         f"child runs per trial {sorted(f['child_runs_per_trial'])}")
        return found


class Killer:
    """Runs the sweep's driver on the cluster and kills pieces of it in a seeded order until the sweep ends."""

    def __init__(self, cluster: LoopbackCluster, plan: Plan, sweep_file: Path, name: str, log=print):
        self.cluster, self.plan, self.sweep_file, self.name, self.log = cluster, plan, sweep_file, name, log
        self.rng = random.Random(plan.seed)
        self.kills: Counter = Counter()
        self.driver_starts: list[str] = []
        self.homes = 0
        self.restarts: list[tuple[float, str]] = []  # (when, "node" | "mlflow")
        self.driver: subprocess.Popen | None = None

    def run(self) -> Outcome:
        started = time.monotonic()
        queue = [kind for kind in KINDS for _ in range(self.plan.kills.get(kind, 0))]
        self.rng.shuffle(queue)
        self._start_driver("run")
        next_kill = time.monotonic() + self.rng.uniform(*self.plan.gap_s)
        while True:
            now = time.monotonic()
            if now - started > self.plan.timeout_s:
                raise TimeoutError(f"chaos sweep not done in {self.plan.timeout_s} s; logs in {self.cluster.root}")
            self._restart_due(now)
            code = self.driver.poll()
            if code == 0 and not self.restarts:
                break
            if code is not None and code != 0:  # e.g. the tracking server was down: a job retry runs it again
                retries = self.driver_starts.count("retry")
                if retries >= MAX_RETRIES:
                    raise RuntimeError(f"the driver exited {code} {retries} times; see {self.cluster.root}/driver.log")
                self.log(f"  driver exited {code}; run again in 2 s (a job's retry)")
                time.sleep(2)
                self._start_driver("retry")
            elif code is None and queue and now >= next_kill and self._kill(queue[0]):
                self.kills[queue.pop(0)] += 1
                next_kill = time.monotonic() + self.rng.uniform(*self.plan.gap_s)
            time.sleep(0.2)
        return Outcome(self.kills, self.driver_starts, time.monotonic() - started)

    def _kill(self, kind: str) -> bool:
        """Kill one piece of `kind`; False when there is none to kill now (try again at the next moment)."""
        at = f"{time.monotonic():.0f}"
        if kind == "trial":
            pids = self._trial_pids()
            if not pids:
                return False
            pid = self.rng.choice(sorted(pids))
            os.kill(pid, signal.SIGKILL)
            self.log(f"  [{at}] killed trial process {pid} ({pids[pid]})")
        elif kind in ("node", "mlflow"):
            if any(what == kind for _, what in self.restarts):
                return False  # still down from the last kill
            killed = self.cluster.kill_worker_node() if kind == "node" else self.cluster.kill_mlflow()
            self.restarts.append((time.monotonic() + self.rng.uniform(*self.plan.down_s), kind))
            self.log(f"  [{at}] killed the {'worker node' if kind == 'node' else 'tracking server'} "
                     f"({len(killed)} processes)")
        else:
            if self.driver.poll() is not None or not self._trial_pids():
                return False  # between drivers, or before its trials started: the next moment
            self.driver.kill()
            self.driver.wait(timeout=30)
            self.log(f"  [{at}] killed the driver")
            self._start_driver("resume" if self.kills["driver"] % 2 else "run-again")
        return True

    def _restart_due(self, now: float) -> None:
        for when, what in [r for r in self.restarts if r[0] <= now]:
            self.restarts.remove((when, what))
            self.cluster.start_worker_node() if what == "node" else self.cluster.start_mlflow()
            self.log(f"  {'worker node' if what == 'node' else 'tracking server'} back")

    def _start_driver(self, how: str) -> None:
        """The first `run`, or a driver after a kill: `resume NAME` with the same state directory, or the same
        `run` again (also a retry after an exit) from a new empty one, as a new head pod has."""
        if how != "run":
            self.driver_starts.append(how)
        if how != "resume":
            self.homes += 1
        home = self.cluster.root / f"home{self.homes}"
        command = (["resume", self.name] if how == "resume" else
                   ["run", str(self.sweep_file), "--storage", str(self.cluster.shared_dir),
                    "--tracking-uri", self.cluster.tracking_uri])
        self.driver = self.cluster.start("env", f"RESNET_SWEEPS_HOME={home}", RESNET_SWEEP, *command,
                                         "--address", f"127.0.0.1:{RAY_PORT}", log="driver.log", append=True)

    def _trial_pids(self) -> dict[int, str]:
        """Ray worker processes of trials under way: past their first epoch (a kill then must be recovered from a
        checkpoint) and not ended. Tune chdirs a trial's process into the trial's working directory."""
        from loopback_cluster import _namespace_pids

        found = {}
        for pid in _namespace_pids(self.cluster.namespace):
            try:
                if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                    continue
                cwd = Path(f"/proc/{pid}/cwd").readlink()
            except OSError:
                continue
            record = next(self.cluster.shared_dir.glob(f"{self.name}-*/{cwd.name}/metrics.jsonl"), None)
            history = _read_record(record) if cwd.parent.name == "working_dirs" and record is not None else None
            if history is not None and history.epochs and not history.done:
                found[pid] = cwd.name  # a reused actor keeps the cwd of a trial it finished: not that one
        return found


def compare(cluster: LoopbackCluster, plan: Plan, sweep_file: Path, name: str) -> dict[str, Any]:
    """The figures: trials finished, MLflow's runs and epochs, and trials whose results differ by a bit from the
    same trial trained undisturbed."""
    from mlflow import MlflowClient

    from orchestrator.records.trial_record import trial_dirname
    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import load_sweep

    trials = expand(load_sweep(sweep_file))
    client = MlflowClient(cluster.backend_store)  # the server's own store, read directly
    experiment = client.get_experiment_by_name(name)
    parents = client.search_runs([experiment.experiment_id], "tags.`resnet_sweeps.role` = 'sweep'")
    runs = client.search_runs([experiment.experiment_id], "tags.`resnet_sweeps.role` = 'trial'",
                              max_results=10 * len(trials))
    by_id = Counter(r.data.tags["resnet_sweeps.trial_id"] for r in runs)
    expected_steps = [plan.per_epoch * (k + 1) for k in range(plan.epochs)]
    missing = duplicated = 0
    not_finished, differing = [], []
    for run in runs:
        for key in ("train_loss", "test_error"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            missing += len(set(expected_steps) - set(steps))
            duplicated += len(steps) - len(set(steps))
        if run.data.tags.get("resnet_sweeps.state") != "finished" or run.info.status != "FINISHED":
            not_finished.append(run.info.run_name)
    experiment_dirs = list(cluster.shared_dir.glob(f"{name}-*"))  # one: a continued launch keeps its directory
    experiment_dir = experiment_dirs[0]
    behind = [f"{trial.name}: {lost}" for trial in trials
              if (lost := _restarts_behind(experiment_dir / trial_dirname(trial.to_dict()) / "metrics.jsonl"))]
    for trial in trials:
        if by_id[trial.id] == 0:
            not_finished.append(trial.name)
            continue
        reason = _differs(trial, experiment_dir, client, runs)
        if reason:
            differing.append(f"{trial.name}: {reason}")
    return {"trials": len(trials), "trials_not_finished": not_finished, "parent_runs": len(parents),
            "child_runs_per_trial": set(by_id[t.id] for t in trials), "epochs_missing": missing,
            "epochs_duplicated": duplicated, "trials_differing": differing, "restarts_behind": behind,
            "experiment_dirs": len(experiment_dirs),
            "restarts": sum(len(_read_record(experiment_dir / trial_dirname(t.to_dict()) / "metrics.jsonl").starts)
                            - 1 for t in trials)}


def _read_record(record: Path) -> Any:
    from orchestrator.records.trial_record import read

    return read(record)


def _events(record: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def _restarts_behind(record: Path) -> str | None:
    """A start that went back behind the trial's record: a restart from scratch or from an older checkpoint
    than the one its last epoch left (which deterministic training would hide in the final results)."""
    last = 0
    for e in _events(record) if record.is_file() else []:
        if e["event"] == "epoch":
            last = e["iteration"]
        elif e["event"] == "start" and e.get("resumed_from_iteration", 0) < last:
            return f"started from iteration {e.get('resumed_from_iteration')} after epoch at iteration {last}"
    return None


def _differs(trial: Any, experiment_dir: Path, client: Any, runs: list) -> str | None:
    """Why the trial's final metrics (record and MLflow) or final weights are not the undisturbed ones."""
    import tempfile

    import torch

    from orchestrator.records.trial_record import read, trial_dirname
    from resnet_core.checkpoint import load_checkpoint
    from resnet_core.train import train

    torch.set_num_threads(1)  # as the trial's process: Ray gives a `cpu: 1` trial one thread
    with tempfile.TemporaryDirectory() as scratch:
        last = {}
        for metrics in train(trial.spec, checkpoint_dir=scratch):
            last = metrics
        undisturbed = load_checkpoint(Path(scratch))["model"]
    directory = experiment_dir / trial_dirname(trial.to_dict())
    recorded = read(directory / "metrics.jsonl").epochs[-1]
    for key in LEARNED:
        if recorded.get(key) != last.get(key):
            return f"record's {key} {recorded.get(key)!r} != {last.get(key)!r}"
    run = next(r for r in runs if r.data.tags["resnet_sweeps.trial_id"] == trial.id)
    for key in ("train_loss", "test_error"):
        logged = max(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step).value
        if logged != last[key]:
            return f"MLflow's last {key} {logged!r} != {last[key]!r}"
    weights = load_checkpoint(directory / "latest")["model"]
    if weights.keys() != undisturbed.keys() or not all(torch.equal(weights[k], undisturbed[k]) for k in weights):
        return "final weights differ"
    return None


def chaos_run(cluster: LoopbackCluster, plan: Plan, name: str = "chaos", log=print) -> Outcome:
    """The whole experiment on a running cluster: the sweep through the kills, then the comparison."""
    sweep_file = cluster.root / f"{name}.yaml"
    sweep_file.write_text(plan.sweep(name))
    log(f"chaos: {plan.trials} trials of {plan.epochs} epochs, kills {dict(plan.kills)}, seed {plan.seed}")
    try:
        outcome = Killer(cluster, plan, sweep_file, name, log).run()
        outcome.figures = compare(cluster, plan, sweep_file, name)
    except BaseException:
        _keep_logs(cluster, log)
        raise
    return outcome


def _keep_logs(cluster: LoopbackCluster, log) -> None:
    """The cluster's scratch space goes with it: keep the drivers' and the server's logs and the state for a look."""
    import shutil
    import tempfile

    kept = Path(tempfile.mkdtemp(prefix="chaos-logs-"))
    for path in [*cluster.root.glob("*.log"), *cluster.root.glob("home*")]:
        (shutil.copytree if path.is_dir() else shutil.copy)(path, kept / path.name)
    log(f"logs kept in {kept}")


def report(plan: Plan, outcome: Outcome) -> str:
    f = outcome.figures
    lines = [
        f"kills: {', '.join(f'{k} {outcome.kills[k]}' for k in KINDS)}; drivers after the first: "
        f"{', '.join(outcome.driver_starts) or 'none'}",
        f"trials finished: {f['trials'] - len(f['trials_not_finished'])} of {f['trials']}; parent runs: "
        f"{f['parent_runs']}; child runs per trial: {sorted(f['child_runs_per_trial'])}",
        f"epochs missing in MLflow: {f['epochs_missing']}; duplicated: {f['epochs_duplicated']}",
        f"trial restarts: {f['restarts']}, of which went back behind their record: {len(f['restarts_behind'])}",
        f"trials differing from the undisturbed run by a bit (final metrics or weights): "
        f"{len(f['trials_differing'])} {f['trials_differing'] or ''}",
        f"wall time of the sweep: {outcome.elapsed_s:.0f} s (seed {plan.seed})",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    plan = Plan(trials=args.trials, epochs=args.epochs, seed=args.seed)
    started = time.monotonic()
    with loopback_cluster(cpus_per_node=1, ray_env=FAST_NODE_DEATH) as cluster:
        outcome = chaos_run(cluster, plan)
    text = report(plan, outcome)
    total = time.monotonic() - started
    print(f"{text}\nwhole run (cluster start, sweep, comparison): {total:.0f} s")
    problems = outcome.problems(plan)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if args.record:
        with (ROOT / "bench" / "RESULTS.md").open("a") as out:
            out.write(f"\n### Chaos run ({time.strftime('%Y-%m-%d')}, `python bench/chaos.py --seed {args.seed}`)\n\n"
                      + "".join(f"- {line}\n" for line in text.splitlines())
                      + f"- whole run: {total:.0f} s\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
