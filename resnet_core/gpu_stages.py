"""The GPU path, proved and measured on the machine it will run on, in at most 7 minutes: the stages behind
`resnet-sweep doctor --gpu`, and the one command a GPU machine without this project's other dependencies runs:

    PYTHONPATH=. python3 -m resnet_core.gpu_stages --out DIR            # one CUDA GPU
    PYTHONPATH=. python3 -m resnet_core.gpu_stages --tiny --out DIR     # CPU, seconds: the same code, tiny sizes

Needs torch only (2.5 or later; no Ray, no MLflow, no YAML). Each stage runs in a process of its own under its own
time limit, inside a 7-minute budget; a stage that fails, times out or crashes is recorded and the next one runs.
DIR receives gpu_check.json and gpu_check.md (rewritten after every stage, so even a killed run leaves what it
had); stdout gets one line per stage. At the end the machine profile (machine_profile.py) is written to the state
directory: measured images/s per depth and mode, which modes passed parity, the best number of trials per GPU,
peak memory per trial. `--tiny` writes a profile of kind `tiny-cpu`, which `plan` labels and never takes for a
GPU's figures.

Stages: environment (GPU, driver, torch, CUDA, cuDNN); trial (a 3-epoch ResNet-20 trial through
`resnet_core.train` on synthetic data with checkpoints: metrics, the rung it trained on, time to the first epoch,
compiles, graph breaks, CUDA-graph skips, peak memory, and a resume from epoch 2 against the uninterrupted run);
parity (compiled and whole-step-graph against eager, fp32, 40 steps: losses, BN statistics, weights); throughput
(img/s at batch 128 for ResNet-20/56/110: eager, compiled, whole-step graph, and in a source checkout the
conventional trainer of bench/); packing (4 and 8 trial processes on the one GPU, total img/s; again under CUDA MPS
when nvidia-cuda-mps-control exists); resnet1202 (eager at batch 128: peak memory and img/s).
Targets, measured here and never asserted by tests: one ResNet-20 trial at least 10x the conventional trainer;
packed trials at least 300k img/s in total on one H100; ResNet-1202 within 40 GB.
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

TOTAL_SECONDS = 420  # the whole check, all stages: 7 minutes
# (stage, its own limit in seconds). Stages that no longer fit in what is left of TOTAL_SECONDS are cut short.
STAGES: list[tuple[str, float]] = [("environment", 20), ("trial", 100), ("parity", 75), ("throughput", 120),
                                   ("resnet1202", 45), ("packing", 60), ("packing_mps", 45)]
# fp32 (TF32 convolutions on CUDA) over 40 chaotic SGD steps: close, not bitwise; the largest relative loss difference
PARITY_TOLERANCE = 1e-2
TARGETS = {"resnet20_vs_conventional": 10.0, "packed_images_per_sec": 300_000.0, "resnet1202_peak_gib": 40.0}


@dataclass(frozen=True)
class Config:
    """Sizes of the check: the real one on a GPU, or `--tiny` on the CPU (same code paths, seconds)."""

    tiny: bool
    device: str
    depth: int  # the trial's and the parity check's net
    image_size: int
    batch: int
    epoch_steps: int  # full batches per epoch of the trial's synthetic set
    parity_steps: int
    throughput_depths: tuple[int, ...]
    throughput_steps: int
    pack_processes: tuple[int, ...]
    pack_steps: int
    deep_depth: int  # ResNet-1202
    compile_backend: str
    scratch: str  # checkpoints and stage files; not DIR, whose files come back from a remote run
    stage_seconds: float = 0.0  # the running stage's time limit (a stage may leave out its slowest parts)

    @classmethod
    def make(cls, tiny: bool, scratch: str) -> "Config":
        if tiny:
            return cls(True, "cpu", 8, 8, 16, 4, 10, (8,), 3, (2,), 3, 14, "aot_eager", scratch)
        return cls(False, "cuda", 20, 32, 128, 40, 40, (20, 56, 110), 60, (4, 8), 150, 1202, "inductor", scratch)


class Recorder:
    """A stage's results as a JSON file, rewritten after every value, so a stage killed at its time limit
    still reports what it measured before."""

    def __init__(self, path: Path):
        self.path, self.values = path, {}

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.values, indent=1, default=str))
        os.replace(temporary, self.path)


# ---------------------------------------------------------------- stages (each runs in a process of its own)

def stage_environment(cfg: Config, rec: Recorder) -> None:
    rec.put("python", platform.python_version())
    rec.put("torch", torch.__version__)
    rec.put("host", platform.platform())
    rec.put("cpus", os.cpu_count())
    rec.put("cuda_available", torch.cuda.is_available())
    if cfg.device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device visible to torch")
        props = torch.cuda.get_device_properties(0)
        rec.put("gpu", torch.cuda.get_device_name(0))
        rec.put("gpu_memory_gib", round(props.total_memory / 2**30, 1))
        rec.put("multiprocessors", props.multi_processor_count)
        rec.put("capability", f"{props.major}.{props.minor}")
        rec.put("cuda", torch.version.cuda)
        rec.put("cudnn", torch.backends.cudnn.version())
        from resnet_core.runtime import native_bf16  # the rule precision: auto follows, not torch's emulation

        rec.put("bf16", native_bf16(torch.device("cuda", 0)))
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=15)
        rec.put("nvidia_smi", out.stdout.strip() or out.stderr.strip())
    rec.put("mps_control", shutil.which("nvidia-cuda-mps-control"))
    try:
        import torchvision
        rec.put("torchvision", torchvision.__version__)
    except ImportError:
        rec.put("torchvision", None)


def _trial_spec(cfg: Config):
    from resnet_core.spec import TrialSpec

    runtime: dict[str, Any] = {"device": cfg.device, "compile_backend": cfg.compile_backend}  # else the default
    return TrialSpec.from_dict({
        "model": {"depth": cfg.depth},
        "data": {"dataset": "synthetic", "image_size": cfg.image_size,
                 "synthetic_train": cfg.batch * cfg.epoch_steps + cfg.batch // 2,  # a partial batch sits out
                 "synthetic_test": 4 * cfg.batch},
        "optim": {"batch_size": cfg.batch, "iterations": 3 * cfg.epoch_steps, "milestones": [2 * cfg.epoch_steps]},
        "runtime": runtime})


def stage_trial(cfg: Config, rec: Recorder) -> None:
    from torch._dynamo.utils import counters

    from resnet_core.checkpoint import load_checkpoint
    from resnet_core.train import train

    spec = _trial_spec(cfg)
    rec.put("spec", spec.to_dict())
    cuda = cfg.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    counters.clear()
    started = time.perf_counter()
    straight_dir, run_dir = Path(cfg.scratch, "straight"), Path(cfg.scratch, "run")
    epochs = []
    for metrics in train(spec, checkpoint_dir=straight_dir):
        epochs.append({k: v for k, v in metrics.items() if not k.startswith("layer_response")})
        if len(epochs) == 1:
            rec.put("seconds_to_first_epoch", time.perf_counter() - started)
        rec.put("epochs", epochs)
    rec.put("seconds", time.perf_counter() - started)
    rec.put("rung", epochs[-1].get("rung"))
    rec.put("graphs_compiled", counters["stats"]["unique_graphs"])
    rec.put("graph_breaks", dict(counters["graph_break"]))
    rec.put("cudagraph_skips", dict(counters["inductor"]).get("cudagraph_skips", 0))
    rec.put("peak_memory_gib", torch.cuda.max_memory_allocated() / 2**30 if cuda else None)

    interrupted = train(spec, checkpoint_dir=run_dir)
    next(interrupted), next(interrupted)
    interrupted.close()  # as if the process died after epoch 2's checkpoint
    resumed = list(train(spec, checkpoint_dir=run_dir, resume_from=run_dir))[-1]
    a, b = load_checkpoint(straight_dir)["model"], load_checkpoint(run_dir)["model"]
    weight_diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    loss_diff = abs(resumed["train_loss"] - epochs[-1]["train_loss"])
    rec.put("resume", {"epochs_after_resume": resumed["epoch"], "train_loss_diff": loss_diff,
                       "test_error_diff": abs(resumed["test_error"] - epochs[-1]["test_error"]),
                       "max_weight_diff": weight_diff, "bitwise": weight_diff == 0.0})
    failures = []
    if epochs[-1].get("fallback"):  # the trial went on, slower: on this machine a fast path fails
        failures.append(f"fell back: {epochs[-1]['fallback']}")
    if sum(counters["graph_break"].values()):
        failures.append("graph breaks")
    if loss_diff > 1e-3 * max(1.0, epochs[-1]["train_loss"]):
        failures.append(f"resumed train_loss differs by {loss_diff:.3g}")
    if failures:
        raise AssertionError("; ".join(failures))


def _runtime(cfg: Config, precision: str, compile_on: bool, cuda_graph: str):
    from resnet_core.runtime import resolve_runtime
    from resnet_core.spec import RuntimeSpec

    return resolve_runtime(RuntimeSpec(device=cfg.device, precision=precision, compile="on" if compile_on else "off",
                                       compile_backend=cfg.compile_backend, cuda_graph=cuda_graph))


def _parity_run(cfg: Config, runtime) -> tuple[list[float], dict[str, torch.Tensor]]:
    from resnet_core.augment import fit_normalizer
    from resnet_core.data import TensorTrainBatches, synthetic
    from resnet_core.model import build_model
    from resnet_core.spec import DataSpec, ModelSpec
    from resnet_core.step import StepSums, TrainStep

    device = runtime.device
    train_set, _, _ = synthetic(DataSpec(dataset="synthetic", image_size=cfg.image_size,
                                         synthetic_train=4 * cfg.batch, synthetic_test=1), cfg.image_size)
    batches = TensorTrainBatches(train_set.to(device), fit_normalizer(train_set.images.to(device), "pixel_mean"),
                                 cfg.batch, seed=0, augment=True, memory_format=runtime.memory_format)
    torch.manual_seed(0)
    model = build_model(ModelSpec(depth=cfg.depth), 10).to(device, memory_format=runtime.memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, fused=True)
    sums = StepSums.on(device)
    step = TrainStep(model, optimizer, batches, runtime, sums)
    losses, done, epoch = [], 0, 0
    while done < cfg.parity_steps:
        for (selection,) in batches.epoch(epoch):
            if done == cfg.parity_steps:
                break
            before = float(sums.loss)
            step.set_lr(0.01 if done < cfg.parity_steps // 4 else 0.1)  # a warm-up switch inside the graph
            step(selection)
            losses.append((float(sums.loss) - before) / cfg.batch)
            done += 1
        epoch += 1
    return losses, {k: v.detach().double().cpu() for k, v in model.state_dict().items()}


def stage_parity(cfg: Config, rec: Recorder) -> None:
    eager_losses, eager = _parity_run(cfg, _runtime(cfg, "fp32", False, "off"))
    failures = []
    for name, runtime in (("compiled", _runtime(cfg, "fp32", True, "compiled")),
                          ("step_graph", _runtime(cfg, "fp32", False, "step"))):
        losses, state = _parity_run(cfg, runtime)
        loss_diff = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(losses, eager_losses))
        bn = [k for k in state if "running_" in k]
        result = {"steps": len(losses), "max_loss_rel_diff": loss_diff,
                  "max_bn_stat_diff": max(float((state[k] - eager[k]).abs().max()) for k in bn),
                  "max_weight_diff": max(float((state[k] - eager[k]).abs().max()) for k in state if k not in bn),
                  "final_loss": losses[-1], "eager_final_loss": eager_losses[-1]}
        rec.put(name, result)
        if loss_diff > PARITY_TOLERANCE:
            failures.append(f"{name}: losses differ from eager by up to {loss_diff:.3g} (relative)")
    if failures:
        raise AssertionError("; ".join(failures))


def _conventional() -> Any:
    """The conventional trainer of a source checkout's bench/ (the baseline of the 10x target); None elsewhere."""
    try:
        from bench.conventional import ConventionalTrainer
    except ImportError:
        return None
    return ConventionalTrainer


