"""`plan`: trials, cost and a time estimate for every ready sweep, without data, Ray or MLflow."""
import json
from pathlib import Path

import pytest

from orchestrator.plan import macs_per_sec, plan_sweep, split_sizes
from orchestrator.sweep import load_sweep
from resnet_core.spec import DataSpec
from tests.conftest import resnet_sweep

ROOT = Path(__file__).resolve().parents[1]


def test_plan_table6_counts_and_estimate():
    # ResNet-1202 left out: counting it on the meta device takes seconds to a minute on a busy 2-core machine.
    plan = plan_sweep(load_sweep(ROOT / "sweeps" / "table6_cifar10.yaml", ["grid.model.depth=[20,32,44,56,110]"]))
    rows = {t.name: t for t in plan.trials}
    assert len(plan.trials) == 9
    assert rows["resnet20-A-seed0"].params == pytest.approx(0.27e6, rel=0.02)  # Table 6: 0.27M
    assert rows["resnet110-A-seed0"].params == pytest.approx(1.7e6, rel=0.02)  # 1.7M
    assert rows["resnet20-A-seed0"].epochs == pytest.approx(163.84)  # 64k x 128 / 50k, "about 164 epochs"
    # Deeper nets cost proportionally more; the estimate grows with multiply-adds.
    times = [rows[f"resnet{d}-A-seed0"].est_gpu_seconds for d in (20, 32, 44, 56, 110)]
    assert times == sorted(times) and times[-1] > 2 * times[0]
    assert times[0] == pytest.approx(64000 * 128 / 50_000, rel=0.1)  # ResNet-20 at 50k images/s, + test passes
    assert plan.est_gpu_seconds == pytest.approx(sum(t.est_gpu_seconds for t in plan.trials))
    assert "estimate" in plan.throughput_source


def test_throughput_scales_the_estimate():
    sweep = load_sweep(ROOT / "sweeps" / "smoke.yaml")
    assert plan_sweep(sweep, 25_000).est_gpu_seconds == pytest.approx(2 * plan_sweep(sweep, 50_000).est_gpu_seconds)
    assert macs_per_sec(10**8) < macs_per_sec(10**9)  # big nets use a GPU better


def test_split_sizes():
    assert split_sizes(DataSpec(dataset="cifar10", val_split=5000)) == (45000, 10000)
    assert split_sizes(DataSpec(dataset="synthetic", synthetic_train=64, synthetic_test=16, train_limit=32)) == (32, 16)


def test_plan_cli_json_for_imagenet_without_data(tmp_path):
    result = resnet_sweep("plan", str(ROOT / "sweeps" / "imagenet_table3.yaml"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [t["name"] for t in plan["trials"]][:2] == ["plain34-B-seed0", "resnet34-A-seed0"]
    assert plan["trials"][-1]["macs"] == pytest.approx(11.3e9, rel=0.01)  # ResNet-152, Table 1
    assert not list(tmp_path.iterdir())  # plan writes nothing


def test_plan_cli_table_names_every_trial(tmp_path):
    result = resnet_sweep("plan", str(ROOT / "sweeps" / "smoke.yaml"), "--set", "seeds=[0,1]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("resnet8-A-seed0", "plain14-A-seed1"):
        assert name in result.stdout
    assert "estimate" in result.stdout
