"""`resnet-sweep submit SWEEP.yaml --address http://HEAD:8265`: run the sweep on a Ray cluster as a Ray Job."""
from __future__ import annotations

import argparse
import sys

from orchestrator.errors import CliError
from orchestrator.commands._sweep_args import add_new_launch_argument, add_sweep_arguments, sweep_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--address", required=True, metavar="URL",
                        help="the cluster's Ray Jobs address, e.g. http://127.0.0.1:8265 through `ray dashboard`")
    parser.add_argument("--tracking-uri", required=True, metavar="URI",
                        help="MLflow tracking server the head node reaches (e.g. http://127.0.0.1:5000 on the head)")
    parser.add_argument("--storage", default=None, metavar="URI",
                        help="trial checkpoints: s3://... or a path every node mounts; a multi-node cluster "
                             "refuses storage some node cannot see")
    add_new_launch_argument(parser)
    parser.add_argument("--follow", action="store_true", help="stream the job's logs until it ends")


def run(args: argparse.Namespace) -> int:
    sweep = sweep_from_args(args)  # bad input exits 2 here: nothing is submitted
    if not args.address.startswith(("http://", "https://")):
        raise CliError(f"--address {args.address!r}: expected the Ray Jobs URL, http://HEAD:8265")
    refuse_password(args.tracking_uri)
    from orchestrator.running.jobs import follow, submit

    try:
        submission = submit(sweep, args.address, args.tracking_uri, args.storage, args.new_launch)
    except ConnectionError as err:
        print(f"resnet-sweep submit: cannot reach Ray Jobs at {args.address}: {err}", file=sys.stderr)
        return 1
    print(f"submitted sweep {sweep.name} as Ray job {submission.job_id}")
    print(f"  follow: ray job logs --address {args.address} --follow {submission.job_id}")
    print(f"  status: resnet-sweep status {sweep.name}")
    if not args.follow:
        return 0
    final = follow(args.address, submission.job_id)
    print(f"job {submission.job_id}: {final}")
    return 0 if final == "SUCCEEDED" else 1


def refuse_password(tracking_uri: str) -> None:
    """The tracking URI goes into the Ray job's entrypoint, which anyone who can list the cluster's jobs reads
    (dashboard, `ray job list`), and into the job's logs: a password in it would leak there."""
    from urllib.parse import urlparse

    from orchestrator.tracking.uris import redact_uri

    if urlparse(tracking_uri).password is not None:
        raise CliError(f"--tracking-uri {redact_uri(tracking_uri)}: a password in the URI would be stored in the "
                       "Ray job's entrypoint, which anyone who can list the cluster's jobs reads; pass the URI "
                       "without it and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the head "
                       "node's environment (MLflow reads them)")
