"""Figure 6's training curve at a finer interval than an epoch, without host syncs inside the epoch.

The ResNet paper plots training error against iterations (Figure 6, dashed lines), which a once-per-epoch average
cannot draw: a short run has one or two epochs. Every few dozen iterations train() marks the running (loss x
images, wrong predictions) sums as they stand on the device (a copy of two scalars, no sync); at the epoch's end,
after the epoch's own sync, all marks are read at once and turned into one point per mark: the mean loss and error
over the iterations since the previous mark (or since the epoch began).
"""
from __future__ import annotations

import torch

from resnet_core.distributed import Shard


class CurveMarks:
    """Snapshots of one epoch's running sums; `points` turns them into (iteration, loss, error) windows."""

    def __init__(self, iteration: int, loss_sum: torch.Tensor, wrong_sum: torch.Tensor, seen: int):
        # Where the epoch starts (a resumed epoch starts from the checkpoint's sums): the first window's base.
        self._marks: list[tuple[int, torch.Tensor, int]] = []
        self.mark(iteration, loss_sum, wrong_sum, seen)

    def mark(self, iteration: int, loss_sum: torch.Tensor, wrong_sum: torch.Tensor, seen: int) -> None:
        """Remember the sums after `iteration` iterations (a device-side copy; the sums keep changing in place)."""
        self._marks.append((iteration, torch.stack((loss_sum, wrong_sum)), seen))

    def metrics(self, shard: Shard, device: torch.device) -> dict[str, list[list[float]]]:
        """The epoch's windows as two metrics of [iteration, value] points (the record and MLflow log each point at
        its own step): train_loss_curve and train_error_curve."""
        points = self.points(shard, device)
        return {"train_loss_curve": [[i, loss] for i, loss, _ in points],
                "train_error_curve": [[i, error] for i, _, error in points]}

    def points(self, shard: Shard, device: torch.device) -> list[list[float]]:
        """[[iteration, mean loss, error fraction], ...] of every window that ended this epoch; all ranks' images
        count (one collective). Empty when no mark fell inside the epoch."""
        if len(self._marks) < 2:
            return []
        sums = torch.stack([m[1] for m in self._marks])  # [marks, 2] on the device
        seen = torch.tensor([m[2] for m in self._marks], dtype=torch.float64, device=device)
        flat = shard.total([*sums.flatten(), *seen], device)  # one host read of everything
        count = len(self._marks)
        loss, wrong, images = flat[0:2 * count:2], flat[1:2 * count:2], flat[2 * count:]
        out = []
        for i in range(1, count):
            window = images[i] - images[i - 1]
            if window > 0:
                out.append([self._marks[i][0], (loss[i] - loss[i - 1]) / window, (wrong[i] - wrong[i - 1]) / window])
        return out
