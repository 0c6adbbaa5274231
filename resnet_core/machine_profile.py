"""A machine profile: what `resnet-sweep doctor --gpu` measured on one GPU model with one torch and CUDA, for
`plan` and `run` to use instead of assumptions.

One JSON file per (GPU model, torch version, CUDA version) under `$RESNET_SWEEPS_HOME/profiles/` (the state
directory, default `~/.resnet_sweeps`): measured training images/s per depth and mode, which modes passed the
parity check against eager, the best number of trials per GPU (packing), peak memory per trial, the GPU's memory.
The doctor's tiny CPU mode writes one too, with `kind: tiny-cpu`: it proves the code path, and every reader labels
it as such; it is never taken for a GPU's figures. Plain JSON and the standard library: readable without torch,
Ray or MLflow.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

GPU, TINY_CPU = "gpu", "tiny-cpu"  # a profile's `kind`
# A whole-step graph beats torch.compile's graphs only where it passed parity; `compiled` is the mode without it.
MODE_TO_CUDA_GRAPH = {"step_graph": "step", "compiled": "compiled", "eager": "off"}


def state_home() -> Path:
    """The project's state directory: $RESNET_SWEEPS_HOME, else ~/.resnet_sweeps (the sweeps' records are there
    too); defined here because resnet_core runs where the orchestrator may not be installed."""
    return Path(os.environ.get("RESNET_SWEEPS_HOME") or "~/.resnet_sweeps").expanduser().resolve()


def profiles_dir() -> Path:
    return state_home() / "profiles"


def profile_key(gpu: str, torch_version: str, cuda: str | None) -> str:
    """The file name a profile is kept under: `nvidia-h200-torch2.6.0-cuda12.4`."""
    slug = re.sub(r"[^a-z0-9.]+", "-", f"{gpu}-torch{torch_version}-cuda{cuda}".lower()).strip("-")
    return slug


def write_profile(profile: dict[str, Any], directory: Path | None = None) -> Path:
    """Write atomically; returns the file."""
    directory = directory or profiles_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{profile_key(profile['gpu'], profile['torch'], profile.get('cuda'))}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(profile, indent=1, sort_keys=True))
    os.replace(temporary, path)
    return path


def read_profiles(directory: Path | None = None) -> list[dict[str, Any]]:
    """Every readable profile, newest first."""
    directory = directory or profiles_dir()
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            profile = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(profile, dict) and "gpu" in profile:
            found.append({**profile, "path": str(path)})
    return sorted(found, key=lambda p: p.get("measured", ""), reverse=True)


def find_profile(gpu: str | None = None, torch_version: str | None = None, cuda: str | None = None,
                 directory: Path | None = None, kind: str = GPU) -> dict[str, Any] | None:
    """The newest profile of `kind` for this GPU model (and these versions, when given; a profile of the same GPU
    with other versions is the fallback); for `gpu=None`, the newest of `kind`."""
    candidates = [p for p in read_profiles(directory) if p.get("kind") == kind and (gpu is None or p["gpu"] == gpu)]
    exact = [p for p in candidates if p.get("torch") == torch_version and p.get("cuda") == cuda]
    return (exact or candidates or [None])[0]


def best_cuda_graph(profile: dict[str, Any] | None) -> str | None:
    """`runtime.cuda_graph: auto`: the fastest mode on ResNet-20 among those that passed parity (eager always
    does); None without a profile's figures."""
    if not profile:
        return None
    speeds = (profile.get("images_per_sec") or {}).get("resnet20") or next(
        iter((profile.get("images_per_sec") or {}).values()), {})
    passed = {m for m, ok in (profile.get("parity") or {}).items() if ok} | {"eager"}
    usable = {m: v for m, v in speeds.items() if m in passed and m in MODE_TO_CUDA_GRAPH and isinstance(v, float)}
    return MODE_TO_CUDA_GRAPH[max(usable, key=usable.get)] if usable else None
