"""The papers' recipe details on CPU: Figure 6's finer training curve, top-5 and 1-crop/10-crop evaluation, AlexNet's
PCA lighting as ImageNet's default, and the curve's way into MLflow (a real SQLite store)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_core.augment import IMAGENET_EIGVAL, IMAGENET_EIGVEC, lighting_shift, pca_lighting
from resnet_core.evaluate import evaluate
from resnet_core.runtime import resolve_runtime
from resnet_core.spec import DataSpec, RuntimeSpec
from resnet_core.specio import SpecError
from resnet_core.train import TRAIN_CURVE_EVERY, train
from tests.test_train import tiny

# ---- Figure 6's curve ------------------------------------------------------------------------------------------


def test_train_curve_every_k_iterations_and_at_epoch_ends_partitions_the_epoch():
    assert TRAIN_CURVE_EVERY == 20
    # 16 iterations per epoch (256 images, batch 16): marks at multiples of 20 and at every epoch's end
    history = list(train(tiny(optim__iterations=24, data__synthetic_train=256)))
    assert [[p[0] for p in m["train_error_curve"]] for m in history] == [[16], [20, 24]]
    for m, start in zip(history, (0, 16)):
        # the windows cover the epoch exactly: their image-weighted mean is the epoch's mean
        previous, weighted_loss, weighted_error = start, 0.0, 0.0
        points = [(i, loss, error) for (i, loss), (_, error) in zip(m["train_loss_curve"], m["train_error_curve"])]
        for iteration, loss, error in points:
            assert 0 <= error <= 1 and loss > 0
            weighted_loss += loss * (iteration - previous) / (m["iteration"] - start)
            weighted_error += error * (iteration - previous) / (m["iteration"] - start)
            previous = iteration
        assert weighted_loss == pytest.approx(m["train_loss"]) and weighted_error == pytest.approx(m["train_error"])


# ---- evaluation: top-1 / top-5, 10-crop and its center crop ----------------------------------------------------


class Logits(nn.Module):
    """Returns its input [N, 1, 1, classes] as the logits: the test sets every score by hand."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)


def scores(*ranked: list[int], classes: int = 8) -> torch.Tensor:
    """One image's logits per crop: each crop's classes in the given order get falling scores."""
    out = torch.full((len(ranked), classes), -10.0)
    for crop, order in enumerate(ranked):
        for rank, label in enumerate(order):
            out[crop, label] = 10.0 - rank
    return out


def test_single_view_top1_and_top5():
    runtime = resolve_runtime(RuntimeSpec(device="cpu"))
    logits = torch.stack([scores([3, 1]), scores([1, 2, 4, 3]), scores([0, 1, 2, 4, 5, 3])])  # [3, 1, 8]
    labels = torch.tensor([3, 3, 3])  # top-1 right; 4th, in the top 5; 6th, not in the top 5
    result = evaluate(Logits(), [(logits.view(3, 1, 1, 8), labels)], runtime)
    assert (result.top1, result.top5) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert result.center_top1 is None and result.metrics("test") == {"test_error": pytest.approx(2 / 3),
                                                                       "test_top5_error": pytest.approx(1 / 3)}


def test_ten_crops_average_the_softmax_and_score_the_center_crop_alone():
    runtime = resolve_runtime(RuntimeSpec(device="cpu"))
    # torchvision's TenCrop order puts the center crop 5th (index 4). Image 0: the center says 2, the other nine
    # crops say 5 -> 10-crop right (label 5), center wrong. Image 1: the reverse, label 2.
    crops = [[5, 0, 1, 3, 4, 6]] * 4 + [[2, 7, 6, 4, 3, 1]] + [[5, 0, 1, 3, 4, 6]] * 5
    first = scores(*crops)
    second = scores(*([[1, 0, 3, 4, 6, 7]] * 4 + [[2, 0, 1, 3, 4, 5]] + [[1, 0, 3, 4, 6, 7]] * 5))
    images = torch.stack([first, second]).view(2, 10, 1, 1, 8)
    result = evaluate(Logits(), [(images, torch.tensor([5, 2]))], runtime)
    assert result.top1 == pytest.approx(0.5) and result.center_top1 == pytest.approx(0.5)
    assert result.top5 == 0.0  # image 1: the center crop's vote lifts 2 to 4th of the crop average
    assert result.center_top5 == pytest.approx(0.5)  # image 0's center crop does not rank 5 at all
    assert set(result.metrics("val")) == {"val_error", "val_top5_error", "val_error_1crop", "val_top5_error_1crop"}