def stage_throughput(cfg: Config, rec: Recorder) -> None:
    from resnet_core.data import synthetic
    from resnet_core.spec import DataSpec, ModelSpec
    from resnet_core.throughput import measure_training

    precision = "fp32" if cfg.tiny else "bf16"
    modes: list[tuple[str, Callable[[], Any]]] = [  # compiling a new depth takes a minute: last
        ("eager", lambda: _runtime(cfg, precision, False, "off")),
        ("step_graph", lambda: _runtime(cfg, precision, False, "step")),
        ("compiled", lambda: _runtime(cfg, precision, True, "compiled"))]
    started = time.perf_counter()
    images, _, classes = synthetic(DataSpec(dataset="synthetic", image_size=cfg.image_size,
                                            synthetic_train=8 * cfg.batch, synthetic_test=1), cfg.image_size)
    rows = {}
    for depth in cfg.throughput_depths:  # shallow first: a stage cut short at its limit keeps the most useful
        row: dict[str, Any] = {}
        rows[f"resnet{depth}"] = row
        baseline = _conventional()
        if baseline is not None:
            conventional = baseline(ModelSpec(depth=depth), images.images, images.labels, classes, cfg.batch,
                                    torch.device(cfg.device), 0 if cfg.tiny else None)
            conventional.run(3)
            row["conventional"] = conventional.window(cfg.throughput_steps)
            del conventional
            rec.put("images_per_sec", rows)
        for mode, runtime in modes:
            if mode == "compiled" and depth != cfg.throughput_depths[0] and cfg.stage_seconds and \
                    time.perf_counter() - started > cfg.stage_seconds / 2:
                row[mode] = "left out: a new compile would not fit in the stage's time"
                rec.put("images_per_sec", rows)
                continue
            result = measure_training(ModelSpec(depth=depth), runtime(), cfg.batch, cfg.throughput_steps,
                                      image_size=cfg.image_size)
            row[mode] = result.images_per_sec
            row[f"{mode}_first_steps_s"] = result.first_steps_seconds
            row[f"{mode}_peak_gib"] = None if result.peak_memory_bytes is None else result.peak_memory_bytes / 2**30
            rec.put("images_per_sec", rows)
            if cfg.device == "cuda":
                torch.cuda.empty_cache()
    first = rows[f"resnet{cfg.throughput_depths[0]}"]
    best20 = max(v for k, v in first.items() if k in ("eager", "compiled", "step_graph") and isinstance(v, float))
    if "conventional" in first:
        rec.put("best_vs_conventional", best20 / first["conventional"])


