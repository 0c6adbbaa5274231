"""Batched on-device augmentation and normalisation of uint8 image tensors (Sec. 4.2 of the ResNet paper).

The paper's CIFAR augmentation is "4 pixels padded on each side, a 32x32 crop randomly sampled from the padded
image or its horizontal flip", on top of per-pixel mean subtraction. ImageNet adds AlexNet's PCA lighting
(`pca_lighting`, applied per image in imagenet.py's DataLoader workers). Here the whole batch is cropped and flipped by
one gather on whatever device holds it: no per-image Python, no PIL. The random draws are explicit arguments
(`CropFlip`), so a caller decides where randomness comes from (train.py derives it from the seed and the epoch,
which makes resumed runs continue exactly) and tests can check crops pixel by pixel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Normalizer:
    """x_u8 -> (x - mean) / scale as float. mean and scale broadcast over [N, C, H, W] ([C, H, W] or [C, 1, 1])."""

    mean: torch.Tensor  # in pixel units 0..255
    scale: torch.Tensor  # pixel units per input unit

    def __call__(self, images_u8: torch.Tensor) -> torch.Tensor:
        return (images_u8.float() - self.mean) / self.scale

    def to(self, device: torch.device | str) -> "Normalizer":
        return Normalizer(self.mean.to(device), self.scale.to(device))


def fit_normalizer(images_u8: torch.Tensor, kind: Literal["pixel_mean", "channel"],
                   chunk: int = 10_000) -> Normalizer:
    """Statistics of the training images [N, C, H, W] uint8, summed in float64 chunks (no float copy of the set).

    pixel_mean: subtract the mean image (Sec. 4.2), divide by 255 so inputs stay near [-1, 1]; the BN after the
    first conv makes that constant scale immaterial. channel: per-channel mean and std (the common alternative).
    """
    n, c = images_u8.shape[:2]
    total = torch.zeros(images_u8.shape[1:], dtype=torch.float64, device=images_u8.device)
    squares = torch.zeros(c, dtype=torch.float64, device=images_u8.device)
    for start in range(0, n, chunk):
        part = images_u8[start:start + chunk].double()
        total += part.sum(0)
        squares += part.pow(2).sum((0, 2, 3))
    mean_image = total / n  # [C, H, W]
    if kind == "pixel_mean":
        return Normalizer(mean_image.float(), torch.tensor(255.0, device=images_u8.device))
    pixels = n * images_u8.shape[2] * images_u8.shape[3]
    channel_mean = mean_image.mean((1, 2))
    channel_std = (squares / pixels - channel_mean.pow(2)).clamp_min(1e-12).sqrt()
    return Normalizer(channel_mean.float()[:, None, None], channel_std.float()[:, None, None])


@dataclass(frozen=True)
class CropFlip:
    """Random draws for one batch: crop offsets into the padded image (0..2*pad) and which images are flipped."""

    top: torch.Tensor  # [N] int64
    left: torch.Tensor  # [N] int64
    flip: torch.Tensor  # [N] bool

    def __len__(self) -> int:
        return len(self.top)

    def __getitem__(self, index: slice | torch.Tensor) -> "CropFlip":
        return CropFlip(self.top[index], self.left[index], self.flip[index])

    def to(self, device: torch.device | str) -> "CropFlip":
        return CropFlip(self.top.to(device), self.left.to(device), self.flip.to(device))


def draw_crop_flip(count: int, pad: int, generator: torch.Generator) -> CropFlip:
    """Uniform crop offsets in [0, 2*pad] per axis and a fair coin per image for the flip."""
    top = torch.randint(0, 2 * pad + 1, (count,), generator=generator, device=generator.device)
    left = torch.randint(0, 2 * pad + 1, (count,), generator=generator, device=generator.device)
    flip = torch.randint(0, 2, (count,), generator=generator, device=generator.device).bool()
    return CropFlip(top, left, flip)


def crop_flip(images: torch.Tensor, draws: CropFlip, pad: int,
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Zero-pad `images` [N, C, H, W] by `pad` pixels, crop H x W at the drawn offsets, flip the drawn images.

    Zero padding after normalisation pads with the mean, as the paper's per-pixel-mean pipeline does. One
    advanced-indexing gather does every image at once; the output keeps the input's shape and dtype, laid out in
    `memory_format` (the gather produces channels_last naturally, so that layout costs no copy).
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = draws.top[:, None] + torch.arange(h, device=images.device)  # [N, H] rows of the padded image
    cols = torch.arange(w, device=images.device).expand(n, w)
    cols = torch.where(draws.flip[:, None], cols.flip(1), cols) + draws.left[:, None]  # [N, W], flipped reads
    batch = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indices on dims 0, 2, 3 with a slice on dim 1: the result is [N, H, W, C].
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous(memory_format=memory_format)


# AlexNet's colour augmentation (Krizhevsky et al. 2012, Sec. 4.1), which the ResNet paper uses on ImageNet
# ("the standard color augmentation in [21]", Sec. 3.4): add to every pixel the RGB shift
# eigvec @ (alpha * eigval), alpha ~ N(0, 0.1) per image. The eigen-decomposition of ImageNet's RGB covariance,
# pixels in [0, 1], as fb.resnet.torch (the ResNet authors' reference re-implementation) gives it; eigenvectors
# are the columns, in R, G, B rows.
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = ((-0.5675, 0.7192, 0.4009),
                   (-0.5808, -0.0045, -0.8140),
                   (-0.5836, -0.6948, 0.4203))


def lighting_shift(alpha: torch.Tensor) -> torch.Tensor:
    """Per-image RGB shifts [N, 3] for draws `alpha` [N, 3] (one per principal component)."""
    eigval = torch.tensor(IMAGENET_EIGVAL, dtype=alpha.dtype, device=alpha.device)
    eigvec = torch.tensor(IMAGENET_EIGVEC, dtype=alpha.dtype, device=alpha.device)
    return (alpha * eigval) @ eigvec.T


def pca_lighting(images: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """`images` [N, 3, H, W] or [3, H, W] in [0, 1] units, shifted by `lighting_shift(alpha)` per image."""
    shift = lighting_shift(alpha.reshape(-1, 3)).to(images.dtype)
    return images + (shift[:, :, None, None] if images.dim() == 4 else shift[0, :, None, None])
