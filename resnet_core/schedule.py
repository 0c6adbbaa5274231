"""The learning rate as a pure function of the iteration and the warm-up state (Sec. 4.2 of the ResNet paper).

Step schedule in iterations, as the paper gives it: the base lr (0.1 per batch of 128), divided by 10 at 32k and
48k iterations. ResNet-110's warm-up runs at 0.01 "until the training error is below 80% (about 400 iterations)":
whether warm-up is still on is state measured during training (`WarmupState`), so it is an argument here and the
function stays pure; a checkpoint keeps that state with the model (resume.py). Epochs are counted in full batches
of the training images a data spec leaves after its hold-out (split_sizes, steps_per_epoch).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from resnet_core.spec import DataSpec, OptimSpec
from resnet_core.specio import SpecError

# Iterations between host syncs that read the running training error while warming up: each check costs one
# pipeline drain on a GPU, so 20 of them over the paper's ~400 warm-up iterations cost nothing measurable.
WARMUP_CHECK_EVERY = 20


@dataclass(frozen=True)
class WarmupState:
    """Whether the warm-up lr is still in force, and the iteration at which it ended (None while it has not)."""

    active: bool
    ended_at: int | None = None

    @classmethod
    def start(cls, optim: OptimSpec) -> "WarmupState":
        return cls(active=optim.warmup is not None)

    def after_check(self, optim: OptimSpec, iteration: int, train_error: float) -> "WarmupState":
        """The state for iteration `iteration` given the training error (fraction) measured just before it."""
        warmup = optim.warmup
        if not self.active or warmup is None:
            return self
        capped = warmup.max_iterations is not None and iteration >= warmup.max_iterations
        if train_error < warmup.until_train_error or capped:
            return WarmupState(active=False, ended_at=iteration)
        return self

    def to_dict(self) -> dict[str, object]:
        return {"active": self.active, "ended_at": self.ended_at}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "WarmupState":
        ended = data.get("ended_at")
        return cls(active=bool(data["active"]), ended_at=None if ended is None else int(ended))


def learning_rate(optim: OptimSpec, iteration: int, warming_up: bool = False) -> float:
    """lr for 0-based `iteration`: the warm-up lr while warming up, else base lr x decay^(milestones passed)."""
    if warming_up and optim.warmup is not None:
        return optim.warmup.lr
    passed = bisect.bisect_right(optim.milestones, iteration)  # a milestone at 32000 applies from iteration 32000
    return optim.lr * optim.lr_decay ** passed


# Images per split of the real datasets (train, test); synthetic sets say their own sizes.
DATASET_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "imagenet": (1_281_167, 50_000)}


def split_sizes(data: DataSpec) -> tuple[int, int]:
    """(training images after the validation hold-out, test images) the trial will see."""
    if data.dataset == "synthetic":
        train, test = data.synthetic_train, data.synthetic_test
    else:
        train, test = DATASET_SIZES[data.dataset]
    if data.train_limit:
        train = min(train, data.train_limit)
    if data.test_limit:
        test = min(test, data.test_limit)
    return max(train - data.val_split, 1), test


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """floor(N / B): every iteration is a full batch of B images, as the paper counts iterations of 128. Each
    epoch draws a new order and leaves out its last N mod B images (80 of CIFAR-10's 50k at 128: a different 80
    every epoch). A fixed batch shape also keeps compiled graphs and CUDA graphs to one per trial."""
    if train_size < batch_size:
        raise SpecError("optim.batch_size", batch_size,
                        f"at most the {train_size} training images: every iteration is a full batch")
    return train_size // batch_size


def epochs_for(iterations: int, train_size: int, batch_size: int) -> int:
    """Epochs derived from the iteration budget; the last one is partial when the budget ends mid-epoch."""
    return -(-iterations // steps_per_epoch(train_size, batch_size))
