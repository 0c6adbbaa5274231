"""A launch in one place: `launch` starts a sweep, `resume` continues one; both share the checks, Ray's start and
the Tuner they build, then `drive` it (running/driver.py).

The order is what makes a killed driver recoverable and bad input harmless: everything that can refuse the sweep
(a sweep already running, an unreachable tracking server, storage or data some node cannot see) is checked before
anything is written; then the MLflow parent run and the sweep's state record exist before any trial starts, and
the record names the Tune experiment directory that `resume` reopens.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from orchestrator.contract import GIT_COMMIT, VERSION
from orchestrator.errors import CliError
from orchestrator.records import state, trial_record
from orchestrator.running.driver import drive
from orchestrator.running.unfinished import unfinished_launch
from orchestrator.specs.expansion import expand, probe_trials
from orchestrator.specs.sweep import SweepSpec, Trial


@dataclass(frozen=True)
class LaunchOptions:
    """Where a sweep runs and is recorded. None means the default: RAY_ADDRESS else a local Ray with all of this
    machine's CPUs; $RESNET_SWEEPS_HOME/ray_results; a SQLite store in the working directory. `resume` takes
    storage and tracking from the launch it continues."""

    address: str | None = None
    num_cpus: int | None = None
    storage: str | None = None
    tracking_uri: str | None = None


def launch(sweep: SweepSpec, sweep_file: str, options: LaunchOptions, new_launch: bool = False) -> int:
    """Drive the launch of `sweep` (read from `sweep_file`) to its end; the exit code. The same command run again
    continues an unfinished launch of the same sweep in the same storage (a retried job, a new head node with an
    empty disk) under its MLflow parent run; `new_launch` starts a new one regardless."""
    from orchestrator.tracking.uris import default_tracking_uri
    from orchestrator.tracking.writer import Tracker

    trials = expand(sweep)
    storage = _storage_location(options.storage)
    unfinished = None if new_launch else unfinished_launch(sweep, storage)
    if unfinished is not None:
        print(f"continuing the unfinished launch of {sweep.name!r} from {unfinished.created} (MLflow parent run "
              f"{unfinished.parent_run_id}): finished trials are kept, the others go on from their latest "
              f"checkpoints; `--new-launch` starts a new one", flush=True)
        return resume(sweep.name, options)
    state.check_not_running(sweep.name)
    _note_interrupted_launch(sweep.name)
    tracking_uri = options.tracking_uri or default_tracking_uri()
    if not _tracking_reachable(tracking_uri, "run"):
        return 1
    _check_where_trials_run(sweep, trials or probe_trials(sweep), sweep_file, options.address, options.num_cpus,
                            storage)
    sweep_dict = sweep.to_dict()
    experiment_dir = f"{sweep.name}-{datetime.now():%Y%m%d-%H%M%S}"  # one Tune experiment per launch
    parent = _start_parent_while_ray_starts(
        lambda: Tracker(tracking_uri).start_sweep(sweep.experiment_name, sweep.name, sweep_dict, len(trials),
                                                  tags=_code_tags()), options)
    record = state.SweepRecord(
        name=sweep.name, sweep_file=sweep_file, experiment=sweep.experiment_name, tracking_uri=tracking_uri,
        parent_run_id=parent, storage_path=storage, experiment_path=f"{storage.rstrip('/')}/{experiment_dir}",
        trials=[{"id": t.id, "name": t.name, "iterations": t.spec.optim.iterations} for t in trials],
        address=options.address, samples=sweep.search.num_samples if sweep.search.kind == "optuna" else None,
        iterations_per_sample=sweep.base.optim.iterations, records_root=_records_root(sweep.name, storage,
                                                                                      experiment_dir))
    state.save(record, sweep_dict)
    return drive(record, _tuner_factory(sweep, trials, record, options), resume=False)


def resume(name: str, options: LaunchOptions) -> int:
    """Continue the launch of `name`: bring MLflow up to date from the trials' records (a finished sweep's too),
    then train the trials not done, each from its own latest checkpoint, in the same experiment directory and
    parent run. Finished trials never run again; their child runs are never duplicated."""
    from orchestrator.specs.reading import sweep_from_dict
    from orchestrator.tracking.writer import Tracker
    from resnet_core import yaml12

    record = state.load(name)
    state.check_not_running(name)
    finished = record.effective_state() == "finished"
    if finished and not record.mlflow_behind:
        raise CliError(f"sweep {name!r} finished already; `resnet-sweep run {record.sweep_file}` launches it again")
    if not _tracking_reachable(record.tracking_uri, "resume"):
        return 1
    sweep = sweep_from_dict(yaml12.load(record.sweep_copy.read_text()))
    searched = sweep.search.kind == "optuna"
    if searched:  # the trials its searcher handed out, as it saved them (running/search.py)
        from orchestrator.running.search import handed_out

        trials = handed_out(record.records)
    else:
        trials = expand(sweep)
    histories = {t.id: trial_record.read(trial_record.record_path(record.records, t.to_dict())) for t in trials}
    tracker = Tracker(record.tracking_uri)
    behind = tracker.sync_trials(record.parent_run_id, record.records,
                                 [t.to_dict() for t in trials if histories[t.id].state != "pending"])
    if behind:
        print("resnet-sweep resume: MLflow could not be brought up to date, nothing was started:\n"
              + "".join(f"  {line}\n" for line in behind), file=sys.stderr, end="")
        return 1
    if finished:
        tracker.end_sweep(record.parent_run_id, "finished")
        state.update(name, mlflow_behind=[])
        print(f"MLflow is up to date with the trials' records of {name!r} (parent run {record.parent_run_id})")
        return 0
    state.update(name, mlflow_behind=[])
    remaining = [t for t in trials if not histories[t.id].done]
    options = LaunchOptions(options.address or record.address, options.num_cpus, record.storage_path,
                            record.tracking_uri)
    _check_where_trials_run(sweep, remaining + (probe_trials(sweep) if searched else []), record.sweep_file,
                            options.address, options.num_cpus)  # a search's new samples: its space's ends
    earlier = [{"config": {"trial": t.to_dict()}, "last_result": _last_result(histories[t.id]),
                "status": "TERMINATED"} for t in trials if histories[t.id].done]
    factory = _tuner_factory(sweep, remaining, record, options,
                             before=lambda: tracker.reopen_sweep(record.parent_run_id),
                             restore_from=lambda: _object_storage_checkpoints(record, remaining), resumed=True)
    samples_left = searched and len(trials) < (sweep.search.num_samples or 0)
    return drive(record, factory if remaining or samples_left else None, resume=True, earlier=earlier)


def _tuner_factory(sweep: SweepSpec, trials: list[Trial], record: state.SweepRecord, options: LaunchOptions,
                   before: Callable[[], None] = lambda: None,
                   restore_from: Callable[[], dict[str, str]] = dict, resumed: bool = False) -> Callable[[], Any]:
    """The one Tuner a launch and a resume both build, made when `drive` is ready for it: Ray started (a no-op
    when it already is), each trial's resources fitted to the cluster, `before()` done, the MLflow callback
    writing to the launch's parent run; `resumed`: a search continues from the state saved with its records."""

    def build() -> Any:
        from orchestrator.running.mlflow_callback import MlflowSweepCallback
        from orchestrator.running.progress import ProgressCallback
        from orchestrator.running.resources import init_ray, trial_resources
        from orchestrator.running.tune_runner import build_tuner

        init_ray(options.address, options.num_cpus)
        resources, note = trial_resources(sweep)
        if note:
            print(f"note: {note}")
        before()
        from orchestrator.running.retries import RetryLines, quiet_tune_tracebacks

        quiet_tune_tracebacks()
        mirror_to = record.experiment_path if record.records_root else None  # object storage (trial_record)
        callbacks = [MlflowSweepCallback(record.tracking_uri, record.parent_run_id, record.records, sweep.name,
                                         mirror_to),
                     ProgressCallback(f"Sweep {sweep.name}"),
                     RetryLines(record.records, sweep.max_failures, state.launch_log(sweep.name))]
        experiment_dir = record.experiment_path.rstrip("/").rpartition("/")[2]
        return build_tuner(sweep, trials, resources, record.storage_path, experiment_dir, callbacks, restore_from(),
                           record.records, resumed)

    return build


