"""Training on CPU with tiny synthetic trials: learning, exact resume, warm-up, divergence, transfer, Figure 7."""
from pathlib import Path

import pytest
import torch

from resnet_core.checkpoint import load_checkpoint
from resnet_core.failures import DivergedError
from resnet_core.model import build_model
from resnet_core.responses import layer_response_std
from resnet_core.spec import ModelSpec, TrialSpec
from resnet_core.specio import SpecError
from tests.conftest import trial_spec
from resnet_core.train import train

# ResNet-8 (n=1) on 8x8 synthetic images, 4 iterations per epoch: milliseconds per step on a CPU.
TINY = {"model.depth": 8, "data.dataset": "synthetic", "data.image_size": 8, "data.synthetic_train": 64,
        "data.synthetic_test": 32, "optim.batch_size": 16, "optim.iterations": 8, "runtime.device": "cpu"}


def tiny(**changes) -> TrialSpec:
    return trial_spec(TINY, **changes)


def final_state(directory) -> dict:
    return load_checkpoint(directory)["model"]


def test_a_few_iterations_lower_the_loss_and_report_every_contract_key():
    history = list(train(tiny(optim__iterations=12)))
    assert [m["epoch"] for m in history] == [1, 2, 3] and history[-1]["iteration"] == 12
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.3
    for m in history:
        assert {"epoch", "iteration", "epochs", "train_loss", "train_error", "test_error", "lr",
                "images_per_sec", "epoch_time"} <= m.keys() and m["epochs"] == 3
        assert 0 <= m["train_error"] <= 1 and 0 <= m["test_error"] <= 1 and "val_error" not in m
    assert history[-1]["done"] is True and "done" not in history[0]
    assert len(history[-1]["layer_response_std"]) == 7  # ResNet-8: stem + 2 per block x 3 blocks


def test_last_epoch_is_partial_and_val_error_appears_with_a_split():
    history = list(train(tiny(optim__iterations=6, data__val_split=16)))  # 48 train images: 3 steps an epoch
    assert [m["iteration"] for m in history] == [3, 6]
    assert all("val_error" in m for m in history)
    history = list(train(tiny(optim__iterations=5)))  # 4 steps an epoch: the second epoch stops after 1
    assert [m["iteration"] for m in history] == [4, 5] and history[-1]["epochs"] == 2


