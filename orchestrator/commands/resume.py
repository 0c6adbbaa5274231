"""`resnet-sweep resume NAME`: continue an interrupted sweep. MLflow is first brought up to date from the trials'
records (what an earlier driver could not send, a finished sweep's too); then a fresh Ray Tune run, in the same
experiment directory and MLflow parent run, trains the trials that have not finished or diverged, each from its
own latest checkpoint. Finished trials never run again; their child runs are never duplicated."""
from __future__ import annotations

import argparse

from orchestrator.commands.run import add_runtime_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the sweep's name (`resnet-sweep status` lists them)")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from orchestrator.running.launch import LaunchOptions, resume

    return resume(args.name, LaunchOptions(address=args.address, num_cpus=args.num_cpus))
