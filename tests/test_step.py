"""One training iteration (step.py) on the CPU: the whole-step function a CUDA graph captures matches the eager
step; the GPU-style settings (bf16, channels_last, fused SGD) and the compiled step run here too."""
import pytest
import torch

from resnet_core.augment import fit_normalizer
from resnet_core.data import TensorSplit, TensorTrainBatches, synthetic
from resnet_core.model import build_model
from resnet_core.runtime import Runtime
from resnet_core.schedule import learning_rate
from resnet_core.spec import DataSpec, ModelSpec, OptimSpec, WarmupSpec
from resnet_core.step import StepSums, TrainStep

CPU = torch.device("cpu")
# lr 0.01 for 20 iterations (a warm-up), then 0.1, divided by 10 at 40: the step sees every kind of lr change.
OPTIM = OptimSpec(milestones=(40,), iterations=60, warmup=WarmupSpec(max_iterations=20))


def tiny_batches(memory_format=torch.contiguous_format) -> TensorTrainBatches:
    train, _, _ = synthetic(DataSpec(dataset="synthetic", image_size=8, synthetic_train=64, synthetic_test=1), 8)
    return TensorTrainBatches(TensorSplit(train.images, train.labels), fit_normalizer(train.images, "pixel_mean"),
                              16, seed=0, augment=True, memory_format=memory_format)


def run_steps(runtime: Runtime, iterations: int = OPTIM.iterations, depth: int = 8):
    """`iterations` steps over successive epochs; per-step losses (from the running sums), the model and sums."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(depth=depth), 10).to(memory_format=runtime.memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4,
                                **({"fused": True} if runtime.fused_optimizer else {"foreach": True}))
    batches, sums = tiny_batches(runtime.memory_format), StepSums.on(CPU)
    step = TrainStep(model, optimizer, batches, runtime, sums)
    losses, iteration, epoch = [], 0, 0
    while iteration < iterations:
        sums.start(0.0, 0.0, 0.0, iteration)
        for (selection,) in batches.epoch(epoch):
            if iteration == iterations:
                break
            before = float(sums.loss)
            step.set_lr(learning_rate(OPTIM, iteration, warming_up=iteration < 20))
            step(selection)
            losses.append((float(sums.loss) - before) / 16)
            iteration += 1
        epoch += 1
    return losses, model, sums


def runtime(**changes) -> Runtime:
    settings = dict(device=CPU, autocast_dtype=None, channels_last=False, compile=False, fused_optimizer=True,
                    cuda_graph="off")
    return Runtime(**{**settings, **changes})


def test_whole_step_function_uncaptured_matches_the_eager_step_for_60_iterations():
    """What `runtime.cuda_graph: step` captures on a GPU (lr as a device tensor, no autocast cache), run as plain
    PyTorch: the same losses, BN statistics and weights as the eager step, bit for bit in fp32."""
    eager_losses, eager, eager_sums = run_steps(runtime(cuda_graph="off"))
    whole_losses, whole, whole_sums = run_steps(runtime(cuda_graph="step"))
    assert len(whole_losses) == 60 and whole_losses[-1] < whole_losses[0]
    assert whole_losses == pytest.approx(eager_losses, abs=1e-6)
    a, b = eager.state_dict(), whole.state_dict()  # weights and BN running means, variances and counts
    assert all(torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=1e-6) for k in a)
    assert int(whole_sums.iteration) == 60 and int(whole_sums.first_bad) == -1
    assert float(whole_sums.wrong) == float(eager_sums.wrong)


def test_gpu_style_step_runs_on_cpu_bf16_channels_last_fused():
    losses, model, sums = run_steps(runtime(autocast_dtype=torch.bfloat16, channels_last=True, cuda_graph="step"),
                                    iterations=8)
    assert all(torch.isfinite(torch.tensor(losses))) and 0 <= float(sums.wrong) <= 8 * 16
    assert model.fc.weight.dtype == torch.float32


def test_compiled_step_matches_eager_on_cpu():
    """The torch.compile path (dynamo + AOTAutograd; aot_eager skips inductor's C++ code generation)."""
    eager_losses, eager, _ = run_steps(runtime(), iterations=6)
    compiled_losses, compiled, _ = run_steps(runtime(compile=True, compile_backend="aot_eager"), iterations=6)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5)
    assert torch.allclose(eager.fc.weight, compiled.fc.weight, atol=1e-5)


def test_a_non_finite_loss_is_marked_at_its_iteration():
    sums = StepSums.on(CPU)
    sums.start(0.0, 0.0, 0.0, 7)
    sums.add(torch.tensor(1.0), torch.tensor(2), 16)
    sums.add(torch.tensor(float("nan")), torch.tensor(0), 16)
    sums.add(torch.tensor(float("inf")), torch.tensor(0), 16)
    assert int(sums.first_bad) == 8 and int(sums.iteration) == 10 and float(sums.wrong) == 2
