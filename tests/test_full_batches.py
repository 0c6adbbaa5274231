"""Every training iteration is a full batch (the paper's iterations of 128): a training set that batches do not
divide leaves a different tail out each epoch, epochs count full batches, and resuming mid-epoch is bit-exact."""
import torch

from resnet_core.checkpoint import load_checkpoint
from resnet_core.loading import load_trial_data
from resnet_core.spec import TrialSpec
from tests.conftest import trial_spec
from resnet_core.train import train

# 72 images at batch 16: 4 full batches an epoch, 8 images sit each epoch out.
SPEC = {"model.depth": 8, "data.dataset": "synthetic", "data.image_size": 8, "data.synthetic_train": 72,
        "data.synthetic_test": 16, "optim.batch_size": 16, "optim.iterations": 10, "runtime.device": "cpu"}


def spec(**changes) -> TrialSpec:
    return trial_spec(SPEC, **changes)


def test_epochs_are_full_batches_and_a_mid_epoch_resume_lands_on_the_same_weights(tmp_path):
    trial = spec()
    data = load_trial_data(trial.data, 8, 16, 16, trial.seed, torch.device("cpu"), torch.contiguous_format)
    batches = [data.train.gather(*b) for b in data.train.epoch(0)]
    assert data.train.steps == 4 and all(len(labels) == 16 for _, labels in batches)

    straight = list(train(trial, checkpoint_dir=tmp_path / "straight"))
    assert [m["iteration"] for m in straight] == [4, 8, 10] and straight[-1]["epochs"] == 3
    list(train(spec(optim__iterations=6), checkpoint_dir=tmp_path / "part"))  # stops 2 steps into epoch 2
    resumed = list(train(trial, checkpoint_dir=tmp_path / "part", resume_from=tmp_path / "part"))
    assert [m["epoch"] for m in resumed] == [2, 3]
    assert resumed[-1]["train_loss"] == straight[-1]["train_loss"]
    a, b = load_checkpoint(tmp_path / "straight")["model"], load_checkpoint(tmp_path / "part")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_whole_step_setting_trains_the_same_trial_on_the_cpu(tmp_path):
    """runtime.cuda_graph: step runs the captured function uncaptured on the CPU: the same trial, bit for bit."""
    default = list(train(spec(), checkpoint_dir=tmp_path / "default"))[-1]
    whole = list(train(spec(runtime__cuda_graph="step"), checkpoint_dir=tmp_path / "step"))[-1]
    assert whole["train_loss"] == default["train_loss"] and whole["test_error"] == default["test_error"]
    a, b = load_checkpoint(tmp_path / "default")["model"], load_checkpoint(tmp_path / "step")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert isinstance(load_checkpoint(tmp_path / "step")["optimizer"]["param_groups"][0]["lr"], float)
