"""`resnet-sweep run SWEEP.yaml`: launch a sweep here on Ray Tune (local Ray unless RAY_ADDRESS/--address),
tracked in MLflow (a SQLite store in the working directory unless --tracking-uri), with a live trial table."""
from __future__ import annotations

import argparse

from orchestrator.commands._sweep_args import add_new_launch_argument, add_sweep_arguments, sweep_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--storage", default=None, metavar="DIR_OR_URI",
                        help="Ray Tune storage for checkpoints and experiment state (a path every node sees, or "
                             "s3://...); default: $RESNET_SWEEPS_HOME/ray_results (~/.resnet_sweeps/ray_results)")
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: sqlite:///<working dir>/mlruns.db)")
    add_new_launch_argument(parser)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None, metavar="ADDRESS",
                        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray started here)")
    parser.add_argument("--num-cpus", type=int, default=None, metavar="N",
                        help="CPUs of the local Ray (default: all of this machine's)")


def run(args: argparse.Namespace) -> int:
    sweep = sweep_from_args(args)  # validates every trial: bad input exits 2 before anything starts
    from orchestrator.running.launch import LaunchOptions, launch

    return launch(sweep, str(args.sweep), LaunchOptions(address=args.address, num_cpus=args.num_cpus,
                                                        storage=args.storage, tracking_uri=args.tracking_uri),
                  new_launch=args.new_launch)
