"""`resnet-sweep`: one argparse sub-command per module in orchestrator/commands.

Each command module has `add_arguments(parser)` and `run(args) -> int` and keeps heavy imports (ray, mlflow)
inside `run`, so `resnet-sweep models` starts in a second. Exit codes: 0 success, 2 bad input, 1 failure at run
time.
"""
from __future__ import annotations

import argparse
import sys

from orchestrator.commands import doctor  # noqa: I001  the first command on a new machine
from orchestrator.commands import kuberay, models, plan, register, report, resume, run, status, submit, train
from orchestrator.errors import CliError
from resnet_core.specio import SpecError

# (command, module under orchestrator.commands, one-line help)
COMMANDS: list[tuple[str, object, str]] = [  # in the order of a sweep's life, then the single pieces
    ("doctor", doctor, "check this machine or cluster first: stack, GPUs, Ray, MLflow, storage, data; --gpu "
               "proves the GPU path and writes the machine profile"),
    ("run", run, "launch a sweep on Ray Tune (local Ray unless a cluster is given), tracked in MLflow"),
    ("plan", plan, "print a sweep's trials, their cost and an estimated GPU time; start nothing"),
    ("resume", resume, "continue an interrupted sweep; finished trials are not re-run"),
    ("status", status, "sweeps and their trials: state, progress, latest metrics (starts no Ray)"),
    ("report", report, "rebuild the papers' tables and figures from a sweep's MLflow runs (md, csv, tex, png)"),
    ("register", register, "register a sweep's best trial's model in the MLflow Model Registry, alias champion"),
    ("submit", submit, "run a sweep on a Ray cluster as a Ray Job; prints the job id and how to follow it"),
    ("kuberay", kuberay, "write the KubeRay RayJob that runs a sweep on Kubernetes (kubectl apply -f starts it)"),
    ("train", train, "train one trial in this process (no Ray, no MLflow): --set KEY=VALUE, --json"),
    ("models", models, "architectures with params and multiply-adds beside the papers' figures"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resnet-sweep", description="Re-run the ResNet and ResNeXt papers' experiments as sweeps: Ray Tune "
        "schedules the trials, MLflow records them, `report` rebuilds the papers' tables and figures.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (SpecError, CliError) as err:
        print(f"resnet-sweep {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a running sweep (which handles its own): no traceback
        print(f"resnet-sweep {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
