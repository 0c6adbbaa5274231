"""`resnet-sweep doctor`'s checks: what a sweep would meet on this machine or cluster, before it spends GPU hours.

The stack (torch, CUDA, driver, cuDNN) and each GPU (memory, compute capability, native bf16 or not); Ray starting
here or joining `--address`, and the resources it sees; the MLflow tracking URI answering; the storage writable
(from every node of a cluster); a sweep file's data present (on every node); and with `gpu_stages` the GPU path
proved on this GPU (resnet_core/gpu_stages.py, in a process of its own: its stages fork, and a process that
touched CUDA cannot), which writes the machine profile `plan` and `run` use. Each check is a row; a failed one
says why, and the others still run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
GPU_STAGES_TIMEOUT_S = 480  # the stages' own budget is 7 minutes


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | failed | skipped
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DoctorOptions:
    address: str | None = None
    tracking_uri: str | None = None
    storage: str | None = None
    sweep_file: str | None = None
    sets: tuple[str, ...] = ()
    gpu_stages: bool = False
    tiny: bool = False  # the GPU stages at tiny sizes on the CPU: their code path, seconds, a tiny-cpu profile


def stack() -> Check:
    import torch

    driver = _nvidia_smi("driver_version")
    facts = {"torch": torch.__version__, "cuda": torch.version.cuda, "driver": driver,
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    return Check("stack", OK, ", ".join(f"{k} {v or '-'}" for k, v in facts.items()), facts)


def gpus() -> list[Check]:
    """One row per GPU torch sees: name, memory, capability, and whether bf16 is native (precision: auto)."""
    import torch

    from resnet_core.runtime import native_bf16

    if not torch.cuda.is_available():
        return [Check("gpu", SKIPPED, "no CUDA GPU visible: trials train on the CPU")]
    rows = []
    for i in range(torch.cuda.device_count()):
        props, device = torch.cuda.get_device_properties(i), torch.device("cuda", i)
        native = native_bf16(device)
        facts = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                 "capability": f"{props.major}.{props.minor}", "bf16_native": native,
                 "precision_auto": "bf16" if native else "fp16 with a gradient scaler"}
        rows.append(Check(f"gpu {i}", OK, f"{props.name}, {facts['memory_gib']} GiB, capability "
                          f"{facts['capability']}, precision auto: {facts['precision_auto']}", facts))
    return rows


def ray_resources(address: str | None) -> Check:
    """Start a local Ray (or join `address`) as `run` would, and the resources the sweep would see there."""
    try:
        import ray

        from orchestrator.running.resources import init_ray

        init_ray(address)
        total = ray.cluster_resources()
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
    except Exception as err:  # noqa: BLE001  reported as the check's failure
        return Check("ray", FAILED, f"{'joining ' + address if address else 'starting a local Ray'} failed: "
                     f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    facts = {"address": address or "local", "nodes": nodes, "cpu": total.get("CPU", 0), "gpu": total.get("GPU", 0)}
    return Check("ray", OK, f"{facts['address']}: {nodes} node{'s' * (nodes != 1)}, {facts['cpu']:g} CPUs, "
                 f"{facts['gpu']:g} GPUs", facts)


def tracking(tracking_uri: str | None) -> Check:
    from orchestrator.tracking.server import TrackingUnreachable, check_reachable
    from orchestrator.tracking.uris import default_tracking_uri, redact_uri

    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///"):  # created on first use: its folder must take it
        folder = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
        writable = folder.is_dir() and os.access(folder, os.W_OK)
        return Check("mlflow", OK if writable else FAILED, f"{redact_uri(uri)}: a local SQLite store, "
                     + ("its folder writable" if writable else f"its folder {folder} is missing or not writable"))
    try:
        check_reachable(uri)
    except TrackingUnreachable as err:
        return Check("mlflow", FAILED, str(err))
    return Check("mlflow", OK, f"{redact_uri(uri)} answers")


def storage(location: str | None, joined: bool) -> Check:
    """Writable here (a marker written and removed), and on a cluster visible from every node."""
    from orchestrator.errors import CliError
    from orchestrator.records import storage_files
    from orchestrator.records.state import default_storage
    from orchestrator.running.cluster import check_shared_storage

    where = location or str(default_storage())
    try:
        marker = f"{where.rstrip('/')}/.doctor-{uuid.uuid4().hex}"
        storage_files.write_text(marker, "resnet-sweep doctor\n")  # as the launch writes its record there
        storage_files.remove(marker)
        if joined:
            check_shared_storage(where)  # a no-op for object storage, which every node reaches
    except (OSError, CliError) as err:
        return Check("storage", FAILED, f"{where}: {err}")
    return Check("storage", OK, f"{where}: writable" + (", seen by every node" if joined else ""))


def sweep_data(sweep_file: str, sets: tuple[str, ...], joined: bool) -> Check:
    from orchestrator.running.data_check import check_sweep_data
    from orchestrator.specs.expansion import expand, probe_trials
    from orchestrator.specs.reading import load_sweep
    from resnet_core.specio import SpecError

    try:
        sweep = load_sweep(sweep_file, list(sets))
        trials = probe_trials(sweep) if sweep.search.kind == "optuna" else expand(sweep)
        check_sweep_data(sweep, trials, sweep_file, on_cluster=joined)
    except SpecError as err:
        return Check("data", FAILED, str(err))
    datasets = sorted({t.spec.data.dataset for t in trials})
    return Check("data", OK, f"{sweep_file}: {', '.join(datasets)} present" + (" on every node" if joined else ""))


def gpu_path(run: bool, tiny: bool, out: Path) -> Check:
    """The GPU stages, as the one prepared command runs them (a process of its own); their profile's file."""
    import torch

    if not run:
        return Check("gpu stages", SKIPPED, "not asked for: `resnet-sweep doctor --gpu` proves the GPU path here")
    if not tiny and not torch.cuda.is_available():
        return Check("gpu stages", SKIPPED, "they need a CUDA GPU; none is visible here (--tiny runs their code "
                                           "path on the CPU)")
    command = [sys.executable, "-m", "resnet_core.gpu_stages", "--out", str(out)] + (["--tiny"] if tiny else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=GPU_STAGES_TIMEOUT_S)
    report = json.loads((out / "gpu_check.json").read_text()) if (out / "gpu_check.json").exists() else {}
    stages = {s["name"]: s["status"] for s in report.get("stages", [])}
    last = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""])[-1]
    return Check("gpu stages", OK if done.returncode == 0 else FAILED, last, {"stages": stages, "report": str(out)})


def diagnose(options: DoctorOptions, out: Path) -> list[Check]:
    """Every check that applies here, in order; Ray is shut down again if this process started it."""
    import ray

    ray_check = ray_resources(options.address)
    checks = [stack(), *gpus(), ray_check]
    joined = bool(options.address or os.environ.get("RAY_ADDRESS")) and ray_check.status == OK
    try:
        checks.append(tracking(options.tracking_uri))
        checks.append(storage(options.storage, joined))
        if options.sweep_file:
            checks.append(sweep_data(options.sweep_file, options.sets, joined))
    finally:
        if ray.is_initialized():
            ray.shutdown()
    checks.append(gpu_path(options.gpu_stages, options.tiny, out))
    return checks


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.status != FAILED for c in checks), "checks": [asdict(c) for c in checks]}


def _nvidia_smi(field_name: str) -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, f"--query-gpu={field_name}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip().splitlines() or [None])[0]
