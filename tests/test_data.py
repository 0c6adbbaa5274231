"""CIFAR pickles read straight into tensors, clear errors for missing data, limits, splits, synthetic data."""
import pickle

import numpy as np
import pytest
import torch

from resnet_core.data import (DatasetError, TensorSplit, TensorTrainBatches, load_tensor_dataset, synthetic)
from resnet_core.augment import fit_normalizer
from resnet_core.spec import DataSpec
from resnet_core.specio import SpecError


def write_cifar10(root, per_batch=4):
    """A tiny cifar-10-batches-py: 5 training batches and a test batch of `per_batch` images each."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        batches[name] = (data, labels)
    return batches


def test_cifar10_pickles_load_into_one_uint8_tensor(tmp_path):
    batches = write_cifar10(tmp_path)
    data = load_tensor_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)), 32)
    assert data.train.images.shape == (20, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.test.images.shape == (4, 3, 32, 32) and data.num_classes == 10
    raw, labels = batches["data_batch_2"]
    # image 5 is batch 2's first; its first 1024 bytes are the red plane, row-major
    assert torch.equal(data.train.images[4, 0].flatten(), torch.from_numpy(raw[0, :1024]))
    assert torch.equal(data.train.images[4, 2].flatten(), torch.from_numpy(raw[0, 2048:]))
    assert data.train.labels[4:8].tolist() == labels
    assert data.test.labels.tolist() == batches["test_batch"][1]


def test_cifar100_layout(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 6), ("test", 3)):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": np.zeros((n, 3072), np.uint8), "fine_labels": list(range(n)),
                         "coarse_labels": [0] * n}, f)
    data = load_tensor_dataset(DataSpec(dataset="cifar100", root=str(tmp_path)), 32)
    assert len(data.train) == 6 and len(data.test) == 3 and data.num_classes == 100
    assert data.train.labels.tolist() == list(range(6))


def test_limits_and_validation_split(tmp_path):
    write_cifar10(tmp_path)
    full = load_tensor_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)), 32)
    data = load_tensor_dataset(DataSpec(dataset="cifar10", root=str(tmp_path), train_limit=15, test_limit=2,
                                        val_split=5), 32)
    assert len(data.train) == 10 and len(data.val) == 5 and len(data.test) == 2
    assert torch.equal(data.val.images, full.train.images[10:15])  # the last N of the (limited) training set
    with pytest.raises(SpecError, match="val_split"):
        load_tensor_dataset(DataSpec(dataset="cifar10", root=str(tmp_path), val_split=20), 32)


def test_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_tensor_dataset(DataSpec(dataset="cifar10", root=str(tmp_path / "nowhere")), 32)
    message = str(err.value)
    assert err.value.key_path == "data.root"
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "data.download: true" in message and "synthetic" in message


def test_broken_batch_is_a_dataset_error_not_a_traceback(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3 is not a readable CIFAR batch"):
        load_tensor_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)), 32)


def test_pickles_that_would_run_code_are_refused(tmp_path):
    write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f)
    with pytest.raises(DatasetError, match="unexpected object builtins.print"):
        load_tensor_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)), 32)


def test_synthetic_is_deterministic_and_shaped_by_spec():
    spec = DataSpec(dataset="synthetic", image_size=8, num_classes=3, synthetic_train=20, synthetic_test=6)
    train, test, classes = synthetic(spec, 32)
    again, _, _ = synthetic(spec, 32)
    assert train.images.shape == (20, 3, 8, 8) and test.images.shape == (6, 3, 8, 8) and classes == 3
    assert torch.equal(train.images, again.images) and torch.equal(train.labels, again.labels)
    assert int(train.labels.max()) < 3


def test_epoch_batches_are_full_depend_on_seed_and_epoch_only_and_resume_mid_epoch():
    split = TensorSplit(torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8), torch.arange(10))
    batches = TensorTrainBatches(split, fit_normalizer(split.images, "pixel_mean"), 4, seed=3, augment=True)

    def epoch(number: int, start: int = 0) -> list:
        return [batches.gather(*batch) for batch in batches.epoch(number, start)]

    first = epoch(0)
    assert batches.steps == 2 and [len(y) for _, y in first] == [4, 4]  # floor(10 / 4): full batches only
    used = [torch.cat([y for _, y in epoch(e)]).tolist() for e in range(6)]
    assert all(len(set(u)) == 8 for u in used)  # no image twice in an epoch; 2 sit out, different ones
    assert set().union(*map(set, used)) == set(range(10)) and len({tuple(sorted(u)) for u in used}) > 1
    resumed = epoch(0, start=1)
    assert torch.equal(resumed[0][0], first[1][0]) and torch.equal(resumed[0][1], first[1][1])
    assert torch.equal(epoch(0)[0][0], first[0][0])  # a function of (seed, epoch) alone
    assert not torch.equal(torch.cat([y for _, y in epoch(1)]), torch.cat([y for _, y in first]))


def write_image_folders(root, classes=("cat", "dog"), train_per_class=4, val_per_class=1):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (30 + 5 * i, 40, 3), dtype=np.uint8)  # varied sizes and aspect
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")


def test_image_folders_train_with_scale_augmentation_and_ten_crop_test(tmp_path):
    from resnet_core.imagenet import folder_trial_data
    from resnet_core.train import train
    from resnet_core.spec import TrialSpec

    write_image_folders(tmp_path)
    data = folder_trial_data(DataSpec(dataset="imagenet", root=str(tmp_path), workers=0, val_split=2), 3, 20, 0,
                             torch.device("cpu"), torch.contiguous_format)
    images, labels = data.train.gather(*next(iter(data.train.epoch(0))))
    assert images.shape == (3, 3, 224, 224) and data.num_classes == 2 and data.train.size == 6
    assert data.train.steps == 2 and len(list(data.train.epoch(0, start=1))) == 1
    crops, _ = next(iter(data.evals["test"]))
    assert crops.shape == (2, 10, 3, 224, 224) and data.evals["val"].size == 2
    assert not torch.equal(crops[0, 0], crops[0, 4])  # corner and centre crops differ
    # data.image_size shrinks the whole recipe (crop 32 of a shorter side in [37, 69], tested at 37): cheap to train
    small = folder_trial_data(DataSpec(dataset="imagenet", root=str(tmp_path), workers=0, image_size=32), 3, 20, 0,
                              torch.device("cpu"), torch.contiguous_format)
    assert next(iter(small.evals["test"]))[0].shape == (2, 10, 3, 32, 32)
    spec = TrialSpec.from_dict({"model": {"depth": 8}, "runtime": {"device": "cpu", "eval_batch_size": 20},
                                "data": {"dataset": "imagenet", "root": str(tmp_path), "workers": 0, "image_size": 32},
                                "optim": {"batch_size": 4, "iterations": 2}})
    final = list(train(spec))[-1]
    assert final["done"] and 0 <= final["test_error"] <= 1 and len(final["layer_response_std"]) == 7
    assert 0 <= final["test_error_1crop"] <= 1 and "test_top5_error" not in final  # 2 classes: no top-5


def test_missing_image_folders_are_a_dataset_error(tmp_path):
    from resnet_core.imagenet import folder_trial_data

    with pytest.raises(DatasetError, match="train/ and val/"):
        folder_trial_data(DataSpec(dataset="imagenet", root=str(tmp_path)), 4, 20, 0, torch.device("cpu"),
                          torch.contiguous_format)
