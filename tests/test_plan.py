"""`plan`: trials, cost and a time estimate for every ready sweep, without data, Ray or MLflow."""
import json
from pathlib import Path

import pytest

from orchestrator.specs.plan import (Throughput, calibrate_cpu, estimate_device, macs_per_sec, measured_gpu, plan_sweep)
from resnet_core.schedule import split_sizes
from orchestrator.specs.reading import load_sweep
from resnet_core.spec import DataSpec
from resnet_core.specio import SpecError
from tests.conftest import resnet_sweep

ROOT = Path(__file__).resolve().parents[1]


def test_plan_table6_counts_and_estimate():
    # ResNet-1202 left out: counting it on the meta device takes seconds to a minute on a busy 2-core machine.
    plan = plan_sweep(load_sweep(ROOT / "sweeps" / "table6_cifar10.yaml", ["grid.model.depth=[20,32,44,56,110]"]),
                      Throughput.assumed_gpu())
    rows = {t.name: t for t in plan.trials}
    assert len(plan.trials) == 9
    assert rows["resnet20-A-seed0"].params == pytest.approx(0.27e6, rel=0.02)  # Table 6: 0.27M
    assert rows["resnet110-A-seed0"].params == pytest.approx(1.7e6, rel=0.02)  # 1.7M
    assert rows["resnet20-A-seed0"].epochs == pytest.approx(164.1, abs=0.01)  # 64k / 390 full batches: "about 164"
    # Deeper nets cost proportionally more; the estimate grows with multiply-adds.
    times = [rows[f"resnet{d}-A-seed0"].est_seconds for d in (20, 32, 44, 56, 110)]
    assert times == sorted(times) and times[-1] > 2 * times[0]
    assert times[0] == pytest.approx(64000 * 128 / 50_000, rel=0.1)  # ResNet-20 at 50k images/s, + test passes
    assert plan.est_seconds == pytest.approx(sum(t.est_seconds for t in plan.trials))
    assert plan.device == "gpu" and "assumed" in plan.throughput_source and not plan.throughput_measured


def test_throughput_scales_the_estimate():
    sweep = load_sweep(ROOT / "sweeps" / "smoke.yaml")
    half, full = (plan_sweep(sweep, Throughput.given("gpu", ips)) for ips in (25_000, 50_000))
    assert half.est_seconds == pytest.approx(2 * full.est_seconds)
    gpu = Throughput.assumed_gpu()
    assert macs_per_sec(10**8, gpu) < macs_per_sec(10**9, gpu)  # big nets use a GPU better
    cpu = Throughput.given("cpu", 100)
    assert macs_per_sec(10**8, cpu) == macs_per_sec(10**9, cpu)  # a CPU's rate is taken as flat


def test_a_gpu_measured_by_the_doctor_replaces_the_assumption(tmp_path):
    from resnet_core.machine_profile import write_profile

    assert measured_gpu(tmp_path) is None  # no profile
    for gpu, ips, when in (("NVIDIA H100", 61000.0, "2026-01-01"), ("NVIDIA H200", 123456.0, "2026-02-01")):
        write_profile({"kind": "gpu", "gpu": gpu, "torch": "2.11.0", "cuda": "12.8", "measured": when,
                       "images_per_sec": {"resnet20": {"eager": 1000.0, "step_graph": ips}}}, tmp_path)
    measured = measured_gpu(tmp_path)
    assert measured.measured and measured.images_per_sec == 123456 and "NVIDIA H200" in measured.source
    assert measured_gpu(tmp_path, gpu="NVIDIA H100").images_per_sec == 61000


def test_without_a_gpu_the_estimate_is_for_this_cpu_from_a_calibration():
    smoke, table6 = load_sweep(ROOT / "sweeps" / "smoke.yaml"), load_sweep(ROOT / "sweeps" / "table6_cifar10.yaml")
    assert estimate_device(table6, gpu_here=False) == "cpu" and estimate_device(table6, gpu_here=True) == "gpu"
    assert estimate_device(smoke, gpu_here=True) == "cpu"  # resources.gpu: 0
    calibration = calibrate_cpu(1)
    assert calibration.device == "cpu" and calibration.measured and calibration.images_per_sec > 0
    assert "measured here" in calibration.source
    plan = plan_sweep(smoke, calibration)
    resnet8 = plan.trials[0]
    images = resnet8.iterations * resnet8.batch_size
    assert resnet8.est_seconds > images * resnet8.macs / macs_per_sec(resnet8.macs, calibration)  # + evaluation
    assert plan.est_wall_seconds <= plan.est_seconds


def test_a_batch_larger_than_the_training_set_is_refused_as_the_sweep_is_read():
    """Before any calibration, Ray or MLflow (tests/faults/test_bad_input.py runs it through `run`)."""
    with pytest.raises(SpecError, match=r"smoke.yaml:\d+: base.optim.batch_size: got 100000, expected at most the "
                                        r"256 training images in trial resnet8-A-seed0"):
        load_sweep(ROOT / "sweeps" / "smoke.yaml", ["optim.batch_size=100000"])


def test_split_sizes():
    assert split_sizes(DataSpec(dataset="cifar10", val_split=5000)) == (45000, 10000)
    assert split_sizes(DataSpec(dataset="synthetic", synthetic_train=64, synthetic_test=16, train_limit=32)) == (32, 16)


def test_plan_cli_json_for_imagenet_without_data(tmp_path):
    result = resnet_sweep("plan", str(ROOT / "sweeps" / "imagenet_table3.yaml"), "--json", "--device", "gpu",
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [t["name"] for t in plan["trials"]][:2] == ["plain34-B-seed0", "resnet34-A-seed0"]
    assert plan["trials"][-1]["macs"] == pytest.approx(11.3e9, rel=0.01)  # ResNet-152, Table 1
    assert plan["device"] == "gpu" and plan["est_seconds"] > 0
    assert not list(tmp_path.iterdir())  # plan writes nothing


def test_plan_cli_table_names_every_trial(tmp_path):
    result = resnet_sweep("plan", str(ROOT / "sweeps" / "smoke.yaml"), "--set", "seeds=[0,1]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("resnet8-A-seed0", "plain14-A-seed1"):
        assert name in result.stdout
    assert "estimated time on this CPU" in result.stdout and "measured here" in result.stdout
