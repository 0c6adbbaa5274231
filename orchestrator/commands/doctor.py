"""`resnet-sweep doctor [SWEEP.yaml] [--gpu]`: the first command on a new machine or cluster. One table of checks
(stack, GPUs, Ray, MLflow, storage, the sweep's data; with --gpu the GPU path proved on this GPU, which writes the
machine profile `plan` and `run` use); exit 0 when nothing failed, else 1 naming what did."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", metavar="SWEEP.yaml", nargs="?", help="also check this sweep's data is present")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="change the sweep as `run --set` does (repeatable)")
    parser.add_argument("--address", help="a Ray cluster to check (default: RAY_ADDRESS, else a local Ray here)")
    parser.add_argument("--tracking-uri", help="the MLflow tracking URI to check (default: ./mlruns.db)")
    parser.add_argument("--storage", help="the trials' storage to check (default: $RESNET_SWEEPS_HOME/ray_results)")
    parser.add_argument("--gpu", action="store_true",
                        help="prove the GPU path on this GPU (parity, speed, packing, memory; at most 7 minutes) and "
                             "write the machine profile")
    parser.add_argument("--tiny", action="store_true",
                        help="with --gpu: the GPU stages at tiny sizes on the CPU (their code path; a tiny-cpu "
                             "profile)")
    parser.add_argument("--out", metavar="DIR",
                        help="the GPU stages' report (default: $RESNET_SWEEPS_HOME/doctor, the latest check's)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace) -> int:
    from orchestrator.running.doctor import FAILED, DoctorOptions, as_json, diagnose

    options = DoctorOptions(args.address, args.tracking_uri, args.storage, args.sweep, tuple(args.sets), args.gpu,
                            args.tiny)
    from resnet_core.machine_profile import profiles_dir

    checks = diagnose(options, Path(args.out) if args.out else profiles_dir().parent / "doctor")
    failed = [c.name for c in checks if c.status == FAILED]
    if args.json:
        print(json.dumps(as_json(checks), indent=2, default=str))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="resnet-sweep doctor", title_justify="left")
        for col in ("check", "status", "detail"):
            table.add_column(col, overflow="fold")
        colour = {"ok": "green", "failed": "red", "skipped": "yellow"}
        for c in checks:
            table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail)
        Console(width=max(Console().width, 120)).print(table)
    if failed:
        print(f"resnet-sweep doctor: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
