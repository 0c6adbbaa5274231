"""`resnet-sweep plan SWEEP.yaml`: every trial, its params and multiply-adds, iterations and an estimated training
time where `run` would train it (this CPU, or a GPU); starts nothing (no Ray, no MLflow, no data needed)."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from orchestrator.commands._sweep_args import add_sweep_arguments, sweep_from_args
from orchestrator.errors import CliError

if TYPE_CHECKING:
    from orchestrator.specs.sweep import SweepSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--device", choices=["cpu", "gpu"], default=None,
                        help="estimate for this kind of device (default: where `run` would train here: the GPU "
                             "when this machine has one and the sweep asks for it, else this CPU)")
    parser.add_argument("--throughput", type=float, default=None, metavar="IMAGES_PER_SEC",
                        help="ResNet-20 training images/s on that device, to scale the estimate (default: the "
                             "machine profile `resnet-sweep doctor --gpu` measured for a GPU, else an assumed 50k on "
                             "an H100; on a CPU, a short calibration here)")
    parser.add_argument("--gpu-memory", type=float, default=None, metavar="GIB",
                        help="each GPU's memory, to check every trial fits in its share (default: this machine's "
                             "GPU, else the machine profile's)")


def run(args: argparse.Namespace) -> int:
    from orchestrator.specs.plan import Throughput, human_seconds, plan_sweep

    if args.throughput is not None and args.throughput <= 0:
        raise CliError(f"--throughput: got {args.throughput}, expected a positive number of images/s")
    if args.gpu_memory is not None and args.gpu_memory <= 0:
        raise CliError(f"--gpu-memory: got {args.gpu_memory}, expected a positive number of GiB")
    sweep = sweep_from_args(args)
    given = None
    if args.throughput is not None:
        given = Throughput.given(args.device or _device(sweep), args.throughput)
    plan = plan_sweep(sweep, given, args.device, args.gpu_memory * 2**30 if args.gpu_memory else None)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    where = plan.device.upper()
    count = f"{len(plan.trials)} trials"
    if sweep.search.kind == "optuna":
        count = (f"{sweep.search.num_samples} trials sampled by {sweep.search.kind} from "
                 f"{', '.join(f'{d.key} ({d.kind} {d.values})' for d in sweep.search.space)}; below, the space's ends")
    table = Table(title=f"Sweep {plan.sweep}: {count} (MLflow experiment {plan.experiment!r})")
    for col in ("#", "trial", "id", "params", "mult-adds", "iterations", "batch", "epochs", "peak memory",
                f"est. {where} time"):
        table.add_column(col, justify="left" if col in ("trial", "id") else "right", no_wrap=True)
    for t in plan.trials:
        table.add_row(str(t.index), t.name, t.id, f"{t.params / 1e6:.2f}M", f"{t.macs / 1e6:,.0f}M",
                      f"{t.iterations:,}", str(t.batch_size), f"{t.epochs:g}",
                      f"{t.peak_memory_bytes / 2**30:.2f} GiB", human_seconds(t.est_seconds))
    console = Console(width=max(Console().width, 110))
    console.print(table)
    gpu = "1 when the cluster has GPUs, else 0" if plan.resources["gpu"] is None else f"{plan.resources['gpu']:g}"
    each = f"cpu {plan.resources['cpu']:g}, gpu {gpu}"
    if plan.resources["workers"] > 1:
        each = f"{plan.resources['workers']} data-parallel workers of {each} each"
    console.print(f"resources per trial: {each}; scheduler {plan.scheduler}, search {plan.search}")
    fits = f", each fits its share of a {plan.gpu_memory_bytes / 2**30:.0f} GiB GPU" if plan.gpu_memory_bytes else ""
    console.print(f"peak memory: weights, gradients, momentum, saved activations and the data on the device, "
                  f"computed from each model at its batch size and precision{fits}")
    if plan.device == "cpu":
        console.print(f"estimated time on this CPU: {human_seconds(plan.est_wall_seconds)} with trials side by "
                      f"side on its cores ({human_seconds(plan.est_seconds)} one after another); an estimate from "
                      f"{plan.throughput_source}; `--device gpu` estimates GPU time")
    else:
        console.print(f"estimated GPU time, trials one after another: {human_seconds(plan.est_seconds)} "
                      f"(an estimate from {plan.throughput_source}; packed trials finish sooner)")
    return 0


def _device(sweep: SweepSpec) -> str:
    import torch

    from orchestrator.specs.plan import estimate_device

    return estimate_device(sweep, torch.cuda.is_available())