def test_no_top5_with_five_classes_or_fewer():
    runtime = resolve_runtime(RuntimeSpec(device="cpu"))
    result = evaluate(Logits(), [(scores([0, 1], classes=5).view(1, 1, 1, 5), torch.tensor([1]))], runtime)
    assert result.top1 == 1.0 and result.top5 is None and result.metrics("test") == {"test_error": 1.0}


# ---- PCA lighting --------------------------------------------------------------------------------------------


def test_pca_lighting_shifts_every_pixel_along_the_principal_components():
    image = torch.rand(2, 3, 4, 4)
    assert torch.equal(pca_lighting(image, torch.zeros(2, 3)), image)
    alpha = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    shifted = pca_lighting(image, alpha)
    first = torch.tensor([row[0] for row in IMAGENET_EIGVEC]) * IMAGENET_EIGVAL[0]  # eigval_1 * eigvec_1
    third = torch.tensor([row[2] for row in IMAGENET_EIGVEC]) * IMAGENET_EIGVAL[2] * 2
    assert torch.allclose(shifted[0] - image[0], first[:, None, None].expand(3, 4, 4))
    assert torch.allclose(shifted[1] - image[1], third[:, None, None].expand(3, 4, 4))
    assert torch.allclose(lighting_shift(alpha)[0], first)
    single = pca_lighting(image[0], alpha[0])  # one [3, H, W] image, as the DataLoader transform sees it
    assert torch.allclose(single, shifted[0])


def test_lighting_is_the_imagenet_default_and_refused_elsewhere():
    assert DataSpec(dataset="imagenet").lighting == 0.1  # alpha ~ N(0, 0.1), Sec. 3.4 / AlexNet
    assert DataSpec().lighting == 0.0 and DataSpec(dataset="imagenet", lighting=0).lighting == 0
    with pytest.raises(SpecError, match="lighting"):
        DataSpec(dataset="cifar10", lighting=0.1)
    with pytest.raises(SpecError, match="lighting"):
        DataSpec(dataset="imagenet", lighting=-1)


# ---- the curve in MLflow -------------------------------------------------------------------------------------


def test_curve_points_reach_mlflow_at_their_own_steps_past_the_batch_limit(tmp_path):
    from pathlib import Path

    from mlflow import MlflowClient

    from orchestrator.records import trial_record
    from orchestrator.report.rows import CURVE_METRIC
    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import load_sweep
    from orchestrator.tracking.writer import Tracker

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    sweep = load_sweep(Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml")
    tracker = Tracker(uri)
    parent = tracker.start_sweep("curve", "curve", sweep.to_dict(), 1, tags={})
    trial = expand(sweep)[0].to_dict()
    points = range(1, 701)  # 1400 curve metrics in one epoch record: more than one log_batch may carry
    epoch = {"event": "epoch", "iteration": 14000, "time_ms": 1, "train_error": 0.5,
             "train_error_curve": [[20 * i, 0.9 - i / 1000] for i in points],
             "train_loss_curve": [[20 * i, 2.0 - i / 1000] for i in points]}
    trial_record.append(trial_record.record_path(tmp_path, trial), [epoch])
    run = tracker.sync_trial(parent, tmp_path, trial)
    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(run.run_id, CURVE_METRIC)
    assert sorted(m.step for m in history) == [20 * i for i in points]
    assert {m.step: m.value for m in history}[20] == pytest.approx(0.899)
    assert len(client.get_metric_history(run.run_id, "train_loss_curve")) == 700
    assert [m.step for m in client.get_metric_history(run.run_id, "train_error")] == [14000]  # the epoch mean
    assert client.get_run(run.run_id).data.tags["resnet_sweeps.last_step"] == "14000"


# ---- the ready sweeps of this recipe ---------------------------------------------------------------------------


def test_resnext_table7_sweep_covers_both_cifar_columns_and_laptop_sweep_the_findings():
    from pathlib import Path

    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import load_sweep

    sweeps = Path(__file__).resolve().parents[1] / "sweeps"
    t7 = {(t.spec.data.dataset, t.spec.model.cardinality): t.spec for t in expand(load_sweep(sweeps /
                                                                                              "resnext_table7.yaml"))}
    assert sorted(t7) == [("cifar10", 8), ("cifar10", 16), ("cifar100", 8), ("cifar100", 16)]
    assert t7[("cifar100", 8)].data.root == "~/.cache/cifar100" and t7[("cifar10", 8)].data.root == "~/.cache/cifar10"
    assert all(s.model.name.startswith("resnext29_") and s.model.width == 64 and s.optim.weight_decay == 5e-4
               for s in t7.values())
    laptop = {(t.spec.model.name, t.spec.seed) for t in expand(load_sweep(sweeps / "laptop_findings.yaml"))}
    assert laptop == {(net, seed) for net in ("resnet20", "plain20", "resnet56", "plain56") for seed in (0, 1)}
