"""Figure 7 of the ResNet paper: the standard deviation of every 3x3 layer's response, in layer order.

The response is taken after BN and before the addition and ReLU (model.LayerResponse marks the spot), on test
images with the network in eval mode. An in-place ReLU follows some of those points, so each forward hook folds
its tensor into running sums at once (float64, on the device) instead of keeping it; one host sync at the end.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


@torch.no_grad()
def layer_response_std(model: nn.Module, batches: Iterable[torch.Tensor]) -> tuple[list[str], list[float]]:
    """(layer names, std of each layer's response over all test images, channels and positions).

    `model` must have `response_layers()` (model.ResNet). Batches of [B, crops, C, H, W] are flattened to
    [B * crops, C, H, W]: every crop counts as an image. Call it inside an autocast context to measure the
    network as it trained (statistics are summed in float64 either way).
    """
    layers = model.response_layers()
    sums: list[torch.Tensor] = []
    handles = []

    def make_hook(slot: int):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            x = output.detach().double()
            sums[slot] += torch.stack((x.sum(), x.pow(2).sum(), torch.tensor(x.numel(), device=x.device,
                                                                             dtype=torch.float64)))
        return hook

    was_training = model.training
    model.eval()
    try:
        for slot, (_name, module) in enumerate(layers):
            sums.append(None)  # type: ignore[arg-type]  # set on the first batch's device below
            handles.append(module.register_forward_hook(make_hook(slot)))
        for images in batches:
            if images.dim() == 5:
                images = images.flatten(0, 1)
            if sums[0] is None:
                sums[:] = [torch.zeros(3, dtype=torch.float64, device=images.device) for _ in layers]
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not layers or sums[0] is None:
        return [name for name, _ in layers], [float("nan")] * len(layers)
    totals = torch.stack(sums).cpu()  # [layers, 3]: sum, sum of squares, count
    mean = totals[:, 0] / totals[:, 2]
    variance = (totals[:, 1] / totals[:, 2] - mean.pow(2)).clamp_min(0)
    return [name for name, _ in layers], variance.sqrt().tolist()
