"""`resnet-sweep kuberay SWEEP.yaml --image IMAGE --storage URI --tracking-uri URI`: write the KubeRay RayJob
(and the ConfigMap holding the sweep) that runs the sweep on Kubernetes; `kubectl apply -f` starts it."""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from orchestrator.commands._sweep_args import add_sweep_arguments, sweep_from_args
from orchestrator.commands.submit import refuse_password
from orchestrator.running.kuberay import KubeRayOptions, manifests, to_yaml

HOW_TO_APPLY = """\
  kubectl apply -f {file}   # start the sweep (KubeRay 1.6 or later)
  kubectl get rayjob {name}   # its state
  kubectl logs -f job/{name}   # the driver's output
  kubectl delete -f {file}   # stop it; the results stay in MLflow and on the storage"""
DEFAULTS = {f.name: f.default for f in dataclasses.fields(KubeRayOptions)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--image", required=True, metavar="IMAGE",
                        help="the project's image, built from deploy/kuberay/Dockerfile, with a fixed tag")
    parser.add_argument("--storage", required=True, metavar="URI",
                        help="trial checkpoints and the launch's state: s3://... (gs://...), or a path under "
                             "--volume's mount")
    parser.add_argument("--tracking-uri", required=True, metavar="URI",
                        help="the MLflow server as the head reaches it, e.g. http://mlflow:5000 "
                             "(deploy/kuberay/mlflow.yaml)")
    parser.add_argument("--volume", metavar="CLAIM:MOUNT",
                        help="a ReadWriteMany PersistentVolumeClaim mounted at MOUNT on every pod (storage, data)")
    parser.add_argument("--service-account", metavar="NAME",
                        help="the pods' service account, e.g. one allowed to use the bucket (no keys in manifests)")
    parser.add_argument("--tracking-secret", metavar="SECRET",
                        help="a Secret with keys username and password for the tracking server (head only)")
    for flag, meaning in (("max-workers", "GPU worker pods at most"), ("gpus-per-worker", "GPUs of each worker pod"),
                          ("worker-cpus", "CPUs of each worker pod"),
                          ("backoff-limit", "KubeRay's retries of a failed job, each continuing the launch")):
        parser.add_argument(f"--{flag}", type=int, metavar="N",
                            help=f"{meaning} ({DEFAULTS[flag.replace('-', '_')]})")
    parser.add_argument("--worker-memory", metavar="QUANTITY",
                        help=f"memory of each worker pod ({DEFAULTS['worker_memory']})")
    parser.add_argument("--name", help="the RayJob's name (default: the sweep's name)")
    parser.add_argument("--out", metavar="FILE", help="write here instead of to stdout")


def run(args: argparse.Namespace) -> int:
    sweep = sweep_from_args(args)  # bad input exits 2 here: nothing is written
    refuse_password(args.tracking_uri)
    given = {key: getattr(args, key) for key in DEFAULTS if getattr(args, key) is not None}
    documents = manifests(sweep, str(args.sweep), KubeRayOptions(**given))
    name = documents[-1]["metadata"]["name"]
    how = HOW_TO_APPLY.format(file=args.out or "FILE", name=name)
    header = (f"Sweep {sweep.name} on Kubernetes: the sweep as a ConfigMap and the RayJob that runs it, written by\n"
              f"  {_command_line(args, given)}\n\n{how}")
    text = to_yaml(documents, header)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    Path(args.out).write_text(text)
    print(f"wrote {args.out}: the RayJob {name} and its sweep\n{how}")
    return 0


def _command_line(args: argparse.Namespace, given: dict) -> str:
    """The command as typed (options in one order), to write the same file again."""
    words = ["resnet-sweep", "kuberay", str(args.sweep)] + [w for item in args.sets for w in ("--set", item)]
    for key, value in given.items():
        words += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(words)
