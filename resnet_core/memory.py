"""A trial's peak training memory, known before it starts: weights, gradients, SGD's momentum, the activations
autograd saves for backward at the trial's batch size and precision, and the data the trial keeps on its device.

The activations come from the model itself: one forward pass of the built network on PyTorch's meta device (shapes
only: no memory, no arithmetic, milliseconds even for ResNet-1202) under a dispatch mode that sees every operator
and applies what that operator's backward keeps (SAVED below: a convolution its input and weight, a BatchNorm its
input and per-channel statistics, a ReLU its output, ...). A tensor kept by two operators (a ReLU's output that the
next convolution takes) is counted once. Under bf16 or fp16 autocast activations take 2 bytes an element, and the
casted copies of the weights are saved beside them. The tests check this against the tensors autograd really saves
(saved-tensor hooks) on the CPU.

What is not counted: the CUDA context and cuDNN's workspaces (a few hundred MB, fixed), the compiled graphs'
and CUDA graphs' pools (the machine profile's measured peak says how much they add), allocator fragmentation.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from resnet_core.accounting import input_size
from resnet_core.layout import net_layout
from resnet_core.model import build_model
from resnet_core.spec import ModelSpec, TrialSpec

# operator -> (indices of its inputs, indices of its outputs) that its backward keeps (PyTorch's derivatives.yaml)
SAVED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "convolution": ((0, 1), ()),  # input, weight
    "native_batch_norm": ((0, 1), (1, 2)),  # input, weight; batch mean and inverse std
    "cudnn_batch_norm": ((0, 1), (1, 2, 3)),  # and cuDNN's reserve space
    "relu": ((), (0,)),
    "relu_": ((), (0,)),
    "max_pool2d_with_indices": ((0,), (1,)),  # input; argmax indices
    "addmm": ((1, 2), ()),  # input, weight (transposed view)
    "_log_softmax": ((), (0,)),
    "nll_loss_forward": ((0, 1), (1,)),  # log-probabilities, targets; total weight
}
FP32_OPS = ("_log_softmax", "nll_loss_forward", "native_batch_norm", "cudnn_batch_norm")  # outputs stay fp32 (the
# loss is computed on logits.float(); BatchNorm's statistics are fp32 whatever its input)
VIEWS = ("t", "view", "_unsafe_view", "expand", "permute", "transpose")


class _SavedForBackward(TorchDispatchMode):
    """Records the tensors each operator's backward keeps, by identity, and which are (views of) parameters."""

    def __init__(self, params: set[int], reduced: bool):
        super().__init__()
        self.params, self.reduced = params, reduced
        self.saved: dict[int, int] = {}  # id -> bytes
        self.keep: list[torch.Tensor] = []  # alive until the end, so no id is reused

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if name in VIEWS and id(args[0]) in self.params:
            self.params.add(id(outs[0]))
        ins, outputs = SAVED.get(name, ((), ()))
        for tensor, fp32 in [(args[i], False) for i in ins] + [(outs[i], name in FP32_OPS) for i in outputs]:
            if isinstance(tensor, torch.Tensor):
                self._note(tensor, fp32)
        self.keep += [t for t in (*args, *outs) if isinstance(t, torch.Tensor)]
        return out

    def _note(self, tensor: torch.Tensor, fp32: bool) -> None:
        if id(tensor) in self.saved:
            return
        is_param = id(tensor) in self.params
        if is_param and not self.reduced:
            return  # the parameter itself: counted with the weights
        reduced = self.reduced and tensor.is_floating_point() and not fp32
        self.saved[id(tensor)] = tensor.numel() * (2 if reduced else tensor.element_size())


@functools.lru_cache(maxsize=256)
def saved_activation_bytes(model: ModelSpec, classes: int, image_size: int, batch: int, reduced: bool) -> int:
    """Bytes autograd keeps for backward over one training step's forward pass of `batch` images (2-byte
    activations when `reduced`: bf16 or fp16 autocast)."""
    with torch.device("meta"):
        net = build_model(model, classes).train()
        images = torch.empty(batch, 3, image_size, image_size)
        labels = torch.zeros(batch, dtype=torch.long)
    mode = _SavedForBackward({id(p) for p in net.parameters()}, reduced)
    with mode:
        F.cross_entropy(net(images).float(), labels)
    return sum(mode.saved.values())


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one trial (one worker of a data-parallel one) holds at its peak, by what holds them."""

    weights: int
    gradients: int
    optimizer: int  # SGD's momentum buffers
    activations: int  # saved for backward, at the worker's batch size and the trial's precision
    data: int  # the training and test images held on the device (uint8), when they are

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.data


def estimate_memory(spec: TrialSpec, reduced: bool, workers: int = 1) -> MemoryEstimate:
    """The trial's peak training memory on one device; `reduced`: bf16 or fp16 autocast (what `precision: auto`
    gives on a GPU)."""
    from resnet_core.schedule import split_sizes

    size = input_size(spec.data.dataset, spec.data.image_size) or net_layout(spec.model).image_size
    params = sum(p.numel() for p in _meta_params(spec.model, spec.data.classes))
    activations = saved_activation_bytes(spec.model, spec.data.classes, size,
                                         max(1, spec.optim.batch_size // workers), reduced)
    data = 0
    if spec.data.dataset != "imagenet":  # CIFAR and synthetic sets sit on the device; ImageNet streams from disk
        train, test = split_sizes(spec.data)
        data = (train + test) * 3 * size * size // workers
    return MemoryEstimate(4 * params, 4 * params, 4 * params if spec.optim.momentum else 0, activations, data)


@functools.lru_cache(maxsize=256)
def _meta_params(model: ModelSpec, classes: int) -> tuple[torch.Tensor, ...]:
    with torch.device("meta"):
        return tuple(build_model(model, classes).parameters())
