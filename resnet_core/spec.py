"""The one frozen, typed description of a trial: model, data, optimisation, runtime.

Every field defaults to the paper's choice (He et al. 2015, Sec. 4.2 for CIFAR, Sec. 3.4 for ImageNet), so a
spec built from `{}` is the paper's ResNet-20 on CIFAR-10. Fields that default to None are resolved in
`__post_init__` to the paper's per-family value, so a built spec (and its MLflow params) always says what ran.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from resnet_core.specio import SpecError, from_dict, to_dict

# Bounds far beyond any paper net that keep `plan` (which builds every model to count it) from running for
# hours or overflowing on a typo: the deepest net in the papers is ResNet-1202 (He et al. 2015, Sec. 4.2).
MAX_DEPTH = 2000  # layers
MAX_GROUPED_WIDTH = 4096  # cardinality x width, channels (the papers' widest is ResNeXt-29 16x64d: 1024)
MAX_IMAGE_SIZE = 4096  # pixels per side of synthetic images (ImageNet-shaped ones are 224)
MAX_NUM_CLASSES = 25_000  # synthetic classes (the full ImageNet has 21,841)
# The largest published ImageNet batches are 32k-80k images (Goyal et al. 2017: 8k; You et al. 2018: 32k); a
# batch of 2^20 CIFAR images is already 3 GiB of pixels. Beyond it a number is a typo (1e20 would overflow the
# epoch arithmetic and ask the loader for an impossible tensor), so it is refused with its key path.
MAX_BATCH_SIZE = 2**20  # images per batch (optim.batch_size and runtime.eval_batch_size)
MAX_SYNTHETIC_IMAGES = 2_000_000  # per synthetic split, held in memory as uint8 (ImageNet's train set: 1.28M)
MAX_ITERATIONS = 10**8  # SGD steps; the papers' longest schedule is 600k (ImageNet, He et al. 2015, Sec. 3.4)

Family = Literal["cifar", "imagenet", "resnext"]
Shortcut = Literal["A", "B", "C"]


def _set(spec: Any, name: str, value: Any) -> None:
    object.__setattr__(spec, name, value)  # resolving defaults of a frozen dataclass, once, in __post_init__


def _positive(key: str, value: float | int | None, what: str = "a positive number") -> None:
    if value is not None and value <= 0:
        raise SpecError(key, value, what)


def _at_most(key: str, value: int | None, cap: int, unit: str) -> None:
    if value is not None and value > cap:
        raise SpecError(key, value, f"at most {cap:,} {unit}")


@dataclass(frozen=True)
class ModelSpec:
    """One ResNet family member. Depth and stage layout are checked by `resnet_core.layout`."""

    family: Family = "cifar"
    depth: int | None = None  # None: 6n+2 from `n` on CIFAR, else 20 / 50 / 29 by family
    n: int | None = None  # CIFAR: blocks per stage (depth = 6n+2; ResNeXt-29 on CIFAR: depth = 9n+2)
    shortcut: Shortcut | None = None  # None: A on CIFAR (Sec. 4.2), B on ImageNet (Sec. 3.3, Table 3)
    residual: bool = True  # false: the paper's plain net, same layers without shortcuts
    preact: bool = False  # pre-activation blocks (He et al. 2016, "Identity Mappings"); the 2015 paper is post-act
    cardinality: int | None = None  # ResNeXt C; None: 1 for ResNets, 8 for ResNeXt-29, 32 for ResNeXt-50/101
    width: int | None = None  # bottleneck width per group d; None: 64 for ResNets and ResNeXt-29, 4 for 50/101
    stride_on: Literal["1x1", "3x3"] = "1x1"  # downsampling bottleneck's stride: paper's 1x1, torchvision's 3x3
    zero_init_last_bn: bool = False  # the paper initialises every BN to identity (Goyal et al. zero the last)

    def __post_init__(self) -> None:
        from resnet_core.layout import net_layout, resolve_depth  # layout imports this module's types

        _positive("cardinality", self.cardinality, "a whole number >= 1")
        _positive("width", self.width, "a whole number >= 1")
        depth, n = resolve_depth(self.family, self.depth, self.n)
        if depth > MAX_DEPTH:
            given = ("depth", self.depth) if self.depth is not None else ("n", self.n)
            raise SpecError(*given, f"a net of at most {MAX_DEPTH} layers (this one has {depth})")
        _set(self, "depth", depth)
        _set(self, "n", n)
        if self.shortcut is None:
            _set(self, "shortcut", "A" if self.family == "cifar" else "B")
        is_cifar_resnext = self.family == "resnext" and n is not None
        if self.cardinality is None:
            _set(self, "cardinality", {"cifar": 1, "imagenet": 1}.get(self.family, 8 if is_cifar_resnext else 32))
        if self.width is None:
            _set(self, "width", 4 if self.family == "resnext" and not is_cifar_resnext else 64)
        if self.family == "cifar" and self.cardinality != 1:
            raise SpecError("cardinality", self.cardinality,
                            "1 (grouped convolutions need bottleneck blocks: use family resnext)")
        if self.family == "cifar" and self.width != 64:
            raise SpecError("width", self.width, "64 on CIFAR ResNets (bottleneck width: use family resnext)")
        if self.cardinality * self.width > MAX_GROUPED_WIDTH:
            key = "cardinality" if self.cardinality > 1 else "width"
            raise SpecError(key, getattr(self, key),
                            f"cardinality x width at most {MAX_GROUPED_WIDTH} channels (got {self.cardinality}x"
                            f"{self.width}d)")
        net_layout(self)  # raises SpecError for shapes that cannot be built

    @property
    def name(self) -> str:
        """Readable architecture name, as the papers write it: resnet110, plain20, resnext29_8x64d."""
        if self.family == "resnext":
            return f"resnext{self.depth}_{self.cardinality}x{self.width}d"
        kind = "resnet" if self.residual else "plain"
        return f"{kind}{self.depth}" + ("-preact" if self.preact else "")


DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}  # synthetic: data.num_classes


@dataclass(frozen=True)
class DataSpec:
    dataset: Literal["cifar10", "cifar100", "imagenet", "synthetic"] = "cifar10"
    root: str = "~/.cache/cifar10"  # cifar-10-batches-py / cifar-100-python inside it, or train/ val/ for ImageNet
    download: bool = False  # let torchvision fetch CIFAR when the machine is online
    train_limit: int | None = None  # first N training images, for quick runs
    test_limit: int | None = None
    val_split: int = 0  # hold out the last N training images (the paper chose 64k iterations on 45k/5k)
    augment: bool = True  # pad 4, random 32x32 crop, horizontal flip (Sec. 4.2)
    # AlexNet's PCA lighting, std of its alpha ~ N(0, std): None is the paper's choice, 0.1 on ImageNet ("the
    # standard color augmentation", Sec. 3.4) and 0 on CIFAR (Sec. 4.2 uses none); ImageNet folders only.
    lighting: float | None = None
    normalize: Literal["pixel_mean", "channel"] = "pixel_mean"  # Sec. 4.2 subtracts the per-pixel mean
    # synthetic: None is 32 (224 for ImageNet-shaped nets); ImageNet folders: the crop, None is the paper's 224
    # (Sec. 3.4), and a smaller one scales the [256, 480] resize range and the 256 test resize alike
    image_size: int | None = None
    num_classes: int | None = None  # synthetic only; None: 10
    synthetic_train: int = 1024  # images in the synthetic training set
    synthetic_test: int = 256
    workers: int = 8  # DataLoader workers for ImageNet folders

    def __post_init__(self) -> None:
        for key in ("train_limit", "test_limit", "image_size", "num_classes", "synthetic_train",
                    "synthetic_test"):
            _positive(key, getattr(self, key), "a whole number >= 1")
        _at_most("synthetic_train", self.synthetic_train, MAX_SYNTHETIC_IMAGES, "images")
        _at_most("synthetic_test", self.synthetic_test, MAX_SYNTHETIC_IMAGES, "images")
        if self.image_size is not None and self.image_size > MAX_IMAGE_SIZE:
            raise SpecError("image_size", self.image_size, f"at most {MAX_IMAGE_SIZE} pixels per side")
        if self.num_classes is not None and self.num_classes > MAX_NUM_CLASSES:
            raise SpecError("num_classes", self.num_classes, f"at most {MAX_NUM_CLASSES:,} classes")
        if self.val_split < 0:
            raise SpecError("val_split", self.val_split, "0 or more images")
        if self.workers < 0:
            raise SpecError("workers", self.workers, "0 or more")
        if self.lighting is None:
            _set(self, "lighting", 0.1 if self.dataset == "imagenet" else 0.0)
        if self.lighting < 0:
            raise SpecError("lighting", self.lighting, "a standard deviation >= 0 (0: no PCA lighting)")
        if self.lighting > 0 and self.dataset != "imagenet":
            raise SpecError("lighting", self.lighting, "0 on this dataset (PCA lighting is the paper's ImageNet "
                                                       "augmentation, implemented for ImageNet folders only)")

    @property
    def classes(self) -> int:
        """Classes the classifier head predicts: the dataset's, or data.num_classes (default 10) for synthetic."""
        return (self.num_classes or 10) if self.dataset == "synthetic" else DATASET_CLASSES[self.dataset]


