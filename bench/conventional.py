"""The conventional CIFAR trainer this project is measured against (bench/train_throughput.py).

Written the way most public CIFAR ResNet trainers are (akamaster's pytorch_resnet_cifar10, the PyTorch tutorials):
a Dataset of uint8 HWC images turned into PIL images, torchvision transforms (RandomCrop(32, padding=4),
RandomHorizontalFlip, ToTensor, Normalize) run per image in DataLoader workers, pinned host batches copied to the
device, fp32 NCHW, torch.optim.SGD with its default (foreach) kernels, and `loss.item()` every step for the running
average a progress bar shows. Same model and batch as ours; only the machinery differs.
"""
from __future__ import annotations

import itertools
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from resnet_core.model import build_model
from resnet_core.spec import ModelSpec

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class PilImages(torch.utils.data.Dataset):
    """uint8 [N, H, W, C] images served as PIL images through torchvision transforms, one at a time."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def conventional_loader(images_u8: torch.Tensor, labels: torch.Tensor, batch_size: int, workers: int,
                        pin_memory: bool) -> torch.utils.data.DataLoader:
    from torchvision import transforms as T

    size = images_u8.shape[-1]
    transform = T.Compose([T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    dataset = PilImages(images_u8.permute(0, 2, 3, 1).numpy(), labels.numpy(), transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                       num_workers=workers, pin_memory=pin_memory,
                                       persistent_workers=workers > 0)


def default_workers(device: torch.device) -> int:
    """min(8, cores) beside a GPU. On a CPU the workers compete with training for the same cores (2 workers on 2
    cores ran 5x slower than 1 here), so half the cores: a fair conventional baseline, not a straw man."""
    cores = os.cpu_count() or 1
    return min(8, cores) if device.type == "cuda" else max(1, cores // 2)


class ConventionalTrainer:
    """The conventional loop, timed in windows so a benchmark can interleave it with ours (both then see the
    same background load on a shared machine)."""

    def __init__(self, model_spec: ModelSpec, images_u8: torch.Tensor, labels: torch.Tensor, num_classes: int,
                 batch_size: int, device: torch.device, workers: int | None = None):
        workers = default_workers(device) if workers is None else workers
        torch.manual_seed(0)
        self.model = build_model(model_spec, num_classes).to(device).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        loader = conventional_loader(images_u8, labels, batch_size, workers, pin_memory=device.type == "cuda")
        self.batches = itertools.chain.from_iterable(itertools.repeat(loader))
        self.batch_size, self.device, self.running_loss = batch_size, device, 0.0

    def run(self, steps: int) -> None:
        for _ in range(steps):
            x, y = next(self.batches)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.running_loss += loss.item()  # the progress bar's running loss: one host sync per step

    def window(self, steps: int) -> float:
        """Images per second over `steps` steps."""
        self.synchronize()
        started = time.perf_counter()
        self.run(steps)
        self.synchronize()
        return steps * self.batch_size / (time.perf_counter() - started)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
