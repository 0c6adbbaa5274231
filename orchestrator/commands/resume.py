"""`resnet-sweep resume NAME`: continue an interrupted sweep. MLflow is first brought up to date from the trials'
records (what an earlier driver could not send, a finished sweep's too); then a fresh Ray Tune run, in the same
experiment directory and MLflow parent run, trains the trials that have not finished or diverged, each from its
own latest checkpoint. Finished trials never run again; their child runs are never duplicated."""
from __future__ import annotations

import argparse
import os

from orchestrator.commands.run import add_runtime_arguments, tracking_reachable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the sweep's name (`resnet-sweep status` lists them)")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from orchestrator.records import state, trial_record
    from orchestrator.errors import CliError
    from orchestrator.running.data_check import check_sweep_data
    from orchestrator.running.driver import check_not_running, drive
    from orchestrator.tracking.writer import Tracker
    from orchestrator.specs.sweep import expand, sweep_from_dict
    from resnet_core import yaml12

    record = state.load(args.name)
    check_not_running(args.name)
    finished = record.effective_state() == "finished"
    if finished and not record.mlflow_behind:
        raise CliError(f"sweep {args.name!r} finished already; `resnet-sweep run {record.sweep_file}` "
                       "launches it again")
    if not tracking_reachable(record.tracking_uri, "resume"):  # before Ray starts or the record changes
        return 1
    sweep = sweep_from_dict(yaml12.load(record.sweep_copy.read_text()))
    if sweep.search.kind == "optuna":
        raise CliError(f"sweep {args.name!r} searches with optuna: `resume` cannot continue a search (the "
                       f"sampler's study lives in the driver that stopped); its finished trials stay in MLflow, and "
                       f"`resnet-sweep run {record.sweep_file}` starts a new search")
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
        state.update(args.name, mlflow_behind=[])
        print(f"MLflow is up to date with the trials' records of {args.name!r} (parent run {record.parent_run_id})")
        return 0
    state.update(args.name, mlflow_behind=[])
    remaining = [t for t in trials if not histories[t.id].done]
    address = args.address or record.address
    on_cluster = bool(address or os.environ.get("RAY_ADDRESS"))
    if on_cluster:  # the data must be where the trials run: look there, before anything is reopened
        from orchestrator.running.resources import init_ray

        init_ray(address, args.num_cpus)
    check_sweep_data(sweep, remaining, record.sweep_file, on_cluster)
    earlier = [{"config": {"trial": t.to_dict()}, "last_result": _last_result(histories[t.id]), "status": "TERMINATED"}
               for t in trials if histories[t.id].done]
    storage, _, experiment_dir = record.experiment_path.rstrip("/").rpartition("/")

    def tuner_factory():
        from orchestrator.running.mlflow_callback import MlflowSweepCallback
        from orchestrator.running.progress import ProgressCallback
        from orchestrator.running.resources import init_ray, trial_resources
        from orchestrator.running.tune_runner import build_tuner, newest_tune_checkpoint

        init_ray(address, args.num_cpus)
        resources, note = trial_resources(sweep)
        if note:
            print(f"note: {note}")
        tracker.reopen_sweep(record.parent_run_id)
        restore_from = {}
        if record.records_root:  # object storage: Tune's newest checkpoint of each trial, found by listing
            restore_from = {t.id: uri for t in remaining
                            if (uri := newest_tune_checkpoint(record.experiment_path, t.to_dict()))}
        callbacks = [MlflowSweepCallback(record.tracking_uri, record.parent_run_id, record.records, sweep.name),
                     ProgressCallback(f"Sweep {sweep.name}")]
        return build_tuner(sweep, remaining, resources, storage, experiment_dir, callbacks, restore_from)

    return drive(record, tuner_factory if remaining else None, resume=True, earlier=earlier)


def _last_result(history) -> dict:
    """A Tune-like last result of a trial done in an earlier launch, for the closing summary's row."""
    last = dict(history.epochs[-1]) if history.epochs else {}
    if history.state == "finished":
        return {**last, "final": True}
    if history.state == "stopped":
        return last  # not final: stopped by the scheduler
    return {**last, "state": history.state, "final": True,
            **{k: history.end[k] for k in ("error", "diverged_at_iteration") if k in history.end}}
