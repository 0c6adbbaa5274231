"""The doctor's GPU stages (resnet_core/gpu_stages.py), the one command for a GPU machine, run in their --tiny CPU
mode so they never rot: torch only (Ray, MLflow and YAML unimportable), every stage recorded, a failing or hanging
stage does not stop the next, and the machine profile they write is one `plan` reads as a tiny CPU profile."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_EXTRAS = ("import sys, runpy\n"
                  "for name in ('ray', 'mlflow', 'yaml'): sys.modules[name] = None  # not on the GPU machine\n"
                  "sys.argv = ['resnet_core.gpu_stages'] + sys.argv[1:]\n"
                  "runpy.run_module('resnet_core.gpu_stages', run_name='__main__')\n")


@pytest.mark.slow
def test_tiny_check_runs_every_stage_with_torch_alone_and_plan_labels_its_profile(tmp_path, monkeypatch):
    home, out = tmp_path / "home", tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, "--tiny", "--out", str(out)], cwd=ROOT,
                            env={"PYTHONPATH": ".", "PATH": "/usr/bin:/bin", "RESNET_SWEEPS_HOME": str(home)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "gpu_check.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert list(stages) == ["environment", "trial", "parity", "throughput", "resnet1202", "packing", "packing_mps"]
    assert all(s["status"] == "ok" for s in stages.values()), stages
    trial = stages["trial"]["results"]
    assert [e["epoch"] for e in trial["epochs"]] == [1, 2, 3] and trial["resume"]["bitwise"]
    assert trial["rung"] == "eager fp32"  # the CPU default, and no fallback (it would fail the stage)
    assert stages["parity"]["results"]["step_graph"]["max_weight_diff"] <= 1e-6
    row = stages["throughput"]["results"]["images_per_sec"]["resnet8"]
    assert all(row[k] > 0 for k in ("conventional", "eager", "compiled", "step_graph"))  # bench/: a checkout
    assert stages["packing"]["results"]["processes"]["2"]["total_images_per_sec"] > 0
    assert "| trial | ok |" in (out / "gpu_check.md").read_text()
    assert "7/7 stages ok" in result.stdout and sorted(p.name for p in out.iterdir()) == [
        "gpu_check.json", "gpu_check.md"]

    (written,) = (home / "profiles").iterdir()
    profile = json.loads(written.read_text())
    assert profile["kind"] == "tiny-cpu" and profile["gpu"] == "cpu" and profile["parity"] == {
        "compiled": True, "step_graph": True}
    assert set(profile["images_per_sec"]["resnet8"]) == {"conventional", "eager", "compiled", "step_graph"}
    assert profile["trials_per_gpu"] in (1, 2) and profile["peak_memory_gib"] == {}  # no CUDA: no peaks
    from orchestrator.specs.plan import throughput_for
    from orchestrator.specs.reading import load_sweep

    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(home))
    planned = throughput_for(load_sweep(ROOT / "sweeps" / "table6_cifar10.yaml"), "gpu")
    assert not planned.measured and planned.images_per_sec == 50_000  # the assumed figure, not the CPU's
    assert "tiny CPU profile" in planned.source and str(written) in planned.source


def test_a_failing_and_a_hanging_stage_are_recorded_and_the_next_stage_runs(tmp_path, monkeypatch):
    from resnet_core import gpu_stages

    def broken(cfg, rec):
        rec.put("before", 1)
        raise ValueError("broken on purpose")

    def hangs(cfg, rec):
        rec.put("measured", 2)
        time.sleep(600)  # the injected hang; the stage's 2 s limit ends it

    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(gpu_stages.STAGE_FUNCTIONS, "environment", broken)
    monkeypatch.setitem(gpu_stages.STAGE_FUNCTIONS, "trial", hangs)
    monkeypatch.setattr(gpu_stages, "STAGES", [("environment", 30), ("trial", 2), ("packing_mps", 30)])
    code, _ = gpu_stages.main(["--tiny", "--out", str(tmp_path), "--stages", "environment,trial,packing_mps"])
    assert code == 1
    stages = {s["name"]: s for s in json.loads((tmp_path / "gpu_check.json").read_text())["stages"]}
    assert stages["environment"]["status"] == "failed" and "broken on purpose" in stages["environment"]["error"]
    assert stages["environment"]["results"]["before"] == 1
    assert stages["trial"]["status"] == "timeout" and stages["trial"]["results"] == {"measured": 2}
    assert stages["packing_mps"]["status"] == "ok"
