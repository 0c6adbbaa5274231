"""Is a trial's dataset where its spec says? A quick look (files present and readable, nothing decoded).

The orchestrator asks before anything starts, so a sweep whose data is missing stops with one clear error instead
of failing in every trial; with `data.download: true` the data set is fetched here, once, rather than by each
trial. The trial's own loading (data.py, imagenet.py) still checks everything it reads.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from resnet_core.data import DatasetError, check_cifar_files, retry_after_download
from resnet_core.imagenet import FOLDER_LAYOUT
from resnet_core.spec import DataSpec


def ensure_dataset(spec: DataSpec) -> None:
    """Raise DatasetError (a SpecError on data.root) unless the data set can be read; download it first when the
    spec allows and it is missing. Synthetic data always can."""
    if spec.dataset == "synthetic":
        return
    root = Path(spec.root).expanduser()
    if spec.dataset == "imagenet":
        check_folders(root)
        return
    retry_after_download(spec, root, partial(check_cifar, spec.dataset, root))


def check_cifar(dataset: str, root: Path) -> None:
    where, remedy = check_cifar_files(dataset, root)
    for path in sorted(where.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            with open(path, "rb") as f:
                empty = not f.read(1)
        except OSError as err:
            raise DatasetError(root, f"cannot read {path}: {err.strerror or err}", remedy) from None
        if empty:
            raise DatasetError(root, f"{path} is empty", remedy)


def check_folders(root: Path) -> None:
    """train/ and val/ under `root`, each with the same non-empty set of class folders."""
    classes = {}
    for split in ("train", "val"):
        folder = root / split
        try:
            classes[split] = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as err:
            raise DatasetError(root, f"looked in {folder}: {err.strerror or err}", FOLDER_LAYOUT) from None
        if not classes[split]:
            raise DatasetError(root, f"looked in {folder}: no class folders", FOLDER_LAYOUT)
        first = folder / classes[split][0]
        if not any(p.is_file() for p in first.iterdir()):
            raise DatasetError(root, f"looked in {first}: no images", FOLDER_LAYOUT)
    if classes["train"] != classes["val"]:
        raise DatasetError(root, "train/ and val/ hold different class folders", FOLDER_LAYOUT)