@dataclass(frozen=True)
class WarmupSpec:
    """Sec. 4.2, ResNet-110: lr 0.01 until training error < 80% (about 400 iterations), then the base lr."""

    lr: float = 0.01
    until_train_error: float = 0.80  # fraction, measured on the running training batches
    max_iterations: int | None = None  # cap on warm-up length; None: until the error threshold alone

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        if not 0 < self.until_train_error <= 1:
            raise SpecError("until_train_error", self.until_train_error, "a fraction in (0, 1]")
        _positive("max_iterations", self.max_iterations, "a whole number >= 1")


@dataclass(frozen=True)
class OptimSpec:
    """SGD as Sec. 4.2. The schedule is in iterations, as the paper gives it; epochs are derived."""

    lr: float = 0.1  # per batch of 128
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    batch_size: int = 128
    milestones: tuple[int, ...] = (32000, 48000)  # iterations at which lr is divided by 10
    lr_decay: float = 0.1
    iterations: int = 64000  # about 164 epochs of 50k images
    warmup: WarmupSpec | None = None

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        _positive("batch_size", self.batch_size, "a whole number >= 1")
        _positive("iterations", self.iterations, "a whole number >= 1")
        _at_most("batch_size", self.batch_size, MAX_BATCH_SIZE, "images")
        _at_most("iterations", self.iterations, MAX_ITERATIONS, "iterations")
        _positive("lr_decay", self.lr_decay)
        if not 0 <= self.momentum < 1:
            raise SpecError("momentum", self.momentum, "a number in [0, 1)")
        if self.weight_decay < 0:
            raise SpecError("weight_decay", self.weight_decay, "a number >= 0")
        if list(self.milestones) != sorted(self.milestones) or any(m <= 0 for m in self.milestones):
            raise SpecError("milestones", list(self.milestones), "increasing positive iteration numbers")


