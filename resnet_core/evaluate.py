"""Top-1 and top-5 error of a model on a test or validation set, single-view or multi-crop.

train() evaluates after every epoch (the paper reports test error against iterations, Figure 6); the counts stay
on the device until one read at the end of the pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from resnet_core.data import EvalBatches
from resnet_core.distributed import Shard
from resnet_core.runtime import Runtime

CENTER_CROP = 4  # torchvision's TenCrop order: four corners, the center, then the same five flipped


@dataclass(frozen=True)
class Evaluation:
    """Errors (fractions) of one evaluation pass. With multi-crop batches ([B, crops, ...], the paper's 10-crop
    test, Sec. 3.4) top1/top5 average the softmax over the crops and the center_ pair is the single center crop
    (the 1-crop figure ResNeXt's tables give); with single-view batches the center_ pair is None. top5 is None
    when the classifier has 5 classes or fewer."""

    top1: float
    top5: float | None = None
    center_top1: float | None = None
    center_top5: float | None = None

    def metrics(self, split: str) -> dict[str, float]:
        """{'test_error': ..., 'test_top5_error': ..., 'test_error_1crop': ..., 'test_top5_error_1crop': ...}"""
        named = {f"{split}_error": self.top1, f"{split}_top5_error": self.top5,
                 f"{split}_error_1crop": self.center_top1, f"{split}_top5_error_1crop": self.center_top5}
        return {k: v for k, v in named.items() if v is not None}


@torch.no_grad()
def evaluate(model: nn.Module, batches: EvalBatches, runtime: Runtime, shard: Shard = Shard()) -> Evaluation:
    """Top-1 and top-5 error in eval mode; [B, crops, ...] batches average the softmax over crops (10-crop) and
    also score the center crop alone. Under data parallelism `batches` is this rank's share and the errors are over
    all ranks' shares. Counts stay on the device until one read at the end."""
    was_training = model.training
    model.eval()
    wrong = torch.zeros(4, dtype=torch.int64, device=runtime.device)  # top1, top5, center top1, center top5
    count, multi_crop, classes = 0, False, 0
    for images, labels in batches:
        with runtime.autocast():
            if images.dim() == 5:
                multi_crop = True
                b, crops = images.shape[:2]
                probs = model(images.flatten(0, 1)).float().softmax(-1).view(b, crops, -1)
                scored = ((probs.mean(1), 0), (probs[:, min(CENTER_CROP, crops - 1)], 2))
            else:
                scored = ((model(images).float(), 0),)
        for scores, slot in scored:
            classes = scores.shape[1]
            top = scores.topk(min(5, classes), dim=1).indices  # [B, k], best first
            hits = top == labels[:, None]
            wrong[slot] += (~hits[:, 0]).sum()
            wrong[slot + 1] += (~hits.any(1)).sum()
        count += len(labels)
    model.train(was_training)
    *totals, count_total = shard.total([*wrong, count], runtime.device)
    errors = [t / max(count_total, 1) for t in totals]
    top5 = classes > 5
    return Evaluation(errors[0], errors[1] if top5 else None, errors[2] if multi_crop else None,
                      errors[3] if multi_crop and top5 else None)
