"""Datasets for one trial: CIFAR-10/100 and synthetic images as one uint8 tensor, batched on the trial's device.

CIFAR is read straight from the pickles of the standard `cifar-10-batches-py` / `cifar-100-python` layout into a
single [N, 3, 32, 32] uint8 tensor (150 MB for CIFAR-10's training set), which then sits on the GPU whole; each
batch is gathered, normalised and augmented there (augment.py). torchvision is used only to download, never to
check md5 sums: copies of CIFAR made elsewhere hold the same images in byte-wise different files. ImageNet-style
folders go through a DataLoader instead (imagenet.py). A missing or broken dataset raises `DatasetError`, a
SpecError on `data.root` that says where it looked and how to get the data, so the CLI exits 2 with a message.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, TypeVar

import torch

from resnet_core.augment import CropFlip, Normalizer, crop_flip, draw_crop_flip, fit_normalizer
from resnet_core.distributed import Shard
from resnet_core.schedule import steps_per_epoch
from resnet_core.spec import DataSpec
from resnet_core.specio import DatasetError, SpecError

SYNTHETIC_DATA_SEED = 20151210  # one fixed synthetic dataset for every trial; trial seeds vary init and order
CIFAR_LAYOUTS = {  # dataset -> (folder, training files, test file, label key, classes)
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "labels", 10),
    "cifar100": ("cifar-100-python", ("train",), "test", "fine_labels", 100),
}
T = TypeVar("T")  # what a read returns (retry_after_download)


@dataclass(frozen=True)
class TensorSplit:
    images: torch.Tensor  # [N, C, H, W] uint8
    labels: torch.Tensor  # [N] int64

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, count: int | None) -> "TensorSplit":
        return self if count is None else TensorSplit(self.images[:count], self.labels[:count])

    def to(self, device: torch.device | str) -> "TensorSplit":
        return TensorSplit(self.images.to(device), self.labels.to(device))

    def shard(self, shard: Shard) -> "TensorSplit":
        start, stop = shard.bounds(len(self))
        return TensorSplit(self.images[start:stop], self.labels[start:stop])


@dataclass(frozen=True)
class TensorDataset:
    train: TensorSplit
    test: TensorSplit
    val: TensorSplit | None
    num_classes: int


class TrainBatches(Protocol):
    """One epoch of training batches, from step `start` on, in two halves: `epoch` yields each step's batch as
    a tuple of device tensors (for tensor data just the images' indices and augmentation draws), and `gather`
    turns one into normalised, augmented (images, labels). `gather` is plain PyTorch with no host sync, so the
    training step can include it in one CUDA graph (step.py). Every batch holds batch_size images (this rank's
    share of them under data parallelism): an epoch is `steps` full batches."""

    size: int  # images per epoch (the whole training set; steps x batch_size of them are drawn)
    steps: int  # full batches per epoch

    def epoch(self, epoch: int, start: int) -> Iterator[tuple[torch.Tensor, ...]]: ...

    def gather(self, *batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class EvalBatches(Protocol):
    """Normalised evaluation batches on the device; images may be [B, crops, C, H, W] for multi-crop testing."""

    size: int

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass(frozen=True)
class TrialData:
    train: TrainBatches
    evals: dict[str, EvalBatches]  # "test", and "val" when data.val_split > 0
    num_classes: int


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch `epoch`'s data order and augmentation: a function of the trial seed alone, so resuming at
    any iteration replays exactly the batches an uninterrupted run would have drawn."""
    return (seed * 1_000_003 + epoch) % (2**63)


class TensorTrainBatches:
    """Training batches gathered from a uint8 tensor on the device; per-epoch order and crop/flip draws come
    from a CPU generator seeded by (seed, epoch), so CPU and GPU runs see the same images in the same order.
    A batch is one int64 [4, B] tensor: image indices, crop top, crop left, flip (only indices without
    augmentation). Under data parallelism each rank yields its shard of every global batch (`size` stays the
    global count)."""

    def __init__(self, split: TensorSplit, normalizer: Normalizer, batch_size: int, seed: int, augment: bool,
                 memory_format: torch.memory_format = torch.contiguous_format, shard: Shard = Shard()):
        self.split, self.normalizer, self.batch_size, self.seed = split, normalizer, batch_size, seed
        self.augment, self.memory_format, self.shard = augment, memory_format, shard
        self.size = len(split)
        self.steps = steps_per_epoch(self.size, batch_size)
        self.pad = split.images.shape[-1] // 8  # 4 pixels for 32x32 CIFAR (Sec. 4.2)

    def plan(self, epoch: int) -> torch.Tensor:
        """This rank's batches of epoch `epoch`: int64 [steps, 4 (or 1), local batch] on the device."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        used = self.steps * self.batch_size  # the order's last size mod batch_size images sit this epoch out
        rows = [torch.randperm(self.size, generator=generator)[:used]]
        if self.augment:
            draws = draw_crop_flip(self.size, self.pad, generator)
            rows += [draws.top[:used], draws.left[:used], draws.flip[:used].long()]
        plan = torch.stack(rows).view(len(rows), self.steps, self.batch_size).transpose(0, 1)
        start, stop = self.shard.bounds(self.batch_size)
        return plan[:, :, start:stop].contiguous().to(self.split.images.device, non_blocking=True)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        plan = self.plan(epoch)
        for step in range(start, self.steps):
            yield (plan[step],)

    def gather(self, *batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (selection,) = batch
        index = selection[0]
        images = self.normalizer(self.split.images[index])
        if self.augment:
            draws = CropFlip(selection[1], selection[2], selection[3].bool())
            images = crop_flip(images, draws, self.pad, self.memory_format)
        else:
            images = images.contiguous(memory_format=self.memory_format)
        return images, self.split.labels[index]


class TensorEvalBatches:
    def __init__(self, split: TensorSplit, normalizer: Normalizer, batch_size: int,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.split, self.normalizer, self.batch_size, self.memory_format = split, normalizer, batch_size, memory_format
        self.size = len(split)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.size, self.batch_size):
            images = self.normalizer(self.split.images[start:start + self.batch_size])
            yield images.contiguous(memory_format=self.memory_format), self.split.labels[start:start + self.batch_size]


def tensor_trial_data(dataset: TensorDataset, spec: DataSpec, batch_size: int, eval_batch_size: int, seed: int,
                      device: torch.device, memory_format: torch.memory_format, shard: Shard = Shard()) -> TrialData:
    """Move a tensor dataset to `device` once and wrap it in batch iterators (normaliser fitted on train only).
    Each rank evaluates its own slice of the test and validation sets."""
    train = dataset.train.to(device)
    normalizer = fit_normalizer(train.images, spec.normalize)
    evals: dict[str, EvalBatches] = {
        "test": TensorEvalBatches(dataset.test.shard(shard).to(device), normalizer, eval_batch_size, memory_format)}
    if dataset.val is not None:
        evals["val"] = TensorEvalBatches(dataset.val.shard(shard).to(device), normalizer, eval_batch_size,
                                         memory_format)
    batches = TensorTrainBatches(train, normalizer, batch_size, seed, spec.augment, memory_format, shard)
    return TrialData(batches, evals, dataset.num_classes)


def load_tensor_dataset(spec: DataSpec, image_size: int) -> TensorDataset:
    """CIFAR-10/100 or synthetic data on the CPU, with train_limit, test_limit and val_split applied."""
    if spec.dataset == "synthetic":
        train, test, classes = synthetic(spec, image_size)
    else:
        train, test, classes = load_cifar(spec)
    train, test = train.head(spec.train_limit), test.head(spec.test_limit)
    val = None
    if spec.val_split:
        if spec.val_split >= len(train):
            raise SpecError("data.val_split", spec.val_split,
                            f"fewer than the {len(train)} training images (it holds out the last N of them)")
        keep = len(train) - spec.val_split  # the paper's 45k/5k split holds out the last 5k
        train, val = (TensorSplit(train.images[:keep], train.labels[:keep]),
                      TensorSplit(train.images[keep:], train.labels[keep:]))
    return TensorDataset(train, test, val, classes)


def synthetic(spec: DataSpec, image_size: int) -> tuple[TensorSplit, TensorSplit, int]:
    """Learnable random images: each class is a smooth random colour pattern plus per-image noise.

    Deterministic (one fixed seed), any size and class count; good for smoke runs and tests, meaningless for
    accuracy claims.
    """
    classes = spec.classes
    size = spec.image_size or image_size
    generator = torch.Generator().manual_seed(SYNTHETIC_DATA_SEED)
    coarse = torch.randn(classes, 3, 4, 4, generator=generator)
    templates = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)

    def make(count: int) -> TensorSplit:
        labels = torch.randint(0, classes, (count,), generator=generator)
        images = torch.empty(count, 3, size, size, dtype=torch.uint8)
        for start in range(0, count, 256):  # chunks keep the float temporaries small at 224x224
            part = labels[start:start + 256]
            noise = torch.randn(len(part), 3, size, size, generator=generator)
            pixels = 128 + 40 * templates[part] + 30 * noise
            images[start:start + 256] = pixels.round().clamp(0, 255).to(torch.uint8)
        return TensorSplit(images, labels)

    return make(spec.synthetic_train), make(spec.synthetic_test), classes


def load_cifar(spec: DataSpec) -> tuple[TensorSplit, TensorSplit, int]:
    """Read the pickles under data.root; download with torchvision first when data.download is set and needed."""
    folder, train_files, test_file, label_key, classes = CIFAR_LAYOUTS[spec.dataset]
    root = Path(spec.root).expanduser()
    train, test = retry_after_download(spec, root, partial(_read_cifar, spec.dataset, root, folder, train_files,
                                                           test_file, label_key))
    return train, test, classes


def retry_after_download(spec: DataSpec, root: Path, read: Callable[[], T]) -> T:
    """`read()` the CIFAR data under `root`; when that raises DatasetError and data.download is set, download the
    data set with torchvision and read once more (a second DatasetError then stands)."""
    try:
        return read()
    except DatasetError:
        if not spec.download:
            raise
        download_cifar(spec.dataset, root)
        return read()


def _read_cifar(dataset: str, root: Path, folder: str, train_files: tuple[str, ...], test_file: str,
                label_key: str) -> tuple[TensorSplit, TensorSplit]:
    where, remedy = check_cifar_files(dataset, root)
    train = [_read_batch(where / name, label_key, root, remedy) for name in train_files]
    test = _read_batch(where / test_file, label_key, root, remedy)
    return TensorSplit(torch.cat([t.images for t in train]), torch.cat([t.labels for t in train])), test


def check_cifar_files(dataset: str, root: Path) -> tuple[Path, str]:
    """Raise DatasetError unless every batch file of `dataset` is under `root`; returns the folder and the text
    that says how to get the data (for later errors)."""
    folder, train_files, test_file, _, _ = CIFAR_LAYOUTS[dataset]
    where = root / folder
    remedy = (f"a directory holding {folder}/ with the pickled batches {', '.join((*train_files, test_file))} "
              f"(the standard python {dataset} layout); set data.root to where it is, or `data.download: true` "
              f"to let torchvision fetch it on a machine with internet, or `data.dataset: synthetic` to run "
              f"without real data")
    missing = [name for name in (*train_files, test_file) if not (where / name).is_file()]
    if missing:
        raise DatasetError(root, f"looked in {where}: missing {', '.join(missing)}", remedy)
    return where, remedy


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts and strings only: a CIFAR batch holds nothing else, and refusing
    other globals means a foreign file in data.root cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def _read_batch(path: Path, label_key: str, root: Path, remedy: str) -> TensorSplit:
    """One CIFAR pickle: 'data' [N, 3072] uint8 (R, G, B planes of 32x32) and a list of labels."""
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="latin1").load()  # the originals are Python 2 pickles
        data = torch.as_tensor(batch["data"]).to(torch.uint8)
        labels = torch.as_tensor(list(batch[label_key]), dtype=torch.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            raise ValueError(f"data of shape {tuple(data.shape)} with {len(labels)} labels")
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise DatasetError(root, f"{path} is not a readable CIFAR batch: {err}", remedy) from err
    return TensorSplit(data.reshape(-1, 3, 32, 32).contiguous(), labels)


def download_cifar(dataset: str, root: Path) -> None:
    import torchvision  # only here: reading the pickles needs no torchvision

    make = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    try:
        for train in (True, False):
            make(str(root), train=train, download=True)
    except Exception as err:  # URLError, checksum failures, disk errors: all mean "no data here"
        raise DatasetError(root, f"torchvision could not download {dataset}: {err}",
                           "a reachable download (data.download needs internet), or a copy of the data set "
                           "placed under data.root, or `data.dataset: synthetic`") from err
