"""The fallback ladder on the CPU: each failure a fast path can meet at a trial's start, injected for real (a compile
backend that raises and one whose first step gives NaN, both through torch's own backend registry; a CUDA-graph
capture, which raises here as on any machine where capture fails; no working C++ compiler), drops one rung, and
the trial finishes exactly as a trial started on that rung. Bad input and errors on the plain rung fail as before;
the fp16 path trains with its gradient scaler."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from torch._dynamo import register_backend

from resnet_core.fallback import PROBATION_STEPS, lower, rung_name
from resnet_core.failures import DivergedError
from resnet_core.runtime import autocast_dtype, resolve_runtime
from resnet_core.specio import DatasetError
from resnet_core.step import StepSums, TrainStep
from resnet_core.train import train
from tests.conftest import trial_spec

# ResNet-8 on 8x8 synthetic images, 4 iterations an epoch, 2 epochs.
TINY = {"model.depth": 8, "data.dataset": "synthetic", "data.image_size": 8, "data.synthetic_train": 64,
        "data.synthetic_test": 32, "optim.batch_size": 16, "optim.iterations": 8, "optim.milestones": [6],
        "runtime.device": "cpu"}
COMPARED = ("iteration", "train_loss", "train_error", "test_error", "lr", "layer_response_std")


@register_backend(name="raises_at_compile")
def _raises_at_compile(graph, example_inputs):
    raise RuntimeError("this backend cannot compile anything")


@register_backend(name="nan_first_step")
def _nan_first_step(graph, example_inputs):
    """Runs the graph, but its first call's floating-point outputs are NaN (the loss, then the gradients)."""
    calls = []

    def run(*args):
        calls.append(1)
        outputs = graph(*args)
        if len(calls) > 1:
            return outputs
        return type(outputs)(o * float("nan") if torch.is_tensor(o) and o.is_floating_point() else o
                             for o in outputs)
    return run


def history(spec, **top):
    runtime = resolve_runtime(spec.runtime)
    return list(train(spec, runtime=dataclasses.replace(runtime, **top) if top else None))


def same_training(ran, reference):
    assert len(ran) == len(reference)
    for a, b in zip(ran, reference):
        assert {k: a[k] for k in COMPARED if k in a} == {k: b[k] for k in COMPARED if k in b}


@pytest.fixture(scope="module")
def eager():
    """The plain rung, started there: eager fp32, the CPU's default."""
    ran = history(trial_spec(TINY))
    assert ran[-1]["rung"] == "eager fp32" and "fallback" not in ran[-1]
    return ran


@pytest.mark.parametrize("top, cause", [
    ({"compile": True, "compile_backend": "raises_at_compile"}, "compiling failed (BackendCompilerFailed"),
    ({"compile": True, "compile_backend": "nan_first_step"}, "the loss was not finite in the first steps"),
    ({"cuda_graph": "step", "step_graph": True}, "the CUDA-graph capture failed"),
], ids=["backend-raises", "first-step-nan", "capture-raises"])
def test_a_failed_fast_path_drops_one_rung_and_trains_as_a_trial_started_there(eager, top, cause):
    ran = history(trial_spec(TINY), **top)
    same_training(ran, eager)
    assert all(m["rung"] == "eager fp32" for m in ran)
    failed = "compiled fp32" if top.get("compile") else "step_graph fp32"
    assert ran[0]["fallback"].startswith(f"{failed}: {cause}") and ran[0]["fallback"].endswith("went on as eager fp32")


def test_bf16_that_fails_drops_to_fp32_on_the_cpu_and_a_later_nan_still_diverges():
    """The precision rung (on a GPU bf16 drops to fp16 with a scaler first), and the probation's limit: a loss that
    turns NaN after the first steps is the model's divergence, recorded as ever, not a rung's failure."""
    cpu = resolve_runtime(trial_spec(TINY).runtime)
    assert lower(dataclasses.replace(cpu, autocast_dtype=torch.bfloat16), "nonfinite") == cpu
    on_gpu = dataclasses.replace(cpu, device=torch.device("cuda", 0), autocast_dtype=torch.bfloat16)
    assert rung_name(lower(on_gpu, "nonfinite")) == "eager fp16+scaler" and lower(cpu, "nonfinite") is None
    with pytest.raises(DivergedError) as err:  # the plain rung: lr 1e6 diverges as before
        list(train(trial_spec(TINY, optim__lr=1e6, optim__iterations=12)))
    assert err.value.iteration >= 0
    diverging = trial_spec(TINY, optim__lr=1e6, optim__iterations=12, runtime__precision="bf16")
    with pytest.raises(DivergedError) as late:
        list(train(diverging))
    if late.value.iteration < PROBATION_STEPS:  # NaN within the first steps: bf16 dropped, then fp32 diverged too
        assert late.value.iteration == err.value.iteration


