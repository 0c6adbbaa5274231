"""bench/gpu_check.py, the one command for a GPU machine, run in its --tiny CPU mode so it never rots: torch only
(Ray, MLflow and YAML unimportable), every stage recorded, a failing or hanging stage does not stop the next."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_EXTRAS = ("import sys, runpy\n"
                  "for name in ('ray', 'mlflow', 'yaml'): sys.modules[name] = None  # not on the GPU machine\n"
                  "sys.argv = ['bench/gpu_check.py'] + sys.argv[1:]\n"
                  "runpy.run_path('bench/gpu_check.py', run_name='__main__')\n")


@pytest.mark.slow
def test_tiny_check_runs_every_stage_with_torch_alone(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, "--tiny", "--out", str(tmp_path)], cwd=ROOT,
                            env={"PYTHONPATH": ".", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert list(stages) == ["environment", "trial", "parity", "throughput", "resnet1202", "packing", "packing_mps"]
    assert all(s["status"] == "ok" for s in stages.values()), stages
    trial = stages["trial"]["results"]
    assert [e["epoch"] for e in trial["epochs"]] == [1, 2, 3] and trial["resume"]["bitwise"]
    assert stages["parity"]["results"]["step_graph"]["max_weight_diff"] <= 1e-6
    row = stages["throughput"]["results"]["images_per_sec"]["resnet8"]
    assert all(row[k] > 0 for k in ("conventional", "eager", "compiled", "step_graph"))
    assert stages["packing"]["results"]["processes"]["2"]["total_images_per_sec"] > 0
    assert "| trial | ok |" in (tmp_path / "gpu_check.md").read_text()
    assert "7/7 stages ok" in result.stdout and sorted(p.name for p in tmp_path.iterdir()) == [
        "gpu_check.json", "gpu_check.md"]


def test_a_failing_and_a_hanging_stage_are_recorded_and_the_next_stage_runs(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import gpu_check

    def broken(cfg, rec):
        rec.put("before", 1)
        raise ValueError("broken on purpose")

    def hangs(cfg, rec):
        rec.put("measured", 2)
        time.sleep(600)  # the injected hang; the stage's 2 s limit ends it

    monkeypatch.setitem(gpu_check.STAGE_FUNCTIONS, "environment", broken)
    monkeypatch.setitem(gpu_check.STAGE_FUNCTIONS, "trial", hangs)
    monkeypatch.setattr(gpu_check, "STAGES", [("environment", 30), ("trial", 2), ("packing_mps", 30)])
    assert gpu_check.main(["--tiny", "--out", str(tmp_path), "--stages", "environment,trial,packing_mps"]) == 1
    stages = {s["name"]: s for s in json.loads((tmp_path / "gpu_check.json").read_text())["stages"]}
    assert stages["environment"]["status"] == "failed" and "broken on purpose" in stages["environment"]["error"]
    assert stages["environment"]["results"]["before"] == 1
    assert stages["trial"]["status"] == "timeout" and stages["trial"]["results"] == {"measured": 2}
    assert stages["packing_mps"]["status"] == "ok"

