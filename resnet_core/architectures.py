"""Named architectures: rows of a table, not builders, each a ModelSpec and the dataset it is meant for.

The papers' own figures for them (params, multiply-adds, errors) are in orchestrator/report/paper_values.yaml,
beside the tables they are compared in."""
from __future__ import annotations

from dataclasses import dataclass

from resnet_core.spec import ModelSpec


@dataclass(frozen=True)
class Architecture:
    name: str
    model: ModelSpec
    dataset: str  # what the papers trained it on; sets the class count and image size for accounting
    num_classes: int


def _cifar(depth: int, residual: bool = True) -> ModelSpec:
    return ModelSpec(family="cifar", depth=depth, residual=residual)


_CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)  # Table 6 (n = 3, 5, 7, 9, 18, 200)
_IMAGENET_DEPTHS = (18, 34, 50, 101, 152)  # Table 1

ARCHITECTURES: dict[str, Architecture] = {
    **{f"resnet{d}": Architecture(f"resnet{d}", _cifar(d), "cifar10", 10) for d in _CIFAR_DEPTHS},
    **{f"plain{d}": Architecture(f"plain{d}", _cifar(d, residual=False), "cifar10", 10) for d in _CIFAR_DEPTHS},
    **{f"resnet{d}": Architecture(f"resnet{d}", ModelSpec(family="imagenet", depth=d), "imagenet", 1000)
       for d in _IMAGENET_DEPTHS},
    # ResNeXt counts follow torchvision's stride-on-3x3 placement, which the ResNeXt paper's figures use.
    **{f"resnext{d}_32x4d": Architecture(f"resnext{d}_32x4d", ModelSpec(family="resnext", depth=d, cardinality=32,
                                                                       width=4, stride_on="3x3"), "imagenet", 1000)
       for d in (50, 101)},
    **{f"resnext29_{c}x{w}d": Architecture(f"resnext29_{c}x{w}d", ModelSpec(family="resnext", depth=29,
                                                                           cardinality=c, width=w), "cifar10", 10)
       for c, w in ((8, 64), (16, 64), (32, 4))},
}
