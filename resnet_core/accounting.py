"""Parameters and multiply-adds counted from the built model, the way the paper counts "FLOPs".

Multiply-adds are those of convolutions and fully-connected layers for one image (ResNet Table 1). ImageNet-size
nets are counted on the meta device (no memory, no arithmetic); 32x32 nets on the CPU, where a real forward of
ResNet-1202 (1.2 s here) beats the meta device's per-op overhead over its 3,600 layers (6 s here).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from resnet_core.layout import net_layout
from resnet_core.model import build_model
from resnet_core.spec import ModelSpec, TrialSpec


@dataclass(frozen=True)
class ModelCost:
    params: int
    macs: int  # multiply-adds for one image at `image_size`
    image_size: int
    response_layer_names: tuple[str, ...]  # the 3x3 layers Figure 7 measures, in order

    @property
    def response_layers(self) -> int:
        return len(self.response_layer_names)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, image_size: int) -> int:
    """Multiply-adds of every Conv2d and Linear for one image (the paper's FLOPs)."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    handles = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return total


@lru_cache(maxsize=64)  # sweeps repeat architectures over seeds and settings; specs are frozen, so hashable
def model_cost(spec: ModelSpec, num_classes: int, image_size: int | None = None) -> ModelCost:
    """Cost of the network `spec` describes, at the layout's native resolution unless told otherwise."""
    size = image_size or net_layout(spec).image_size
    with torch.device("meta" if size >= 128 else "cpu"):
        model = build_model(spec, num_classes)
    names = tuple(name for name, _ in model.response_layers())
    return ModelCost(count_params(model), count_macs(model, size), size, names)


def input_size(dataset: str, image_size: int | None) -> int | None:
    """The size a trial's images reach the network at: `data.image_size` of a synthetic set or of ImageNet folders
    (their crop); None, the layout's native 32 or 224, otherwise (CIFAR is 32 pixels, whatever image_size says)."""
    return image_size if dataset in ("synthetic", "imagenet") else None


def trial_cost(spec: TrialSpec) -> ModelCost:
    """Cost of a trial's network at the size its images have (input_size)."""
    data = spec.data
    return model_cost(spec.model, data.classes, input_size(data.dataset, data.image_size))