def _packed_worker(cfg: Config, barrier, results, index: int) -> None:
    from resnet_core.spec import ModelSpec
    from resnet_core.throughput import measure_training

    torch.set_num_threads(1)
    mode = "off" if cfg.tiny else "step"
    result = measure_training(ModelSpec(depth=cfg.throughput_depths[0]), _runtime(cfg, "auto", False, mode),
                              cfg.batch, cfg.pack_steps, image_size=cfg.image_size,
                              ready=lambda: barrier.wait(timeout=120))
    results[index] = result.images_per_sec


def _pack(cfg: Config, rec: Recorder, key: str) -> None:
    context = multiprocessing.get_context("fork")  # this stage's process never touched CUDA: forking is safe
    totals = {}
    for count in cfg.pack_processes:
        barrier, results = context.Barrier(count), context.Array("d", count)
        workers = [context.Process(target=_packed_worker, args=(cfg, barrier, results, i)) for i in range(count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if any(worker.exitcode != 0 for worker in workers):
            raise RuntimeError(f"{count} packed processes: exit codes {[w.exitcode for w in workers]}")
        totals[str(count)] = {"total_images_per_sec": sum(results), "each": list(results)}
        rec.put(key, totals)


def stage_packing(cfg: Config, rec: Recorder) -> None:
    rec.put("mode", "eager fp32 (CPU)" if cfg.tiny else "whole-step CUDA graph, bf16")
    _pack(cfg, rec, "processes")


def stage_packing_mps(cfg: Config, rec: Recorder) -> None:
    control = shutil.which("nvidia-cuda-mps-control")
    if cfg.tiny or control is None:
        rec.put("skipped", "no nvidia-cuda-mps-control here" if control else "CPU check")
        return
    started = subprocess.run([control, "-d"], capture_output=True, text=True, timeout=20)
    rec.put("daemon_start", started.returncode)
    try:
        _pack(cfg, rec, "processes")
    finally:
        subprocess.run([control], input="quit\n", text=True, capture_output=True, timeout=20)


def stage_resnet1202(cfg: Config, rec: Recorder) -> None:
    from resnet_core.spec import ModelSpec
    from resnet_core.throughput import measure_training

    result = measure_training(ModelSpec(depth=cfg.deep_depth), _runtime(cfg, "auto", False, "off"), cfg.batch,
                              steps=3 if cfg.tiny else 10, warmup_steps=2, image_size=cfg.image_size)
    rec.put("depth", cfg.deep_depth)
    rec.put("images_per_sec", result.images_per_sec)
    rec.put("peak_gib", None if result.peak_memory_bytes is None else result.peak_memory_bytes / 2**30)


STAGE_FUNCTIONS: dict[str, Callable[[Config, Recorder], None]] = {
    "environment": stage_environment, "trial": stage_trial, "parity": stage_parity,
    "throughput": stage_throughput, "packing": stage_packing, "packing_mps": stage_packing_mps,
    "resnet1202": stage_resnet1202}


# ---------------------------------------------------------------- running the stages

@dataclass
class StageResult:
    name: str
    status: str  # ok | failed | timeout | crashed | skipped
    seconds: float
    limit: float
    error: str | None = None
    results: dict[str, Any] = field(default_factory=dict)


def _stage_process(name: str, cfg: Config, path: str) -> None:
    os.setpgid(0, 0)  # its own process group: a stage stopped at its limit takes its packed workers with it
    recorder = Recorder(Path(path))
    if cfg.tiny:
        torch.set_num_threads(1)  # tiny steps: more threads only contend on a shared CPU
    try:
        STAGE_FUNCTIONS[name](cfg, recorder)
    except BaseException as err:  # noqa: BLE001  recorded for the report, then this process ends
        recorder.put("_error", f"{type(err).__name__}: {err}")
        recorder.put("_traceback", traceback.format_exc()[-4000:])
        os._exit(3)
    os._exit(0)


def run_stage(name: str, limit: float, cfg: Config) -> StageResult:
    """The stage in a forked process (a CUDA error or a hang cannot take the next stage with it)."""
    path = Path(cfg.scratch, f"stage-{name}.json")
    stage_cfg = Config(**{**asdict(cfg), "scratch": str(Path(cfg.scratch, name)), "stage_seconds": limit})
    Path(stage_cfg.scratch).mkdir(parents=True, exist_ok=True)
    process = multiprocessing.get_context("fork").Process(target=_stage_process, args=(name, stage_cfg, str(path)))
    started = time.perf_counter()
    process.start()
    process.join(limit)
    if process.is_alive():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.join()
    seconds = time.perf_counter() - started
    results = json.loads(path.read_text()) if path.exists() else {}
    error = results.pop("_error", None)
    if seconds >= limit and process.exitcode not in (0, 3):
        status, error = "timeout", f"stopped at its {limit:.0f} s limit"
    elif process.exitcode == 0:
        status = "ok"
    elif process.exitcode == 3:
        status = "failed"
    else:
        status, error = "crashed", f"exit code {process.exitcode}"
    return StageResult(name, status, seconds, limit, error, results)


def summary_line(stage: StageResult) -> str:
    r = stage.results
    facts = ""
    if stage.name == "environment":
        facts = f"{r.get('gpu', 'CPU')}, torch {r.get('torch')}, CUDA {r.get('cuda')}, cuDNN {r.get('cudnn')}"
    elif stage.name == "trial" and "epochs" in r:
        facts = (f"first epoch after {r.get('seconds_to_first_epoch', 0):.1f} s, {r.get('graphs_compiled')} graphs, "
                 f"{sum((r.get('graph_breaks') or {}).values())} breaks, {r.get('cudagraph_skips')} cudagraph skips, "
                 f"resume {r.get('resume', {})}")
    elif stage.name == "throughput" and "images_per_sec" in r:
        facts = "; ".join(f"{net}: " + ", ".join(f"{k} {v:,.0f}" for k, v in row.items()
                                                   if isinstance(v, float) and not k.endswith(("_s", "_gib")))
                          for net, row in r["images_per_sec"].items())
    elif stage.name.startswith("packing") and "processes" in r:
        facts = ", ".join(f"{n} processes {v['total_images_per_sec']:,.0f} img/s" for n, v in r["processes"].items())
    elif stage.name == "resnet1202" and "images_per_sec" in r:
        peak = r.get("peak_gib")
        facts = f"{r['images_per_sec']:,.0f} img/s, peak " + ("-" if peak is None else f"{peak:.1f} GiB")
    elif "skipped" in r:
        facts = f"skipped: {r['skipped']}"
    elif stage.name == "parity":
        facts = ", ".join(f"{k}: loss rel diff {v['max_loss_rel_diff']:.2g}" for k, v in r.items()
                          if isinstance(v, dict))
    return f"{stage.name:12} {stage.status:8} {stage.seconds:6.1f}s  {stage.error or facts}"


def profile_of(stages: list[StageResult], tiny: bool, started: str) -> dict[str, Any]:
    """The machine profile these stages measured (machine_profile.py): what `plan` and `run` use."""
    from resnet_core.machine_profile import GPU, TINY_CPU

    results = {s.name: s.results for s in stages}
    env, speeds = results.get("environment", {}), results.get("throughput", {}).get("images_per_sec") or {}
    parity = {mode: isinstance(v, dict) and v.get("max_loss_rel_diff", 1.0) <= PARITY_TOLERANCE
              for mode, v in results.get("parity", {}).items()}
    first = next(iter(speeds.values()), {})
    single = first.get("eager" if tiny else "step_graph") if isinstance(first, dict) else None
    totals = {1: single} if isinstance(single, float) else {}
    for count, packed in (results.get("packing", {}).get("processes") or {}).items():
        totals[int(count)] = packed["total_images_per_sec"]
    peaks = {f"{net}_{k[:-len('_peak_gib')]}": v for net, row in speeds.items() for k, v in row.items()
             if k.endswith("_peak_gib") and v is not None}
    peaks.update({k: v for k, v in (("resnet20_trial", results.get("trial", {}).get("peak_memory_gib")),
                                    ("resnet1202", results.get("resnet1202", {}).get("peak_gib"))) if v is not None})
    return {"kind": TINY_CPU if tiny else GPU, "gpu": env.get("gpu", "cpu"),
            "torch": env.get("torch", torch.__version__),
            "cuda": env.get("cuda"), "capability": env.get("capability"), "bf16_native": env.get("bf16"),
            "gpu_memory_bytes": env["gpu_memory_gib"] * 2**30 if env.get("gpu_memory_gib") else None,
            "measured": started, "images_per_sec": {net: {k: v for k, v in row.items() if isinstance(v, float)
                                                         and not k.endswith(("_s", "_gib"))}
                                                   for net, row in speeds.items()},
            "parity": parity, "trials_per_gpu": max(totals, key=totals.get) if totals else None,
            "packed_images_per_sec": totals, "peak_memory_gib": peaks,
            "trial_rung": results.get("trial", {}).get("rung"),
            "stages": {s.name: s.status for s in stages}}


def markdown(stages: list[StageResult], cfg: Config, command: str, started: str, profile: str = "") -> str:
    env = next((s.results for s in stages if s.name == "environment"), {})
    title = f"GPU check, {started}: {env.get('gpu', 'CPU (--tiny)')}"
    lines = [f"## {title}", "", f"Command: `{command}`. torch {env.get('torch')}, CUDA {env.get('cuda')}, "
             f"cuDNN {env.get('cudnn')}, driver/nvidia-smi: {env.get('nvidia_smi', '-')}.", "",
             "| stage | status | seconds (limit) | result |", "|---|---|---|---|"]
    for s in stages:
        lines.append(f"| {s.name} | {s.status} | {s.seconds:.0f} ({s.limit:.0f}) | "
                     f"{summary_line(s).split(None, 3)[-1].replace('|', '/')} |")
    lines += ["", f"Targets: ResNet-20 >= {TARGETS['resnet20_vs_conventional']:g}x the conventional "
              f"trainer; packed >= {TARGETS['packed_images_per_sec']:,.0f} img/s; ResNet-1202 <= "
              f"{TARGETS['resnet1202_peak_gib']:g} GB.", ""]
    if profile:
        lines += [f"Machine profile: {profile}", ""]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Checked:
    """What a run of the stages leaves: each stage's result, the report's Markdown, the profile and its file."""

    stages: list[StageResult]
    markdown: str
    profile: dict[str, Any]
    profile_path: Path | None


def run_stages(tiny: bool, out: Path, wanted: list[str] | None = None, command: str = "",
               profile_dir: Path | None = None) -> Checked:
    """The stages in `wanted` (default all), within TOTAL_SECONDS; gpu_check.json and .md in `out` after each
    stage; then the machine profile into `profile_dir` (default: the state directory's profiles/)."""
    from resnet_core.machine_profile import write_profile

    wanted = wanted or [n for n, _ in STAGES]
    os.environ["PYTHONUNBUFFERED"] = "1"  # the parent must not initialise CUDA before the forks: NVML answers
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    out.mkdir(parents=True, exist_ok=True)
    import resnet_core.throughput, resnet_core.train  # noqa: E401,F401  once, before the forks
    _conventional()
    started_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    deadline, stages = time.monotonic() + TOTAL_SECONDS, []
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as scratch:
        cfg = Config.make(tiny, scratch)
        for name, limit in STAGES:
            if name not in wanted:
                continue
            left = deadline - time.monotonic()
            stage = (run_stage(name, min(limit, left), cfg) if left >= 5 else
                     StageResult(name, "skipped", 0.0, 0.0, f"out of the {TOTAL_SECONDS} s budget"))
            stages.append(stage)
            print(summary_line(stage), flush=True)
            report = {"started": started_at, "command": command, "tiny": tiny, "targets": TARGETS,
                      "stages": [asdict(s) for s in stages]}
            (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
            (out / "gpu_check.md").write_text(markdown(stages, cfg, command, started_at))
    control = shutil.which("nvidia-cuda-mps-control")
    if control and not tiny and "packing_mps" in wanted:  # a stage stopped at its limit skips its finally
        subprocess.run([control], input="quit\n", text=True, capture_output=True, timeout=20)
    profile = profile_of(stages, tiny, started_at)
    path = write_profile(profile, profile_dir) if "environment" in wanted else None
    text = markdown(stages, cfg, command, started_at, str(path or ""))
    (out / "gpu_check.md").write_text(text)
    return Checked(stages, text, profile, path)


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for gpu_check.json and gpu_check.md")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny sizes: checks the code paths in seconds")
    parser.add_argument("--stages", help=f"comma-separated subset of {','.join(n for n, _ in STAGES)}")
    return parser


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None,
         command: str = "PYTHONPATH=. python3 -m resnet_core.gpu_stages") -> tuple[int, Checked | None]:
    """Parse, run, print the outcome; (exit code, what ran)."""
    parser = parser or argument_parser()
    args = parser.parse_args(argv)
    wanted = [n for n, _ in STAGES] if not args.stages else args.stages.split(",")
    unknown = [n for n in wanted if n not in STAGE_FUNCTIONS]
    if unknown:
        parser.error(f"--stages: unknown {', '.join(unknown)}; expected some of {', '.join(STAGE_FUNCTIONS)}")
    if not args.tiny and not _cuda_visible():
        parser.error("no CUDA device visible to torch: run this on a GPU machine, or --tiny for the CPU check")
    command = f"{command} " + " ".join(argv if argv is not None else sys.argv[1:])
    checked = run_stages(args.tiny, Path(args.out), wanted, command)
    failed = [s.name for s in checked.stages if s.status != "ok"]
    print(f"{len(checked.stages) - len(failed)}/{len(checked.stages)} stages ok"
          + (f"; not ok: {', '.join(failed)}" if failed else "") + f"; report in {args.out}/gpu_check.md"
          + (f"; machine profile {checked.profile_path}" if checked.profile_path else ""))
    return (1 if failed else 0), checked


def _cuda_visible() -> bool:
    """Whether a CUDA device is there, asked of NVML: the stages fork, so this process must not initialise CUDA."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main()[0])
