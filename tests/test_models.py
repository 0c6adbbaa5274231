"""The model family against the papers' printed numbers (parameters and multiply-adds of their tables) and
torchvision's models, computed from the built models."""
import pytest
import torch
import torchvision

from resnet_core.architectures import ARCHITECTURES
from resnet_core.accounting import count_params, model_cost
from resnet_core.model import LayerResponse, ZeroPadShortcut, build_model
from resnet_core.spec import ModelSpec
from resnet_core.specio import SpecError

# ResNet Table 6: params as the paper prints them (two significant figures; 1202 at three).
TABLE6_PARAMS = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M", 1202: "19.4M"}


@pytest.mark.parametrize("depth,printed", TABLE6_PARAMS.items())
def test_table6_params_at_the_papers_precision(depth, printed):
    params = model_cost(ModelSpec(depth=depth), num_classes=10).params
    decimals = len(printed[:-1].split(".")[1])
    assert f"{params / 1e6:.{decimals}f}M" == printed


@pytest.mark.parametrize("depth,paper_macs", [(18, 1.8e9), (34, 3.6e9), (50, 3.8e9), (101, 7.6e9), (152, 11.3e9)])
def test_table1_multiply_adds_within_3_percent(depth, paper_macs):
    macs = model_cost(ModelSpec(family="imagenet", depth=depth), num_classes=1000).macs
    assert abs(macs - paper_macs) / paper_macs < 0.03


@pytest.mark.parametrize("ours,theirs", [
    (ModelSpec(family="imagenet", depth=50), torchvision.models.resnet50),
    (ModelSpec(family="imagenet", depth=18), torchvision.models.resnet18),
    (ModelSpec(family="resnext", depth=50, cardinality=32, width=4), torchvision.models.resnext50_32x4d),
])
def test_params_match_torchvision(ours, theirs):
    with torch.device("meta"):
        expected = count_params(theirs())
    assert model_cost(ours, num_classes=1000).params == expected


def test_known_exact_counts():
    assert model_cost(ModelSpec(family="imagenet", depth=50), 1000).params == 25_557_032
    assert model_cost(ModelSpec(family="resnext", depth=50, cardinality=32, width=4), 1000).params == 25_028_904
    # Multiply-adds anyone can recount: the paper's stride on the 1x1 (Table 1) vs torchvision's v1.5 stride on
    # the 3x3.
    assert model_cost(ModelSpec(family="imagenet", depth=50), 1000).macs == pytest.approx(3.858e9, rel=1e-3)
    assert model_cost(ModelSpec(family="imagenet", depth=50, stride_on="3x3"), 1000).macs == pytest.approx(
        4.089e9, rel=1e-3)
    assert model_cost(ModelSpec(family="resnext", depth=50, stride_on="3x3"), 1000).macs == pytest.approx(
        4.230e9, rel=1e-3)


@pytest.mark.parametrize("cardinality,width,paper", [(8, 64, 34.4e6), (16, 64, 68.1e6)])
def test_resnext29_params_within_1_percent(cardinality, width, paper):
    params = model_cost(ModelSpec(family="resnext", depth=29, cardinality=cardinality, width=width), 10).params
    assert abs(params - paper) / paper < 0.01


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_named_architecture_runs_forward(name):
    arch = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = build_model(arch.model, arch.num_classes)
    size = 32 if arch.dataset.startswith("cifar") else 64  # ImageNet nets at 64px: same graph, 12x less work
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, arch.num_classes)
    assert torch.isfinite(out).all()


def test_plain_nets_have_the_same_layers_and_no_shortcuts():
    plain, residual = build_model(ModelSpec(depth=20, residual=False), 10), build_model(ModelSpec(depth=20), 10)
    assert count_params(plain) == count_params(residual)  # option A shortcuts have no parameters
    assert all(block.shortcut is None for stage in plain.stages for block in stage)
    assert sum(isinstance(m, ZeroPadShortcut) for m in residual.modules()) == 2  # the two downsampling blocks


