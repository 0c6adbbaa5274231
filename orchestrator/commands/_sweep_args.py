"""Arguments that `run`, `submit` and `plan` share: the sweep file, `--set KEY=VALUE` items, `--new-launch`."""
from __future__ import annotations

import argparse

from orchestrator.specs.reading import load_sweep
from orchestrator.specs.sweep import SweepSpec


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", metavar="SWEEP.yaml", help="sweep file (see sweeps/)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="change the sweep: a sweep key (seeds=[0,1], base.optim.lr=0.01, grid.model.depth=[20]) "
                             "or a trial key path, which sets base (optim.iterations=100) or replaces the grid's "
                             "values when the grid varies it; VALUE is YAML")


def sweep_from_args(args: argparse.Namespace) -> SweepSpec:
    return load_sweep(args.sweep, args.sets)


def add_new_launch_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--new-launch", action="store_true",
                        help="start a new launch even when an unfinished one of the same sweep is in the same "
                             "storage (without it, running the same command again continues that launch: a "
                             "retried job, a driver that came back on another machine)")
