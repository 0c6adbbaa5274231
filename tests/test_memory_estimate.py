"""The memory estimate (resnet_core/memory.py) against what autograd really keeps: the tensors a training step's
forward pass saves for backward, seen through saved-tensor hooks on the CPU (each storage once, parameters
excluded: they are the weights), for several depths, batch sizes, a ResNeXt and both precisions."""
import json

import pytest
import torch
import torch.nn.functional as F

from resnet_core.memory import estimate_memory, saved_activation_bytes
from resnet_core.model import build_model
from resnet_core.spec import ModelSpec
from tests.conftest import trial_spec


def measured_saved_bytes(model: ModelSpec, classes: int, size: int, batch: int, reduced: bool) -> int:
    torch.manual_seed(0)
    net = build_model(model, classes).train()
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, classes, (batch,))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=reduced):
            logits = net(images)
        F.cross_entropy(logits.float(), labels)
    return sum(seen.values())


@pytest.mark.parametrize("model, size, batch", [
    (ModelSpec(depth=20), 32, 16),
    (ModelSpec(depth=56), 16, 8),
    (ModelSpec(depth=110), 16, 2),
    (ModelSpec(family="imagenet", depth=18), 32, 4),
    (ModelSpec(family="resnext", depth=29, cardinality=4, width=8), 16, 4),
], ids=lambda v: v.name if isinstance(v, ModelSpec) else str(v))
@pytest.mark.parametrize("reduced", [False, True], ids=["fp32", "bf16"])
def test_saved_activations_within_10_percent_of_autograds(model, size, batch, reduced):
    estimate = saved_activation_bytes(model, 10, size, batch, reduced)
    measured = measured_saved_bytes(model, 10, size, batch, reduced)
    print(f"estimate/measured {estimate / measured:.4f}")
    assert abs(estimate - measured) <= 0.10 * measured, (estimate, measured)


def test_the_estimate_adds_weights_gradients_momentum_and_the_data_on_the_device():
    spec = trial_spec({"model.depth": 20, "optim.batch_size": 128})  # CIFAR-10: 60k images of 3 KB on the device
    memory = estimate_memory(spec, reduced=True)
    params = 269_722  # ResNet-20 (Table 6: 0.27M)
    assert (memory.weights, memory.gradients, memory.optimizer) == (4 * params,) * 3
    assert memory.data == 60_000 * 3 * 32 * 32
    assert memory.activations == saved_activation_bytes(spec.model, 10, 32, 128, True)
    halves = estimate_memory(spec, reduced=True, workers=2)
    assert halves.activations == saved_activation_bytes(spec.model, 10, 32, 64, True)
    assert memory.total == sum((memory.weights, memory.gradients, memory.optimizer, memory.activations, memory.data))


def test_plan_shows_each_trials_peak_and_refuses_one_that_cannot_fit_its_gpu_share(tmp_path, monkeypatch, capsys):
    from orchestrator.cli import main
    from tests.conftest import tiny_sweep

    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))  # no machine profile: the assumed figure
    sweep = tmp_path / "packed.yaml"
    sweep.write_text(tiny_sweep("packed", batch=32) + "grid:\n  optim.batch_size: [32, 64]\nresources: {gpu: 0.5}\n")
    assert main(["plan", str(sweep), "--device", "gpu", "--gpu-memory", "1", "--json"]) == 0
    trials = json.loads(capsys.readouterr().out)["trials"]
    spec = trial_spec({"model.depth": 8, "data.dataset": "synthetic", "data.synthetic_train": 64,
                       "data.synthetic_test": 32, "optim.batch_size": 64})
    assert trials[1]["peak_memory_bytes"] == estimate_memory(spec, reduced=True).total > trials[0]["peak_memory_bytes"]
    limit = (trials[0]["peak_memory_bytes"] + trials[1]["peak_memory_bytes"]) / 2 * 2 / 2**30  # between, x 1/0.5
    assert main(["plan", str(sweep), "--device", "gpu", "--gpu-memory", str(limit)]) == 2
    err = capsys.readouterr().err
    assert "trial resnet8-A-batch_size64-seed0 " in err and "optim.batch_size 64" in err and "resources.gpu 0.5" in err


def test_resources_gpu_auto_packs_what_the_profile_says_pays_off_and_fits(tmp_path):
    from orchestrator.running.resources import trials_per_gpu
    from orchestrator.specs.reading import load_sweep
    from resnet_core.machine_profile import write_profile
    from resnet_core.specio import SpecError
    from tests.conftest import tiny_sweep

    path = tmp_path / "auto.yaml"
    path.write_text(tiny_sweep("auto") + "resources: {gpu: auto}\n")
    sweep = load_sweep(path)
    assert sweep.resources.gpu == "auto" and sweep.resources.worker_gpu is None
    profiles = tmp_path / "profiles"
    assert trials_per_gpu(sweep, profiles) == 1  # no profile: one trial per GPU
    peak = estimate_memory(sweep.base, reduced=True).total  # precision auto: reduced, as on a GPU
    for memory, expected in ((80 * 2**30, 8), (2.5 * peak, 2)):
        write_profile({"kind": "gpu", "gpu": "NVIDIA H200", "torch": "2", "cuda": "12", "measured": str(memory),
                       "trials_per_gpu": 8, "gpu_memory_bytes": memory}, profiles)
        assert trials_per_gpu(sweep, profiles) == expected
    with pytest.raises(SpecError, match="resources.workers|gpu"):
        path.write_text(tiny_sweep("auto") + "resources: {gpu: auto, workers: 2}\n")
        load_sweep(path)