def test_shortcut_options_b_and_c_add_projections():
    a, b, c = (model_cost(ModelSpec(depth=20, shortcut=s), 10).params for s in "ABC")
    assert a < b < c
    # Table 3's ResNet-34 B adds only the 3 downsampling projections; C makes every shortcut one.
    b34 = build_model(ModelSpec(family="imagenet", depth=34, shortcut="B"), 1000)
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) for m in b34.modules()) == 3


def test_one_response_layer_per_3x3_conv():
    assert len(build_model(ModelSpec(depth=20), 10).response_layers()) == 19
    assert len(build_model(ModelSpec(depth=56, residual=False), 10).response_layers()) == 55
    assert len(build_model(ModelSpec(depth=20, preact=True), 10).response_layers()) == 19
    assert all(isinstance(m, LayerResponse) for _, m in build_model(ModelSpec(depth=8), 10).response_layers())


def test_zero_padding_shortcut_subsamples_and_pads():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    y = ZeroPadShortcut(2, 5, stride=2)(x)
    assert y.shape == (1, 5, 2, 2)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert not y[:, 2:].any()


def test_zero_init_last_bn_makes_blocks_start_as_identity():
    model = build_model(ModelSpec(depth=8, zero_init_last_bn=True), 10).eval()
    block = model.stages[0][0]
    x = torch.relu(torch.randn(1, 16, 8, 8))
    assert torch.allclose(block(x), x)


@pytest.mark.parametrize("bad,key", [
    (dict(depth=21), "depth"),
    (dict(family="cifar", n=0), "n"),
    (dict(depth=20, n=5), "depth"),
    (dict(family="imagenet", depth=42), "depth"),
    (dict(family="resnext", depth=30), "depth"),
    (dict(family="cifar", cardinality=4), "cardinality"),
    (dict(family="imagenet", depth=18, cardinality=32, width=4), "cardinality"),
    (dict(family="resnext", depth=50, cardinality=0), "cardinality"),
])
def test_impossible_architectures_are_spec_errors(bad, key):
    with pytest.raises(SpecError) as err:
        ModelSpec(**bad)
    assert err.value.key_path == key


def test_defaults_are_the_papers():
    assert (ModelSpec().depth, ModelSpec().n, ModelSpec().shortcut) == (20, 3, "A")
    assert ModelSpec(n=18).depth == 110
    assert ModelSpec(family="imagenet", depth=34).shortcut == "B"
    resnext = ModelSpec(family="resnext", depth=29)
    assert (resnext.cardinality, resnext.width, resnext.name) == (8, 64, "resnext29_8x64d")
    assert ModelSpec(family="resnext", depth=50).name == "resnext50_32x4d"


def test_a_trials_multiply_adds_are_counted_at_the_size_its_images_have():
    """ImageNet folders cropped smaller (data.image_size, as tests and laptops do) and synthetic sets train at their
    own size; CIFAR's images are 32 pixels whatever image_size says."""
    from resnet_core.accounting import trial_cost
    from resnet_core.spec import TrialSpec

    def macs(family: str, dataset: str, image_size: int | None) -> int:
        return trial_cost(TrialSpec.from_dict({"model": {"family": family, "depth": 18 if family == "imagenet" else 20},
                                               "data": {"dataset": dataset, "image_size": image_size}})).macs

    full = model_cost(ModelSpec(family="imagenet", depth=18), 1000).macs
    assert macs("imagenet", "imagenet", None) == full
    assert macs("imagenet", "imagenet", 112) == model_cost(ModelSpec(family="imagenet", depth=18), 1000, 112).macs < full
    assert macs("cifar", "cifar10", 64) == macs("cifar", "cifar10", None) == model_cost(ModelSpec(depth=20), 10).macs
    assert macs("cifar", "synthetic", 64) > macs("cifar", "synthetic", None)