def test_bad_input_fails_on_every_rung_without_a_drop(tmp_path):
    spec = trial_spec({**TINY, "data.dataset": "cifar10", "data.root": str(tmp_path / "none")})
    with pytest.raises(DatasetError):
        history(spec, compile=True, compile_backend="raises_at_compile")


def test_fp16_trains_with_a_gradient_scaler_that_skips_overflowing_steps():
    """precision fp16 on the CPU: autocast fp16, the loss scaled for backward; a scale so large that the gradients
    overflow fp16 skips the step (weights unchanged) and halves the scale, and training then goes on."""
    assert autocast_dtype("auto", torch.device("cpu")) is None  # auto on a CPU: fp32
    spec = trial_spec(TINY, runtime__precision="fp16")
    ran = list(train(spec))
    assert ran[-1]["rung"] == "eager fp16+scaler" and all(m["train_loss"] == m["train_loss"] for m in ran)
    assert ran[-1]["train_loss"] < ran[0]["train_loss"] + 0.5

    from resnet_core.augment import fit_normalizer
    from resnet_core.data import TensorTrainBatches, synthetic
    from resnet_core.model import build_model

    runtime = resolve_runtime(spec.runtime)
    images, _, _ = synthetic(spec.data, 8)
    batches = TensorTrainBatches(images, fit_normalizer(images.images, "pixel_mean"), 16, seed=0, augment=True,
                                 memory_format=runtime.memory_format)
    model = build_model(spec.model, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=runtime.fused_optimizer or None)
    step = TrainStep(model, optimizer, batches, runtime, StepSums.on(runtime.device))
    step.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 30)
    before = [p.detach().clone() for p in model.parameters()]
    (selection,) = next(iter(batches.epoch(0)))
    step.set_lr(0.1)
    step(selection)
    assert step.scaler.get_scale() == 2.0 ** 29
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    for _ in range(64):  # the scale halves on every overflow until the gradients fit fp16
        step(selection)
        if not all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
            break
    assert 1 < step.scaler.get_scale() < 2.0 ** 29
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.slow
def test_no_working_cxx_compiler_costs_the_trial_only_its_compile(tmp_path):
    """The failure a slim container image meets: inductor with CXX=/bin/false really fails, and `resnet-sweep
    train` with `runtime.compile: on` there finishes its trial in eager mode and says why."""
    env = {**os.environ, "CXX": "/bin/false", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    sets = [f"{k}={json.dumps(v)}" for k, v in {**TINY, "runtime.compile": "on"}.items()]
    # One process (a torch start is seconds here): the probe, then the command as `resnet-sweep train` runs it.
    script = ("import sys, torch\n"
              "try:\n    torch.compile(lambda x: x.sin() + 1)(torch.ones(4))\n"
              "except Exception as err:\n    print('fails:', type(err).__name__, err, file=sys.stderr)\n"
              "from orchestrator.cli import main\n"
              f"sys.exit(main({['train', *(a for s in sets for a in ('--set', s)), '--json']!r}))\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "fails: InductorError" in done.stderr and "C++ compiler" in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["done"] and final["rung"] == "eager fp32"
    assert final["fallback"].startswith("compiled fp32: compiling failed (InductorError: InvalidCxxCompiler")


def test_status_and_the_report_say_which_rung_trained_and_why():
    """The record's epochs carry the rung (trial_view: `status`); the run's tags do (the report's rows)."""
    from orchestrator.records.trial_record import History
    from orchestrator.records.trial_view import trial_view
    from orchestrator.report.build import rungs
    from orchestrator.report.rows import Row, SweepRuns

    why = "compiled bf16: compiling failed (InductorError: no compiler); went on as eager bf16"
    epoch = {"event": "epoch", "iteration": 4, "train_error": 0.5, "rung": "eager bf16", "fallback": why}
    view = trial_view({"name": "resnet8", "id": "a1", "iterations": 8}, History(epochs=(epoch,), state="running"),
                      None, "running")
    assert (view["rung"], view["fallback"]) == ("eager bf16", why)

    def row(name, rung, fallback=None):
        return Row(run_id=name, run_name=name, arch="resnet8", family="cifar", depth=8, n=1, residual=True,
                   shortcut="A", cardinality=1, width=64, seed=0, dataset="synthetic", state="finished", rung=rung,
                   fallback=fallback)
    sweep = SweepRuns("s", "1", "s", "p", (), (row("a", "compiled bf16"), row("b", "compiled bf16"),
                                                row("c", "eager bf16", why)))
    assert rungs(sweep) == ("compiled bf16: 2 trials", "eager bf16: 1 trial", f"c fell back to eager bf16: {why}")