def test_resume_continues_exactly(tmp_path):
    straight = list(train(tiny(), checkpoint_dir=tmp_path / "straight"))
    interrupted = train(tiny(), checkpoint_dir=tmp_path / "run")
    first = next(interrupted)  # the checkpoint is on disk before the yield
    interrupted.close()
    assert first["iteration"] == 4 and load_checkpoint(tmp_path / "run")["iteration"] == 4
    resumed = list(train(tiny(), checkpoint_dir=tmp_path / "run", resume_from=tmp_path / "run"))
    assert [m["epoch"] for m in resumed] == [2]
    for key in ("train_loss", "train_error", "test_error", "layer_response_std"):
        assert resumed[-1][key] == straight[-1][key]
    a, b = final_state(tmp_path / "straight"), final_state(tmp_path / "run")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_mid_epoch_lands_on_the_same_weights(tmp_path):
    list(train(tiny(), checkpoint_dir=tmp_path / "straight"))
    list(train(tiny(optim__iterations=6), checkpoint_dir=tmp_path / "part"))  # stops 2 steps into epoch 2
    list(train(tiny(), checkpoint_dir=tmp_path / "part", resume_from=tmp_path / "part"))
    a, b = final_state(tmp_path / "straight"), final_state(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_a_finished_trial_reports_without_training(tmp_path):
    done = list(train(tiny(), checkpoint_dir=tmp_path))[-1]
    assert list(train(tiny(), resume_from=tmp_path)) == [done]


def test_resume_refuses_another_trials_checkpoint(tmp_path):
    list(train(tiny(optim__iterations=4), checkpoint_dir=tmp_path))
    with pytest.raises(SpecError, match="seed"):
        next(train(tiny(seed=1), resume_from=tmp_path))
    with pytest.raises(SpecError, match="resume_from"):
        next(train(tiny(), resume_from=tmp_path / "empty"))


def test_runs_are_deterministic_on_cpu_given_the_seed():
    a = list(train(tiny(optim__iterations=4)))[-1]
    b = list(train(tiny(optim__iterations=4)))[-1]
    c = list(train(tiny(optim__iterations=4, seed=1)))[-1]
    assert a["train_loss"] == b["train_loss"] and a["layer_response_std"] == b["layer_response_std"]
    assert a["train_loss"] != c["train_loss"]


@pytest.mark.parametrize("lr", [1e30])
def test_nan_loss_raises_diverged_with_the_iteration(lr):
    with pytest.raises(DivergedError, match=r"diverged at iteration \d+") as err:
        list(train(tiny(optim__lr=lr)))
    assert isinstance(err.value, RuntimeError) and 0 < err.value.iteration < 8


def test_warmup_holds_its_lr_until_the_error_check_passes():
    spec = tiny(optim__iterations=24, optim__warmup={"lr": 0.01, "until_train_error": 0.999})
    history = list(train(spec))  # the first check, after iteration 20, finds the error below 99.9%
    assert [m["lr"] for m in history] == [0.01] * 5 + [0.1]


def test_transfer_head_trains_only_a_new_classifier(tmp_path):
    list(train(tiny(optim__iterations=4), checkpoint_dir=tmp_path / "source"))
    source = final_state(tmp_path / "source")
    target = tiny(optim__iterations=4, data__num_classes=5,
                  transfer={"checkpoint": str(tmp_path / "source"), "train": "head"})
    list(train(target, checkpoint_dir=tmp_path / "head"))
    tuned = final_state(tmp_path / "head")
    assert tuned["fc.weight"].shape == (5, 64)
    for key in source:
        if not key.startswith("fc.") and not key.endswith("num_batches_tracked"):
            assert torch.equal(source[key], tuned[key]), key  # frozen weights and BN statistics


def test_transfer_last_stage_freezes_the_rest(tmp_path):
    list(train(tiny(optim__iterations=4), checkpoint_dir=tmp_path / "source"))
    source = final_state(tmp_path / "source")
    list(train(tiny(optim__iterations=4, transfer={"checkpoint": str(tmp_path / "source"),
                                                   "train": "last_stage"}), checkpoint_dir=tmp_path / "tuned"))
    tuned = final_state(tmp_path / "tuned")
    assert torch.equal(source["stem.0.weight"], tuned["stem.0.weight"])
    assert torch.equal(source["stages.1.0.layers.0.0.weight"], tuned["stages.1.0.layers.0.0.weight"])
    assert not torch.equal(source["stages.2.0.layers.0.0.weight"], tuned["stages.2.0.layers.0.0.weight"])
    assert not torch.equal(source["fc.weight"], tuned["fc.weight"])


def test_transfer_from_another_architecture_is_bad_input(tmp_path):
    list(train(tiny(optim__iterations=4), checkpoint_dir=tmp_path))
    with pytest.raises(SpecError, match="transfer.checkpoint"):
        next(train(tiny(model__depth=14, transfer={"checkpoint": str(tmp_path)})))


def test_bf16_trial_on_cpu_learns():
    history = list(train(tiny(runtime__precision="bf16")))
    assert history[-1]["train_loss"] < history[0]["train_loss"]


@pytest.mark.parametrize("residual", [True, False])
def test_figure7_has_one_entry_per_3x3_layer_of_resnet20(residual):
    model = build_model(ModelSpec(depth=20, residual=residual), 10)
    names, stds = layer_response_std(model, [torch.randn(4, 3, 8, 8), torch.randn(3, 3, 8, 8)])
    assert len(names) == len(stds) == 19  # 1 stem conv + 3 stages x 3 blocks x 2 convs
    assert names[0].startswith("stem") and all(s > 0 for s in stds)
    assert model.training  # restored


def test_figure7_std_is_the_std_of_the_response():
    model = build_model(ModelSpec(depth=8), 10).eval()
    x = torch.randn(5, 3, 8, 8)
    bn_out = []  # stem: conv -> BN -> LayerResponse -> ReLU; the response is the BN output
    handle = model.stem[1].register_forward_hook(lambda m, i, o: bn_out.append(o.detach().clone()))
    _, stds = layer_response_std(model, [x])
    handle.remove()
    assert stds[0] == pytest.approx(bn_out[0].double().std(unbiased=False).item(), rel=1e-9)



def test_throughput_bench_compares_both_trainers_on_cpu(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from bench.train_throughput import compare, table

    row = compare(depth=8, batch=8, steps=2, repeats=1, device=torch.device("cpu"), workers=0)
    assert row.conventional.images_per_sec > 0 and row.ours.images_per_sec > 0
    assert row.conventional.peak_memory_bytes is None  # CUDA-only figure
    assert table([row])[-1].startswith("| resnet8 | 8 | 2 x 1 |")