@dataclass(frozen=True)
class RuntimeSpec:
    """How a trial runs, not what it computes (beyond numerical noise)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when present
    # auto: bf16 autocast on a GPU with native bf16, fp16 autocast with a gradient scaler on an older GPU, fp32 on
    # the CPU (runtime.py); the run's `resnet_sweeps.rung` tag says which one trained
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: Literal["auto", "off", "on"] = "auto"  # auto: torch.compile on CUDA, eager on CPU
    compile_backend: Literal["inductor", "aot_eager"] = "inductor"  # aot_eager: same tracing, no codegen (checks)
    # CUDA graphs, on CUDA without data parallelism: `compiled` lets torch.compile's reduce-overhead mode graph the
    # compiled forward and backward (when compiling); `step` captures the whole step (batch gather, augmentation,
    # forward, backward, SGD, metric sums) as one graph replayed every iteration; `off` launches every kernel;
    # `auto` takes the fastest mode that passed `resnet-sweep doctor --gpu`'s parity check on this GPU model, and
    # `compiled` where no profile says.
    cuda_graph: Literal["auto", "compiled", "step", "off"] = "auto"
    channels_last: bool = True  # on CUDA only; NCHW on CPU
    checkpoint_every: int = 0  # iterations between checkpoints; 0: every epoch
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.checkpoint_every < 0:
            raise SpecError("checkpoint_every", self.checkpoint_every, "0 (every epoch) or more iterations")
        _positive("eval_batch_size", self.eval_batch_size, "a whole number >= 1")
        _at_most("eval_batch_size", self.eval_batch_size, MAX_BATCH_SIZE, "images")


@dataclass(frozen=True)
class TransferSpec:
    """Start from a trained checkpoint; `train` says which layers learn."""

    checkpoint: str | None = None
    train: Literal["all", "last_stage", "head"] = "all"  # head: a new classifier only


@dataclass(frozen=True)
class TrialSpec:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    runtime: RuntimeSpec = field(default_factory=RuntimeSpec)
    transfer: TransferSpec = field(default_factory=TransferSpec)
    seed: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> "TrialSpec":
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def replace(self, **changes: Any) -> "TrialSpec":
        return dataclasses.replace(self, **changes)
