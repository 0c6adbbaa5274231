"""`resnet-sweep register NAME [--metric METRIC] [--as MODEL] [--tracking-uri URI]`: the sweep's best trial's
model into the MLflow Model Registry, alias `champion`."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the sweep's name (its `name:`)")
    parser.add_argument("--metric", default="test_error", metavar="METRIC",
                        help="pick the trial with the lowest latest value of this metric (default test_error)")
    parser.add_argument("--as", dest="model_name", default=None, metavar="MODEL",
                        help="the registered model's name (default: the sweep's name)")
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: the one `run` recorded for NAME, else "
                             "MLFLOW_TRACKING_URI, else sqlite:///<working dir>/mlruns.db as `run` uses)")


def run(args: argparse.Namespace) -> int:
    from orchestrator.report.store import sweep_store
    from orchestrator.tracking.registry import register_best

    tracking_uri = sweep_store(args.name, args.tracking_uri)
    done = register_best(tracking_uri, args.name, args.metric, args.model_name)
    print(f"registered {done.name} version {done.version} (alias champion): the {done.kind} model of trial "
          f"{done.run_name} ({done.metric} {done.value:.4f}), LoggedModel {done.model_id}")
    print("load it in Python (input: images normalised as the trial's data.normalize, [N, 3, H, W] float32):")
    print(f"  import mlflow; mlflow.set_tracking_uri({tracking_uri!r})")
    print(f"  model = mlflow.pytorch.load_model({done.uri!r})")
    return 0