def _check_where_trials_run(sweep: SweepSpec, trials: list[Trial], sweep_file: str, address: str | None,
                            num_cpus: int | None, storage: str | None = None) -> None:
    """Refuse, with nothing begun, storage some node cannot see or data missing where the trials run: on a
    cluster that means joining it first and looking from every node; a local Ray looks here."""
    from orchestrator.running.data_check import check_sweep_data

    on_cluster = bool(address or os.environ.get("RAY_ADDRESS"))
    if on_cluster:
        from orchestrator.running.cluster import check_shared_storage
        from orchestrator.running.resources import init_ray

        init_ray(address, num_cpus)
        if storage is not None:
            check_shared_storage(storage)
    check_sweep_data(sweep, trials, sweep_file, on_cluster)
    _check_trials_fit(sweep, trials, on_cluster)


def _check_trials_fit(sweep: SweepSpec, trials: list[Trial], on_cluster: bool) -> None:
    """Refuse a trial that cannot fit in the share of a GPU it will get, as `plan` does, where the GPUs' memory is
    known (this machine's GPU, else its GPU profile). Trials on CPUs have no such limit: a local Ray without a
    GPU runs every trial on the CPU."""
    import torch

    share, gpu_here = sweep.resources.worker_gpu, torch.cuda.is_available()
    if share == 0 or (share is None or not on_cluster) and not gpu_here:
        return
    from orchestrator.specs.plan import Throughput, check_fits, gpu_memory_here, plan_trial

    gpu_memory = gpu_memory_here()
    if gpu_memory:
        check_fits(sweep, tuple(plan_trial(i, t, Throughput.assumed_gpu(), sweep.resources.workers)
                                for i, t in enumerate(trials)), gpu_memory)


