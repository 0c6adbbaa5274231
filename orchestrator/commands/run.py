"""`resnet-sweep run SWEEP.yaml`: launch a sweep here on Ray Tune (local Ray unless RAY_ADDRESS/--address),
tracked in MLflow (a SQLite store in the working directory unless --tracking-uri), with a live trial table."""
from __future__ import annotations

import argparse
import os
from datetime import datetime
from typing import Any

from orchestrator.commands._sweep_args import add_sweep_arguments, sweep_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--storage", default=None, metavar="DIR_OR_URI",
                        help="Ray Tune storage for checkpoints and experiment state (a path every node sees, or "
                             "s3://...); default: $RESNET_SWEEPS_HOME/ray_results (~/.resnet_sweeps/ray_results)")
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: sqlite:///<working dir>/mlruns.db)")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None, metavar="ADDRESS",
                        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray started here)")
    parser.add_argument("--num-cpus", type=int, default=None, metavar="N",
                        help="CPUs of the local Ray (default: all of this machine's)")


def run(args: argparse.Namespace) -> int:
    sweep = sweep_from_args(args)  # validates every trial: bad input exits 2 before anything starts
    from orchestrator.specs.sweep import expand, probe_trials

    trials = expand(sweep)
    from pathlib import Path

    from orchestrator.records import state
    from orchestrator.errors import CliError
    from orchestrator.running.data_check import check_sweep_data
    from orchestrator.running.driver import check_not_running, drive
    from orchestrator.tracking.uris import default_tracking_uri
    from orchestrator.tracking.writer import Tracker

    check_not_running(sweep.name)
    try:
        previous = state.load(sweep.name)
        if previous.effective_state() == "interrupted":
            print(f"note: the interrupted launch of {sweep.name!r} ({previous.created}) stays in MLflow; this is a new "
                  f"launch (`resnet-sweep resume {sweep.name}` would have continued it)")
    except CliError:  # no earlier launch of this name
        pass
    tracking_uri = args.tracking_uri or default_tracking_uri()
    if not tracking_reachable(tracking_uri, "run"):  # before Ray or any record: nothing half-started
        return 1
    storage = args.storage or str(state.default_storage())
    if "://" not in storage:
        storage = str(Path(storage).expanduser().resolve())
    on_cluster = bool(args.address or os.environ.get("RAY_ADDRESS"))
    if on_cluster:
        from orchestrator.running.cluster import check_shared_storage
        from orchestrator.running.resources import init_ray

        # Join the cluster before recording anything: storage some node cannot see, or data missing where the
        # trials run, is refused with nothing begun.
        init_ray(args.address, args.num_cpus)
        check_shared_storage(storage)
    check_sweep_data(sweep, trials or probe_trials(sweep), str(args.sweep), on_cluster)
    sweep_dict = sweep.to_dict()
    experiment_dir = f"{sweep.name}-{datetime.now():%Y%m%d-%H%M%S}"  # one Tune experiment per launch
    experiment_path = f"{storage.rstrip('/')}/{experiment_dir}"
    from orchestrator.running.tune_runner import shared_state_dir

    # The trials' records: in the experiment directory when storage is a file system, else the driver keeps them.
    records_root = "" if shared_state_dir(storage, experiment_dir) else str(state.sweep_dir(sweep.name) / experiment_dir)
    parent = start_sweep_while_ray_starts(
        lambda: Tracker(tracking_uri).start_sweep(sweep.experiment_name, sweep.name, sweep_dict, len(trials),
                                                  tags=_code_tags()), args)
    record = state.SweepRecord(
        name=sweep.name, sweep_file=str(args.sweep), experiment=sweep.experiment_name, tracking_uri=tracking_uri,
        parent_run_id=parent, storage_path=storage, experiment_path=experiment_path,
        trials=[{"id": t.id, "name": t.name, "iterations": t.spec.optim.iterations} for t in trials],
        address=args.address, samples=sweep.search.num_samples if sweep.search.kind == "optuna" else None,
        iterations_per_sample=sweep.base.optim.iterations, records_root=records_root)
    state.save(record, sweep_dict)

    def tuner_factory():
        from orchestrator.running.mlflow_callback import MlflowSweepCallback
        from orchestrator.running.progress import ProgressCallback
        from orchestrator.running.resources import init_ray, trial_resources
        from orchestrator.running.tune_runner import build_tuner

        init_ray(args.address, args.num_cpus)  # a no-op once started above
        resources, note = trial_resources(sweep)
        if note:
            print(f"note: {note}")
        callbacks = [MlflowSweepCallback(tracking_uri, parent, record.records, sweep.name),
                     ProgressCallback(f"Sweep {sweep.name}")]
        return build_tuner(sweep, trials, resources, storage, experiment_dir, callbacks)

    return drive(record, tuner_factory, resume=False)


def start_sweep_while_ray_starts(start_sweep: Any, args: argparse.Namespace) -> str:
    """Run `start_sweep()` (the MLflow parent run; on a new SQLite store MLflow's import and table creation take
    seconds), then import Ray Tune (1-2 s), on a thread while the local Ray starts here, which is mostly waiting
    for Ray's processes: start-up costs the longest of these, not their sum (bench/RESULTS.md). No trial starts
    before all are done; if MLflow fails, Ray is shut down again."""
    import threading

    from orchestrator.running.resources import init_ray

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["run_id"] = start_sweep()
            import ray.tune  # noqa: F401  for the driver's next step
        except BaseException as err:  # noqa: BLE001  raised again below, in the main thread
            outcome["error"] = err

    thread = threading.Thread(target=work, name="mlflow-parent-run")
    thread.start()
    try:
        init_ray(args.address, args.num_cpus)
    finally:
        thread.join()
    if "error" in outcome:
        import ray

        ray.shutdown()
        raise outcome["error"]
    return outcome["run_id"]


def tracking_reachable(tracking_uri: str, command: str) -> bool:
    """False (with the reason on stderr) when the tracking server does not answer within seconds."""
    import sys

    from orchestrator.tracking.server import TrackingUnreachable, check_reachable

    try:
        check_reachable(tracking_uri)
    except TrackingUnreachable as err:
        print(f"resnet-sweep {command}: {err}; nothing was started (start the server, or pass another "
              f"--tracking-uri)", file=sys.stderr)
        return False
    return True


def _code_tags() -> dict[str, str]:
    """Version tags of the parent run: package version and the git commit of the working tree, if any."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    tags = {}
    try:
        tags["resnet_sweeps.version"] = version("resnet-sweeps")
    except PackageNotFoundError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=__file__.rsplit("/orchestrator/", 1)[0])
        if commit.returncode == 0:
            tags["mlflow.source.git.commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return tags
