"""From a ModelSpec to the network's shape: stem, block kind and one (width, blocks, stride) row per stage.

Pure data, no torch: the spec validates itself with it, `plan` can reason about it, and `model.py` builds from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from resnet_core.specio import SpecError


class ModelShape(Protocol):
    """What the layout reads of a ModelSpec (resnet_core.spec, which validates itself with this module)."""

    family: str
    depth: int
    n: int | None
    cardinality: int
    width: int

# ResNet Table 1: blocks per stage conv2_x..conv5_x. 200 is the pre-activation paper's.
IMAGENET_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3),
}
RESNEXT_IMAGENET_DEPTHS = (50, 101, 152)


@dataclass(frozen=True)
class StageLayout:
    out_width: int  # channels leaving each block of the stage
    inner_width: int  # bottleneck: channels of the grouped 3x3 conv (C x d); basic: equals out_width
    blocks: int
    stride: int  # of the stage's first block


@dataclass(frozen=True)
class NetLayout:
    stem: Literal["cifar", "imagenet"]  # 3x3 conv at 32x32, or 7x7/2 conv + 3x3/2 max-pool at 224x224
    stem_width: int
    block: Literal["basic", "bottleneck"]
    stages: tuple[StageLayout, ...]

    @property
    def image_size(self) -> int:
        return 32 if self.stem == "cifar" else 224


def resolve_depth(family: str, depth: int | None, n: int | None) -> tuple[int, int | None]:
    """(depth, n) for a family; n (blocks per stage) only for the 3-stage CIFAR layouts."""
    if family == "imagenet" or (family == "resnext" and n is None and depth in RESNEXT_IMAGENET_DEPTHS):
        if n is not None:
            raise SpecError("n", n, f"no n for {family} nets: give depth (one of {_depths(family)})")
        depth = depth if depth is not None else 50
        allowed = IMAGENET_BLOCKS if family == "imagenet" else RESNEXT_IMAGENET_DEPTHS
        if depth not in allowed:
            raise SpecError("depth", depth, f"one of {_depths(family)}")
        return depth, None
    layers_per_block = 2 if family == "cifar" else 3  # basic blocks vs bottlenecks, 3 stages, + stem + fc
    rule = f"{3 * layers_per_block}n+2"
    if n is None:
        depth = depth if depth is not None else (20 if family == "cifar" else 29)
        blocks, rest = divmod(depth - 2, 3 * layers_per_block)
        if rest or blocks < 1:
            hint = f" or one of {_depths(family)}" if family == "resnext" else ""
            raise SpecError("depth", depth, f"{rule} for a CIFAR {family} net (e.g. "
                            f"{3 * layers_per_block + 2}, {6 * layers_per_block + 2}){hint}")
        return depth, blocks
    if n < 1:
        raise SpecError("n", n, "a whole number >= 1")
    if depth is not None and depth != 3 * layers_per_block * n + 2:
        raise SpecError("depth", depth, f"{3 * layers_per_block * n + 2} to match n={n} ({rule})")
    return 3 * layers_per_block * n + 2, n


def _depths(family: str) -> str:
    depths = IMAGENET_BLOCKS if family == "imagenet" else RESNEXT_IMAGENET_DEPTHS
    return ", ".join(map(str, depths))


def net_layout(spec: ModelShape) -> NetLayout:
    """The stage table for a resolved spec: data the builder walks, so no hidden counters change as layers are made."""
    if spec.family == "cifar":  # Sec. 4.2: 16/32/64 filters on 32/16/8 maps, 2n layers each
        stages = tuple(StageLayout(w, w, spec.n, s) for w, s in ((16, 1), (32, 2), (64, 2)))
        return NetLayout("cifar", 16, "basic", stages)
    if spec.family == "resnext" and spec.n is not None:  # ResNeXt Sec. 5.3: 64-wide stem, out 256/512/1024
        stages = tuple(StageLayout(256 * 2**i, spec.cardinality * spec.width * 2**i, spec.n, 1 if i == 0 else 2)
                       for i in range(3))
        return NetLayout("cifar", 64, "bottleneck", stages)
    blocks = IMAGENET_BLOCKS[spec.depth]
    if spec.family == "imagenet" and spec.depth < 50:  # basic blocks, 64..512
        stages = tuple(StageLayout(64 * 2**i, 64 * 2**i, b, 1 if i == 0 else 2) for i, b in enumerate(blocks))
        if spec.cardinality != 1 or spec.width != 64:
            raise SpecError("cardinality", spec.cardinality, f"1 for ResNet-{spec.depth} (basic blocks, no groups)")
        return NetLayout("imagenet", 64, "basic", stages)
    # Bottlenecks: inner C x d doubles per stage (ResNeXt Table 1; C=1, d=64 is ResNet-50), out 256..2048.
    stages = tuple(StageLayout(256 * 2**i, spec.cardinality * spec.width * 2**i, b, 1 if i == 0 else 2)
                   for i, b in enumerate(blocks))
    return NetLayout("imagenet", 64, "bottleneck", stages)