def _note_interrupted_launch(name: str) -> None:
    previous = state.find(name)
    if previous is not None and previous.effective_state() == "interrupted":
        print(f"note: the interrupted launch of {name!r} ({previous.created}) stays in MLflow; this is a new "
              f"launch (`resnet-sweep run` without `--new-launch`, or `resnet-sweep resume {name}`, would have "
              f"continued it)")


def _tracking_reachable(tracking_uri: str, command: str) -> bool:
    """False (with the reason on stderr) when the tracking server does not answer within seconds: checked
    before Ray starts or any record changes, so nothing is half-started."""
    from orchestrator.tracking.server import TrackingUnreachable, check_reachable

    try:
        check_reachable(tracking_uri)
    except TrackingUnreachable as err:
        print(f"resnet-sweep {command}: {err}; nothing was started (start the server, or pass another "
              f"--tracking-uri)", file=sys.stderr)
        return False
    return True


def _storage_location(storage: str | None) -> str:
    """Ray Tune's storage root: a URI as given, a path made absolute (every trial process resolves it alike)."""
    location = storage or str(state.default_storage())
    return location if "://" in location else str(Path(location).expanduser().resolve())


def _records_root(name: str, storage: str, experiment_dir: str) -> str:
    """Where the trials' records go: "" for the experiment directory when storage is a file system (the trials
    write them there themselves), else a folder of the sweep's state directory that the driver writes."""
    return "" if trial_record.shared_state_dir(storage, experiment_dir) else str(state.sweep_dir(name) / experiment_dir)


def _object_storage_checkpoints(record: state.SweepRecord, trials: list[Trial]) -> dict[str, str]:
    """On object storage a trial cannot find its own latest checkpoint: Tune's newest one of each, by listing."""
    from orchestrator.running.tune_runner import newest_tune_checkpoint

    if not record.records_root:
        return {}
    return {t.id: uri for t in trials if (uri := newest_tune_checkpoint(record.experiment_path, t.to_dict()))}


def _start_parent_while_ray_starts(start_parent: Callable[[], str], options: LaunchOptions) -> str:
    """Run `start_parent()` (the MLflow parent run; on a new SQLite store MLflow's import and table creation take
    seconds), then import Ray Tune (1-2 s), on a thread while the local Ray starts here, which is mostly waiting
    for Ray's processes: start-up costs the longest of these, not their sum. No trial starts before all are
    done; if MLflow fails, Ray is shut down again."""
    import threading

    from orchestrator.running.resources import init_ray

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["run_id"] = start_parent()
            import ray.tune  # noqa: F401  for the driver's next step
        except BaseException as err:  # noqa: BLE001  raised again below, in the main thread
            outcome["error"] = err

    thread = threading.Thread(target=work, name="mlflow-parent-run")
    thread.start()
    try:
        init_ray(options.address, options.num_cpus)
    finally:
        thread.join()
    if "error" in outcome:
        import ray

        ray.shutdown()
        raise outcome["error"]
    return outcome["run_id"]


def _code_tags() -> dict[str, str]:
    """Version tags of the parent run: package version and the git commit of the working tree, if any."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    tags = {}
    try:
        tags[VERSION] = version("resnet-sweeps")
    except PackageNotFoundError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=__file__.rsplit("/orchestrator/", 1)[0])
        if commit.returncode == 0:
            tags[GIT_COMMIT] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


def _last_result(history: trial_record.History) -> dict[str, Any]:
    """A Tune-like last result of a trial done in an earlier launch, for the closing summary's row."""
    last = dict(history.epochs[-1]) if history.epochs else {}
    if history.state == "finished":
        return {**last, "final": True}
    if history.state == "stopped":
        return last  # not final: stopped by the scheduler
    return {**last, "state": history.state, "final": True,
            **{k: history.end[k] for k in ("error", "diverged_at_iteration") if k in history.end}}
