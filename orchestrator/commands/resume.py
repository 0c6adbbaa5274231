"""`resnet-sweep resume NAME`: continue an interrupted sweep. Finished trials are never re-run, unfinished and
errored ones continue from their last checkpoint, and MLflow keeps the same parent and child runs. MLflow writes
an earlier driver kept because the tracking server was down at its end are sent first (a finished sweep too)."""
from __future__ import annotations

import argparse
import os

from orchestrator.commands.run import add_runtime_arguments, tracking_reachable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the sweep's name (`resnet-sweep status` lists them)")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from orchestrator import state
    from orchestrator.cli import CliError
    from orchestrator.data_check import check_sweep_data
    from orchestrator.driver import check_not_running, drive
    from orchestrator.sweep import expand, sweep_from_dict

    record = state.load(args.name)
    check_not_running(args.name)
    kept = sorted(state.sweep_dir(args.name).glob("mlflow-unsent-*.json"))  # see mlflow_callback.unsent_file
    if record.effective_state() == "finished" and not kept:
        raise CliError(f"sweep {args.name!r} finished already; `resnet-sweep run {record.sweep_file}` "
                       "launches it again")
    if not tracking_reachable(record.tracking_uri, "resume"):  # before Ray starts or the record changes
        return 1
    if kept:  # MLflow writes an earlier driver could not send: first, so the runs are complete before trials go on
        from orchestrator.mlflow_callback import send_unsent

        sent = send_unsent(args.name)
        if record.effective_state() == "finished":
            return 0 if sent else 1
    from resnet_core import yaml12

    sweep = sweep_from_dict(yaml12.load(record.sweep_copy.read_text()))
    if sweep.search.kind == "optuna":
        raise CliError(f"sweep {args.name!r} searches with optuna: `resume` cannot continue a search (the "
                       f"sampler's study lives in the driver that stopped); its finished trials stay in MLflow, and "
                       f"`resnet-sweep run {record.sweep_file}` starts a new search")
    address = args.address or record.address
    on_cluster = bool(address or os.environ.get("RAY_ADDRESS"))
    if on_cluster:  # the data must be where the trials run: look there, before anything is reopened
        from orchestrator.tune_runner import init_ray

        init_ray(address, args.num_cpus)
    check_sweep_data(sweep, expand(sweep), record.sweep_file, on_cluster)

    def tuner_factory():
        from ray import tune

        from orchestrator.mlflow_callback import MlflowSweepCallback, unsent_file
        from orchestrator.progress import ProgressCallback
        from orchestrator.tracking import Tracker
        from orchestrator.tune_runner import build_tuner, init_ray, restore_tuner, trial_resources

        init_ray(address, args.num_cpus)
        resources, note = trial_resources(sweep)
        if note:
            print(f"note: {note}")
        Tracker(record.tracking_uri).reopen_sweep(record.parent_run_id)
        if tune.Tuner.can_restore(record.experiment_path):
            return restore_tuner(record.experiment_path, resources)
        # Killed before Tune saved anything: start the same experiment afresh (same parent run, same trials).
        callbacks = [MlflowSweepCallback(record.tracking_uri, record.parent_run_id,
                                         str(unsent_file(sweep.name, record.parent_run_id))),
                     ProgressCallback(f"Sweep {sweep.name}")]
        storage, _, experiment_dir = record.experiment_path.rstrip("/").rpartition("/")
        return build_tuner(sweep, expand(sweep), resources, storage, experiment_dir, callbacks)

    return drive(record, tuner_factory, resume=True)
