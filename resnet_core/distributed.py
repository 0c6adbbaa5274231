"""Data parallelism for one trial: which part of every batch this process trains on, and the few sums it shares.

Whoever launches the processes (Ray Train's TorchTrainer, torchrun) sets up torch.distributed; train() only asks
`Shard.current()`. Every rank draws the same global batch (same seed, same order) and keeps its contiguous slice,
so a trial of N workers sees exactly the images, in the same batches, that one process would; DDP averages the
gradients. BatchNorm stays per worker, as in the paper's multi-GPU training (statistics of each GPU's slice).
Alone (no process group), every method is a no-op and the shard is the whole batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")  # a tensor, or a CropFlip of per-image draws
_NONE = torch.iinfo(torch.int64).max  # "no bad iteration" while taking the minimum over ranks


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> "Shard":
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def leader(self) -> bool:
        """Rank 0: the one that writes checkpoints and measures Figure 7's layer responses."""
        return self.rank == 0

    def part(self, batch: T) -> T:
        """This rank's contiguous slice of a global batch, or of anything sliced alike (sizes differ by <= 1)."""
        return batch if self.world == 1 else batch[slice(*self.bounds(len(batch)))]

    def bounds(self, count: int) -> tuple[int, int]:
        """[start, stop) of this rank's slice of `count` items (the test set's share to evaluate)."""
        return count * self.rank // self.world, count * (self.rank + 1) // self.world

    def own(self, values: list[float]) -> list[float]:
        """Running sums restored from a checkpoint are global: one rank carries them on, the others start at 0."""
        return list(values) if self.leader else [0.0] * len(values)

    def total(self, values: list[float | torch.Tensor], device: torch.device) -> list[float]:
        """Sums over ranks, read on the host (one collective; a host sync even alone, as callers expect)."""
        stacked = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
        if self.world > 1:
            dist.all_reduce(stacked)
        return stacked.tolist()

    def first_bad(self, first_bad: torch.Tensor) -> int:
        """The earliest iteration any rank saw a non-finite loss, or -1: every rank stops at the same check."""
        if self.world == 1:
            return int(first_bad.item())
        value = torch.where(first_bad >= 0, first_bad, torch.full_like(first_bad, _NONE))
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return -1 if int(value.item()) == _NONE else int(value.item())
