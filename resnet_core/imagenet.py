"""ImageNet-style folders (train/ and val/ of class folders) through a DataLoader, as Sec. 3.4 of the ResNet paper.

Training (Sec. 3.4): scale augmentation (shorter side resized to a random size in [256, 480]), a random 224x224
crop, a horizontal flip with probability 1/2, AlexNet's PCA lighting ("the standard color augmentation in [21]",
alpha ~ N(0, data.lighting), 0.1 by default), mean subtraction. Testing: the paper's "standard 10-crop testing
[21]", AlexNet's: the image resized to 256 on its shorter side, its central 256x256 square, and from that the four
corner and the centre 224x224 crops and their flips, the softmax averaged over crops; evaluation also scores the
centre crop alone (1-crop, as ResNeXt's tables). The paper's best results (Table 4) average fully-convolutional
scores at several scales; that is not implemented. ImageNet cannot sit in GPU memory, so decoding and augmentation
run in DataLoader workers; the batches are moved to the trial's device.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

import torch

from resnet_core.augment import pca_lighting
from resnet_core.data import DatasetError, EvalBatches, TrialData, epoch_seed
from resnet_core.distributed import Shard
from resnet_core.schedule import steps_per_epoch
from resnet_core.spec import DataSpec
from resnet_core.specio import SpecError

SCALE_RANGE = (256, 480)  # shorter side, pixels (Sec. 3.4)
CROP = 224
TEST_RESIZE = 256
# Per-pixel means at random 224 crops of varied scale are flat across positions, so the per-channel ImageNet
# mean (and, for data.normalize=channel, std) stands in for the paper's per-pixel mean.
FOLDER_LAYOUT = ("a directory with train/ and val/, each holding one folder of images per class (the ImageNet "
                 "layout torchvision's ImageFolder reads); set data.root, or use `data.dataset: synthetic`")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class RandomShorterSide:
    """Resize so the shorter side is a uniform random integer in [low, high] (the paper's scale augmentation)."""

    def __init__(self, low: int, high: int):
        self.low, self.high = low, high

    def __call__(self, image):  # PIL image in, PIL image out
        from torchvision.transforms import functional as TF

        return TF.resize(image, random.randint(self.low, self.high))  # workers seed `random` per worker


class PCALighting:
    """AlexNet's lighting noise on one [3, H, W] tensor in [0, 1]: alpha ~ N(0, std) per image, drawn from torch's
    per-worker generator (DataLoader seeds it per worker and epoch)."""

    def __init__(self, std: float):
        self.std = std

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return pca_lighting(image, torch.randn(3) * self.std)


class StackCrops:
    """Ten PIL crops -> one [10, C, H, W] normalised tensor."""

    def __init__(self, normalize):
        from torchvision import transforms as T

        self.to_tensor, self.normalize = T.ToTensor(), normalize

    def __call__(self, crops) -> torch.Tensor:
        return torch.stack([self.normalize(self.to_tensor(c)) for c in crops])


class LoaderTrainBatches:
    """An epoch of the training folder in an order drawn from (seed, epoch); resuming mid-epoch skips the
    batches already done without decoding them. Under data parallelism a rank decodes only its shard of each
    global batch."""

    def __init__(self, dataset, batch_size: int, seed: int, workers: int, device: torch.device,
                 memory_format: torch.memory_format, shard: Shard = Shard()):
        self.dataset, self.batch_size, self.seed, self.workers = dataset, batch_size, seed, workers
        self.device, self.memory_format, self.shard = device, memory_format, shard
        self.size = len(dataset)
        self.steps = steps_per_epoch(self.size, batch_size)  # full batches; the order's last few sit it out

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(self.size, generator=generator)
        bs = self.batch_size
        batches = [self.shard.part(order[s * bs:(s + 1) * bs]).tolist()
                   for s in range(start, self.steps)]
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=batches, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", generator=generator, persistent_workers=False)
        for images, labels in loader:
            yield (images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format),
                   labels.to(self.device, non_blocking=True))

    def gather(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return images, labels  # decoded and augmented by the DataLoader's workers already


class LoaderEvalBatches:
    def __init__(self, dataset, batch_size: int, workers: int, device: torch.device):
        self.dataset, self.batch_size, self.workers, self.device = dataset, batch_size, workers, device
        self.size = len(dataset)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=self.batch_size, num_workers=self.workers,
                                             pin_memory=self.device.type == "cuda")
        for images, labels in loader:  # images: [B, 10, C, H, W]
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


def folder_trial_data(spec: DataSpec, batch_size: int, eval_batch_size: int, seed: int, device: torch.device,
                      memory_format: torch.memory_format, shard: Shard = Shard()) -> TrialData:
    from torchvision import datasets
    from torchvision import transforms as T

    root = Path(spec.root).expanduser()
    remedy = FOLDER_LAYOUT
    std = STD if spec.normalize == "channel" else (1.0, 1.0, 1.0)
    normalize = T.Normalize(MEAN, std)
    crop = spec.image_size or CROP
    scale = crop / CROP  # data.image_size shrinks the whole recipe alike (tiny images for tests and laptops)
    lighting = [PCALighting(spec.lighting)] if spec.lighting else []
    train_tf = T.Compose([RandomShorterSide(*(round(side * scale) for side in SCALE_RANGE)), T.RandomCrop(crop),
                          T.RandomHorizontalFlip(), T.ToTensor(), *lighting, normalize])
    test_side = round(TEST_RESIZE * scale)
    test_tf = T.Compose([T.Resize(test_side), T.CenterCrop(test_side), T.TenCrop(crop), StackCrops(normalize)])
    try:
        train_all = datasets.ImageFolder(str(root / "train"), transform=train_tf)
        test = datasets.ImageFolder(str(root / "val"), transform=test_tf)
    except (FileNotFoundError, OSError) as err:
        raise DatasetError(root, f"looked in {root}/train and {root}/val: {err}", remedy) from err
    if train_all.classes != test.classes:
        raise DatasetError(root, "train/ and val/ hold different class folders", remedy)
    count = min(len(train_all), spec.train_limit or len(train_all))
    keep = count - spec.val_split
    if keep < 1:
        raise SpecError("data.val_split", spec.val_split, f"fewer than the {count} training images")
    subset = torch.utils.data.Subset

    def share(start: int, stop: int) -> range:  # this rank's slice of [start, stop) to evaluate
        low, high = shard.bounds(stop - start)
        return range(start + low, start + high)

    train = subset(train_all, range(keep))
    evals: dict[str, EvalBatches] = {
        "test": LoaderEvalBatches(subset(test, share(0, min(len(test), spec.test_limit or len(test)))),
                                  max(1, eval_batch_size // 10), spec.workers, device)}
    if spec.val_split:
        val = datasets.ImageFolder(str(root / "train"), transform=test_tf)
        evals["val"] = LoaderEvalBatches(subset(val, share(keep, count)), max(1, eval_batch_size // 10),
                                         spec.workers, device)
    batches = LoaderTrainBatches(train, batch_size, seed, spec.workers, device, memory_format, shard)
    return TrialData(batches, evals, len(train_all.classes))
