"""One parameterised ResNet: CIFAR 6n+2, ImageNet 18-152, ResNeXt, plain or residual, post- or pre-activation.

Variants are data, not classes: `layout.net_layout` gives the stage table, `make_stage` turns one row into blocks.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from resnet_core.layout import NetLayout, StageLayout, net_layout
from resnet_core.spec import ModelSpec


class LayerResponse(nn.Identity):
    """Marks a 3x3 layer's response after BN, before the addition and ReLU: what Figure 7 measures."""


class ZeroPadShortcut(nn.Module):
    """Option A (Sec. 3.3): identity with stride-s subsampling and zero-padded extra channels; no parameters."""

    def __init__(self, in_width: int, out_width: int, stride: int):
        super().__init__()
        self.extra, self.stride = out_width - in_width, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra}, stride={self.stride}"


def projection(in_width: int, out_width: int, stride: int, preact: bool) -> nn.Module:
    """Options B/C: 1x1 conv (+ BN in post-activation nets)."""
    conv = nn.Conv2d(in_width, out_width, 1, stride, bias=False)
    return conv if preact else nn.Sequential(conv, nn.BatchNorm2d(out_width))


def make_shortcut(spec: ModelSpec, in_width: int, out_width: int, stride: int) -> nn.Module | None:
    if not spec.residual:
        return None
    changes_shape = in_width != out_width or stride != 1
    if spec.shortcut == "C" or (spec.shortcut == "B" and changes_shape):
        return projection(in_width, out_width, stride, spec.preact)
    return ZeroPadShortcut(in_width, out_width, stride) if changes_shape else nn.Identity()


class Block(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1, grouped 3x3, 1x1) block; residual or plain; post- or pre-activation."""

    def __init__(self, spec: ModelSpec, kind: str, in_width: int, stage: StageLayout, stride: int):
        super().__init__()
        self.preact = spec.preact
        if kind == "basic":
            convs = [(in_width, stage.out_width, 3, stride, 1), (stage.out_width, stage.out_width, 3, 1, 1)]
        else:  # the paper strides the first 1x1; torchvision ("v1.5") the 3x3
            s1, s3 = (stride, 1) if spec.stride_on == "1x1" else (1, stride)
            inner = stage.inner_width
            convs = [(in_width, inner, 1, s1, 1), (inner, inner, 3, s3, spec.cardinality),
                     (inner, stage.out_width, 1, 1, 1)]
        self.pre_act = nn.Sequential(nn.BatchNorm2d(in_width), nn.ReLU(inplace=True)) if self.preact else None
        self.layers = nn.Sequential(*(self._unit(i, len(convs), *c) for i, c in enumerate(convs)))
        self.shortcut = make_shortcut(spec, in_width, stage.out_width, stride)

    def _unit(self, index: int, count: int, cin: int, cout: int, k: int, stride: int, groups: int) -> nn.Sequential:
        conv = nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False)
        tap = [LayerResponse()] if k == 3 else []
        if self.preact:  # BN-ReLU-conv; the block's first BN-ReLU is shared with a projection shortcut
            head = [] if index == 0 else [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
            return nn.Sequential(*head, conv, *tap)
        tail = [nn.ReLU(inplace=True)] if index < count - 1 else []  # last ReLU comes after the addition
        return nn.Sequential(conv, nn.BatchNorm2d(cout), *tap, *tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            pre = self.pre_act(x)
            out = self.layers(pre)
            if self.shortcut is None:
                return out
            # A projection sees the pre-activated input (He et al. 2016); identity and option A see x itself.
            parameter_free = isinstance(self.shortcut, (nn.Identity, ZeroPadShortcut))
            return out + self.shortcut(x if parameter_free else pre)
        out = self.layers(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)

    def zero_init_last_bn(self) -> None:
        """Start as identity (Goyal et al. 2017): zero the BN that ends the residual branch."""
        last_bn = [m for m in self.layers[-1] if isinstance(m, nn.BatchNorm2d)]
        if last_bn and not self.preact:
            nn.init.zeros_(last_bn[-1].weight)


def make_stage(spec: ModelSpec, kind: str, in_width: int, stage: StageLayout) -> tuple[nn.Sequential, int]:
    """One stage's blocks and its output width (as timm's make_blocks): a pure function of its row, no counters."""
    blocks = [Block(spec, kind, in_width if i == 0 else stage.out_width, stage, stage.stride if i == 0 else 1)
              for i in range(stage.blocks)]
    return nn.Sequential(*blocks), stage.out_width


def make_stem(layout: NetLayout, preact: bool) -> nn.Sequential:
    width = layout.stem_width
    if layout.stem == "cifar":
        conv = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        if preact:  # the first block's BN-ReLU follows
            return nn.Sequential(conv, LayerResponse())
        return nn.Sequential(conv, nn.BatchNorm2d(width), LayerResponse(), nn.ReLU(inplace=True))
    conv = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))


class ResNet(nn.Module):
    def __init__(self, spec: ModelSpec, num_classes: int):
        super().__init__()
        self.spec = spec
        layout = net_layout(spec)
        self.stem = make_stem(layout, spec.preact)
        stages, width = [], layout.stem_width
        for stage in layout.stages:
            built, width = make_stage(spec, layout.block, width, stage)
            stages.append(built)
        self.stages = nn.Sequential(*stages)
        # Pre-activation nets end with BN-ReLU before pooling (He et al. 2016, Fig. 4e).
        self.final_act = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(inplace=True)) if spec.preact else None
        self.fc = nn.Linear(width, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. 2015 ("Delving deep"), as Sec. 3.4 says
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.spec.zero_init_last_bn:
            for m in self.modules():
                if isinstance(m, Block):
                    m.zero_init_last_bn()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.final_act(x) if self.final_act is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))

    def response_layers(self) -> list[tuple[str, nn.Module]]:
        """Figure 7's measuring points, one per 3x3 layer, in forward order."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, LayerResponse)]


def build_model(spec: ModelSpec, num_classes: int) -> ResNet:
    return ResNet(spec, num_classes)
