"""A trial's data sets as its MLflow run's inputs (the run's Datasets, the runs table's Datasets column), through
MLflow's dataset API: one per split the trial uses (context training, validation, test), named for the data set
and the split, with the folder (or URI) as its source, and the split's images as its profile.

The digest names what the trial saw: the files under the data's folder (their names, sizes and first MiB; names
and sizes alone past MAX_HASHED_FILES files, e.g. ImageNet's 1.3M), hashed once per sweep by the caller's cache,
together with the split and subset settings, so two trials on the same images share one MLflow dataset. Synthetic
data has no files: its generator's settings are its digest.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

MAX_HASHED_FILES = 10_000  # past this many files, names and sizes only (reading every file would take hours)
HEAD_BYTES = 2**20
CONTEXTS = (("train", "training"), ("val", "validation"), ("test", "test"))  # split -> MLflow's context
# Images per split of the data sets whose size is fixed; ImageNet folders are counted, synthetic data says
FULL_SIZES = {"cifar10": {"train": 50_000, "test": 10_000}, "cifar100": {"train": 50_000, "test": 10_000}}
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".JPEG", ".JPG", ".PNG")


def files_digest(root: str) -> tuple[str, dict[str, int]]:
    """A digest of the files under `root` (empty when it is not a folder this machine sees) and, for image
    folders, the images under its train/ and val/ (ImageNet's layout)."""
    base = Path(root).expanduser()
    if not base.is_dir():
        return "", {}
    files = sorted(p for p in base.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(base)}\0{path.stat().st_size}\0".encode())
        if len(files) <= MAX_HASHED_FILES:
            with path.open("rb") as f:
                digest.update(hashlib.sha256(f.read(HEAD_BYTES)).digest())
    counts = {split: sum(1 for p in files if p.suffix in IMAGE_SUFFIXES and p.relative_to(base).parts[0] == folder)
              for split, folder in (("train", "train"), ("test", "val"))}
    return digest.hexdigest(), counts


def split_sizes(data: dict[str, Any], counted: dict[str, int]) -> dict[str, int | None]:
    """Images in each split the trial uses: the subset limits and the held-out validation split applied (None:
    not known here, e.g. ImageNet folders this machine does not see)."""
    full = ({"train": data.get("synthetic_train", 0), "test": data.get("synthetic_test", 0)}
            if data["dataset"] == "synthetic" else FULL_SIZES.get(data["dataset"], counted))
    val = int(data.get("val_split") or 0)
    sizes: dict[str, int | None] = {}
    for split, limit in (("train", data.get("train_limit")), ("test", data.get("test_limit"))):
        sizes[split] = min(full[split], limit or full[split]) if full.get(split) else None
    if val:
        sizes["train"], sizes["val"] = (sizes["train"] - val if sizes["train"] is not None else None), val
    return sizes


def trial_inputs(spec: dict[str, Any], digest_of: Callable[[str], tuple[str, dict[str, int]]]) -> list[Any]:
    """The trial's DatasetInputs; `digest_of(root)` is files_digest behind the caller's once-per-sweep cache."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import CodeDatasetSource, LocalArtifactDatasetSource
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    data = spec["data"]
    settings = {k: v for k, v in sorted(data.items()) if k not in ("root", "workers", "download")}
    if data["dataset"] == "synthetic":
        files, counted = "", {}
        source: Any = CodeDatasetSource({"generator": "resnet_core.data.synthetic", "settings": json.dumps(settings)})
    else:
        files, counted = digest_of(data["root"])
        try:
            source = resolve_dataset_source(data["root"])
        except Exception:  # noqa: BLE001  a path MLflow's resolvers do not claim: a local folder
            source = LocalArtifactDatasetSource(os.path.expanduser(data["root"]))
    sizes = split_sizes(data, counted)
    out = []
    for split, context in CONTEXTS:
        if split not in sizes:
            continue
        digest = hashlib.sha256(json.dumps([files, split, settings]).encode()).hexdigest()[:12]
        meta = MetaDataset(source, name=f"{data['dataset']}-{split}", digest=digest).to_dict()
        profile = {"images": sizes[split], "split": split, "train_limit": data.get("train_limit"),
                   "test_limit": data.get("test_limit"), "val_split": data.get("val_split") or 0}
        out.append(DatasetInput(Dataset(meta["name"], meta["digest"], meta["source_type"], meta["source"],
                                        profile=json.dumps(profile)),
                                tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    return out


def dataset_of(inputs: list[Any], prefix: str) -> tuple[str, str] | None:
    """(name, digest) of the input whose split a metric named `prefix...` measures (test_error: the test set)."""
    split = prefix.split("_")[0]
    for item in inputs:
        if json.loads(item.dataset.profile or "{}").get("split") == split:
            return item.dataset.name, item.dataset.digest
    return None
