"""`resnet-sweep train [--set KEY=VALUE ...] [--json]`: one trial in this process, no Ray, no MLflow.

The keys are a sweep trial's (`model.depth=110`, `optim.warmup={lr: 0.01}`, `data.dataset=synthetic`); values
are YAML. One line per epoch goes to stdout; with --json the last line is the final metrics as one JSON object.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

from resnet_core.specio import SpecError, check_key_path, parse_set_item, set_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a trial setting by key path, e.g. model.depth=56 or optim.iterations=100; "
                             "VALUE is YAML (repeatable)")
    parser.add_argument("--json", action="store_true", help="end with the final metrics as one JSON line")
    parser.add_argument("--checkpoint-dir", metavar="DIR", help="keep the latest checkpoint here (every epoch)")
    parser.add_argument("--resume", metavar="DIR", help="continue from the checkpoint in DIR")


def trial_from_sets(sets: Sequence[str]):
    """A TrialSpec from `--set` items; unknown keys and bad values are SpecErrors naming the key path."""
    from resnet_core.spec import TrialSpec

    data: dict[str, Any] = {}
    for item in sets:
        key, value = parse_set_item(item, "model.depth=20")
        try:
            check_key_path(TrialSpec, key)
        except SpecError as err:
            raise err.in_file("--set") from None
        data = set_path(data, key, value)
    try:
        return TrialSpec.from_dict(data)
    except SpecError as err:
        raise err.in_file("--set") from None


def epoch_line(m: dict[str, Any]) -> str:
    val = f"  val err {m['val_error']:6.2%}" if "val_error" in m else ""
    return (f"epoch {m['epoch']:>3}/{m['epochs']}  iter {m['iteration']:>6}  loss {m['train_loss']:.4f}  "
            f"train err {m['train_error']:6.2%}  test err {m['test_error']:6.2%}{val}  lr {m['lr']:.4g}  "
            f"{m['images_per_sec']:,.0f} img/s  {m['epoch_time']:.1f} s")


def run(args: argparse.Namespace) -> int:
    import sys

    from resnet_core.checkpoint import CheckpointWriteError
    from resnet_core.failures import DivergedError
    from resnet_core.train import train

    spec = trial_from_sets(args.sets)
    print(f"training {spec.model.name} on {spec.data.dataset}: {spec.optim.iterations} iterations, "
          f"batch {spec.optim.batch_size}, seed {spec.seed}", flush=True)
    final: dict[str, Any] = {}
    try:
        for metrics in train(spec, checkpoint_dir=args.checkpoint_dir, resume_from=args.resume):
            print(epoch_line(metrics), flush=True)
            final = metrics
    except DivergedError as err:
        print(f"resnet-sweep train: {err}", file=sys.stderr)
        if args.json:
            print(json.dumps({"diverged": True, "iteration": err.iteration}))
        return 1
    except CheckpointWriteError as err:  # storage, not input: exit 1, the message names the file and the reason
        print(f"resnet-sweep train: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(final))
    return 0
