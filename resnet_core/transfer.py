"""Start a trial from another trial's weights (transfer.checkpoint) and keep some of them fixed (transfer.train).

Frozen parts neither learn nor drift: their parameters get no gradient and their BN layers stay in eval mode while
the rest trains, so their running statistics stay those of the checkpoint.
"""
from __future__ import annotations

import torch
from torch import nn

from resnet_core.checkpoint import load_checkpoint
from resnet_core.model import ResNet
from resnet_core.spec import TransferSpec
from resnet_core.specio import SpecError


def apply_transfer(model: ResNet, transfer: TransferSpec) -> list[nn.Module]:
    """Load transfer.checkpoint's weights into `model` and freeze what transfer.train keeps fixed.

    all: every layer learns. last_stage: the stem and all but the last stage are frozen. head: everything but
    a new classifier is frozen. The classifier is loaded only when its shape matches (same class count) and
    transfer.train is not `head`; otherwise it keeps its fresh initialisation. Returns the frozen modules.
    """
    if transfer.checkpoint is None:
        return []
    weights = load_checkpoint(transfer.checkpoint, key="transfer.checkpoint")["model"]
    own = model.state_dict()
    new_head = transfer.train == "head" or weights.get("fc.weight", torch.empty(0)).shape != own["fc.weight"].shape
    weights = {k: v for k, v in weights.items() if not (new_head and k.startswith("fc."))}
    wrong = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in weights and not k.startswith("fc.")]
    if wrong or missing:
        raise SpecError("transfer.checkpoint", transfer.checkpoint,
                        f"a checkpoint of the same architecture as model ({len(wrong)} tensors differ, e.g. "
                        f"{(wrong + missing)[0]})")
    model.load_state_dict(weights, strict=False)
    frozen: list[nn.Module] = {"all": [], "last_stage": [model.stem, *model.stages[:-1]],
                               "head": [model.stem, model.stages] + ([model.final_act] if model.final_act else [])
                               }[transfer.train]
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def set_train_mode(model: nn.Module, frozen: list[nn.Module]) -> None:
    """Train mode, except frozen parts stay in eval mode so their BN statistics do not drift either."""
    model.train()
    for module in frozen:
        module.eval()
