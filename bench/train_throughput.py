"""Training throughput: this project's trainer vs a conventional one, same model and batch, on this machine.

    python bench/train_throughput.py                 # ResNet-20/56/110 (and 1202 on a GPU), appends to RESULTS.md
    python bench/train_throughput.py --depths 20 --steps 10 --no-record

Ours is `resnet_core.train.train` itself on synthetic CIFAR-shaped data (data on the device, batched on-device
augmentation; on CUDA bf16 autocast, channels_last, fused SGD, CUDA graphs); the conventional trainer
(bench/conventional.py) sees the same images. The two run in alternating timed windows after an untimed one
(compilation, CUDA-graph capture, worker start-up), and the best window of each is kept.
Targets on one H100: ResNet-20 >= 10x the conventional trainer's images/s; ResNet-1202 at batch 128
within 40 GB. On a CPU both trainers run eager fp32, so a ratio near 1 is the expected outcome there.
`--cuda-graph step` times the whole-step CUDA graph (runtime.cuda_graph); on a CPU that step runs uncaptured.
bench/gpu_check.py is the one command that measures all GPU modes and packing within 7 minutes.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from bench.conventional import ConventionalTrainer, default_workers  # noqa: E402
from resnet_core.data import synthetic  # noqa: E402
from resnet_core.runtime import resolve_runtime  # noqa: E402
from resnet_core.spec import DataSpec, ModelSpec, RuntimeSpec, TrialSpec  # noqa: E402
from resnet_core.train import train  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Measurement:
    images_per_sec: float  # best timed window
    peak_memory_bytes: int | None  # CUDA's peak allocation in this trainer's windows; None on a CPU


@dataclass(frozen=True)
class Row:
    depth: int
    batch: int
    steps: int
    repeats: int
    conventional: Measurement
    ours: Measurement

    @property
    def ratio(self) -> float:
        return self.ours.images_per_sec / self.conventional.images_per_sec


def compare(depth: int, batch: int, steps: int, repeats: int, device: torch.device, workers: int | None,
            cuda_graph: str = "compiled") -> Row:
    """Both trainers on the same images, timed in alternating windows of `steps` iterations; best window kept.

    Ours is `train()` on a synthetic set of batch x steps images, so one of its epochs is one window; its first
    epoch (compilation, CUDA-graph capture) and the conventional trainer's first `steps` steps are not timed.
    """
    on_gpu = device.type == "cuda"
    train_set, _, classes = synthetic(DataSpec(dataset="synthetic", synthetic_train=batch * steps,
                                               synthetic_test=1), 32)
    spec = TrialSpec.from_dict({
        "model": {"depth": depth}, "runtime": {"device": device.type, "cuda_graph": cuda_graph},
        "data": {"dataset": "synthetic", "synthetic_train": batch * steps, "synthetic_test": batch},
        "optim": {"batch_size": batch, "iterations": (1 + repeats) * steps}})
    conventional = ConventionalTrainer(ModelSpec(depth=depth), train_set.images, train_set.labels, classes, batch,
                                       device, workers)
    ours = train(spec)
    best = {"conventional": 0.0, "ours": 0.0}
    peaks = {"conventional": 0, "ours": 0}

    def timed(name: str, window) -> float:
        """Run one window; track this trainer's peak CUDA allocation (the other's resident weights included)."""
        if on_gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        value = window()
        if on_gpu:
            peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated())
        return value

    timed("conventional", lambda: conventional.run(steps))  # untimed warm-up windows
    timed("ours", lambda: next(ours))
    for _ in range(repeats):
        best["conventional"] = max(best["conventional"], timed("conventional", lambda: conventional.window(steps)))
        best["ours"] = max(best["ours"], timed("ours", lambda: next(ours)["images_per_sec"]))
    peak = (lambda name: peaks[name] if on_gpu else None)
    return Row(depth, batch, steps, repeats, Measurement(best["conventional"], peak("conventional")),
               Measurement(best["ours"], peak("ours")))


def machine() -> dict[str, str]:
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": platform.platform(), "cpu": _cpu_name(), "cores": str(os.cpu_count()),
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg())}  # others' work skews CPU figures
    try:
        import torchvision
        info["torchvision"] = torchvision.__version__
    except ImportError:
        info["torchvision"] = "missing"
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(), cuda=str(torch.version.cuda),
                    cudnn=str(torch.backends.cudnn.version()))
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def table(rows: list[Row]) -> list[str]:
    lines = ["| model | batch | timed steps x windows | conventional img/s | ours img/s | ratio | conventional peak mem "
             "| ours peak mem |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| resnet{r.depth} | {r.batch} | {r.steps} x {r.repeats} | {r.conventional.images_per_sec:,.0f} | "
                     f"{r.ours.images_per_sec:,.0f} | {r.ratio:.2f}x | {_gib(r.conventional.peak_memory_bytes)} | "
                     f"{_gib(r.ours.peak_memory_bytes)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", help="default: 20 56 110, plus 1202 on a GPU")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, help="timed steps per trainer (default: 200 on a GPU, 10 on a CPU)")
    parser.add_argument("--repeats", type=int, help="timed windows per trainer, best kept (default: 1 on a GPU, "
                        "3 on a CPU, where other processes' bursts skew single windows)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--workers", type=int, help="conventional DataLoader workers (default: min(8, cores) "
                        "with a GPU, cores/2 on a CPU)")
    parser.add_argument("--cuda-graph", choices=["compiled", "step", "off"], default="compiled",
                        help="ours: runtime.cuda_graph (default: compiled, the trial default)")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    args = parser.parse_args(argv)

    runtime = resolve_runtime(RuntimeSpec(device=args.device, cuda_graph=args.cuda_graph))
    on_gpu = runtime.device.type == "cuda"
    depths = args.depths or ([20, 56, 110, 1202] if on_gpu else [20, 56, 110])
    steps = args.steps or (200 if on_gpu else 10)
    repeats = args.repeats or (1 if on_gpu else 3)
    info = machine()
    settings = (f"ours: {'bf16 autocast' if runtime.autocast_dtype else 'fp32'}, "
                f"{'channels_last' if runtime.channels_last else 'NCHW'}, "
                f"{'fused' if runtime.fused_optimizer else 'foreach'} SGD, "
                f"{'torch.compile reduce-overhead (CUDA graphs)' if runtime.cuda_graphs else 'eager'}"
                f"{', whole step as one CUDA graph' if runtime.step_graph else ''}"
                f"{', cuda_graph step uncaptured' if runtime.whole_step and not runtime.step_graph else ''}; "
                f"conventional: fp32 NCHW, torchvision transforms in "
                f"{args.workers if args.workers is not None else default_workers(runtime.device)} DataLoader "
                "workers, foreach SGD, loss.item() per step")
    print("  ".join(f"{k}={v}" for k, v in info.items()))
    print(f"device={runtime.device}  {settings}", flush=True)

    rows = []
    for depth in depths:
        rows.append(compare(depth, args.batch, steps, repeats, runtime.device, args.workers, args.cuda_graph))
        print(table(rows)[-1], flush=True)

    lines = table(rows)
    print("\n".join(lines))
    if not args.no_record:
        kind = f"GPU: {info['gpu']}" if on_gpu else f"CPU only ({info['cpu']}, {info['cores']} cores)"
        header = [f"## Training throughput, {info['date']}: {kind}", "",
                  "Versions: " + ", ".join(f"{k} {info[k]}" for k in ("python", "torch", "torchvision", "cuda",
                                                                      "cudnn") if k in info) + ".",
                  f"Host: {info['host']}; 1/5/15-minute load average at start: {info['load_average']}. Command: `python bench/train_throughput.py "
                  f"{' '.join(argv if argv is not None else sys.argv[1:])}`.", f"Settings: {settings}.", ""]
        previous = RESULTS.read_text() if RESULTS.exists() else ""
        with RESULTS.open("a") as f:
            if not previous:
                f.write("# Benchmarks, measured\n\nAppended by the scripts in bench/; newest last.\n\n")
            elif not previous.endswith("\n\n"):
                f.write("\n" if previous.endswith("\n") else "\n\n")
            note = ("images/s: best of the timed windows, the two trainers alternating; peak memory: CUDA's peak "
                    "allocation in each trainer's windows (not measured on a CPU).")
            f.write("\n".join(header + [note, ""] + lines) + "\n\n")
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
