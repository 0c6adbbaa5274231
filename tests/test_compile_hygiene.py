"""torch.compile on the CPU (aot_eager: dynamo and AOTAutograd trace exactly what inductor would compile): one
graph per trial, no graph breaks, no recompiles across epochs, evaluation, a warm-up lr switch, a checkpoint and
a resume; trials run one after another in one process (a reused Ray actor) each compile afresh, none runs eager."""
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from resnet_core.runtime import Runtime, cpu_share, prepare_compile
from resnet_core.spec import TrialSpec
from resnet_core.specio import set_path
from resnet_core.train import train

TINY = {"model.depth": 8, "data.dataset": "synthetic", "data.image_size": 8, "data.synthetic_train": 72,
        "data.synthetic_test": 20, "optim.batch_size": 16, "runtime.device": "cpu", "runtime.compile": "on",
        "runtime.compile_backend": "aot_eager", "runtime.eval_batch_size": 16}


def tiny(**changes) -> TrialSpec:
    data: dict = {}
    for key, value in {**TINY, **{k.replace("__", "."): v for k, v in changes.items()}}.items():
        data = set_path(data, key, value)
    return TrialSpec.from_dict(data)


def compiles() -> tuple[int, int]:
    """(graphs compiled, graph breaks) since the counters were cleared."""
    return counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())


def test_a_compiled_trial_compiles_once_through_epochs_eval_warmup_checkpoint_and_resume(tmp_path):
    # 72 images at batch 16: 4 full steps an epoch (8 images sit out); 3 epochs, evaluated at batch 16 (the
    # 20 test images end in a batch of 4: evaluation is not compiled); warm-up lr until iteration 6.
    spec = tiny(optim__iterations=12, optim__warmup={"lr": 0.01, "until_train_error": 0.01, "max_iterations": 6})
    counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True):
        history = list(train(spec, checkpoint_dir=tmp_path / "straight"))
    assert [m["lr"] for m in history] == [0.01, 0.1, 0.1] and history[-1]["done"]
    assert compiles() == (1, 0)

    counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True):
        interrupted = train(spec, checkpoint_dir=tmp_path / "run")
        next(interrupted), next(interrupted)  # two epochs, then the process "dies"
        interrupted.close()
        resumed = list(train(spec, checkpoint_dir=tmp_path / "run", resume_from=tmp_path / "run"))
    assert [m["epoch"] for m in resumed] == [3] and compiles() == (2, 0)  # one per train() call
    assert resumed[-1]["train_loss"] == pytest.approx(history[-1]["train_loss"], rel=1e-6)


def test_trials_of_different_depths_in_one_process_each_compile_once_and_none_runs_eager():
    """A reused Ray actor runs trial after trial: without a fresh cache per trial, dynamo's entries for the
    shared `forward` code pile up (one per model) and after its recompile limit later trials run eager."""
    counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True, recompile_limit=2):
        for number, depth in enumerate((8, 14, 8), 1):
            final = list(train(tiny(model__depth=depth, optim__iterations=4)))[-1]
            assert final["done"] and compiles() == (number, 0), depth


def test_inductor_compile_workers_are_bounded_by_the_trials_cpu_share(monkeypatch):
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "compile_threads", 16)  # as on a 16-core GPU machine
    assert cpu_share() == 1  # the suite runs torch on one thread (conftest), as a trial of `cpu: 1` does
    runtime = Runtime(torch.device("cpu"), None, False, compile=True, fused_optimizer=True,
                      compile_threads=cpu_share())
    prepare_compile(runtime)
    assert inductor_config.compile_threads == 1
