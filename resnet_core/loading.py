"""A trial's data, whichever its data set: CIFAR and synthetic as tensors on the device (data.py), ImageNet
folders through a DataLoader (imagenet.py, which builds on data.py's batch types)."""
from __future__ import annotations

import torch

from resnet_core.data import TrialData, load_tensor_dataset, tensor_trial_data
from resnet_core.distributed import Shard
from resnet_core.spec import DataSpec


def load_trial_data(spec: DataSpec, image_size: int, batch_size: int, eval_batch_size: int, seed: int,
                    device: torch.device, memory_format: torch.memory_format, shard: Shard = Shard()) -> TrialData:
    """The trial's batches: ImageNet folders through a DataLoader, anything else as tensors on `device`.

    `image_size` is the model's input size (32 or 224); synthetic data takes it unless data.image_size is set.
    `batch_size` is the global batch; under data parallelism this rank gets its `shard` of each.
    """
    if spec.dataset == "imagenet":
        from resnet_core.imagenet import folder_trial_data  # torchvision's folders and transforms only here

        return folder_trial_data(spec, batch_size, eval_batch_size, seed, device, memory_format, shard)
    dataset = load_tensor_dataset(spec, image_size)
    return tensor_trial_data(dataset, spec, batch_size, eval_batch_size, seed, device, memory_format, shard)
