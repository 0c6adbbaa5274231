"""`resnet-sweep doctor` on this CPU-only machine: every check that applies runs (a real local Ray, a SQLite
store's folder, the storage, a sweep's data), the GPU stages say they need a GPU, exit 0 and `--json`; a check
that fails is named and the others still run."""
import json
from pathlib import Path

import pytest

from orchestrator.running.doctor import FAILED, OK, SKIPPED, storage, sweep_data
from tests.conftest import resnet_sweep, tiny_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_doctor_on_a_cpu_only_machine_runs_every_check_that_applies(tmp_path):
    home = tmp_path / "home"
    done = resnet_sweep("doctor", str(ROOT / "sweeps" / "smoke.yaml"), "--gpu", "--json", "--tracking-uri",
                        f"sqlite:///{tmp_path}/mlruns.db", "--storage", str(tmp_path / "results"), cwd=tmp_path,
                        env={**__import__("os").environ, "RESNET_SWEEPS_HOME": str(home)})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] and list(checks) == ["stack", "gpu", "ray", "mlflow", "storage", "data", "gpu stages"]
    assert checks["stack"]["status"] == OK and checks["stack"]["facts"]["torch"].startswith("2.")
    assert checks["gpu"]["status"] == SKIPPED and "no CUDA GPU" in checks["gpu"]["detail"]
    assert checks["ray"]["status"] == OK and checks["ray"]["facts"]["cpu"] >= 1 and checks["ray"]["facts"]["gpu"] == 0
    assert checks["mlflow"]["status"] == OK and checks["storage"]["status"] == OK
    assert checks["data"]["status"] == OK and "synthetic" in checks["data"]["detail"]
    assert checks["gpu stages"]["status"] == SKIPPED and "need a CUDA GPU" in checks["gpu stages"]["detail"]
    assert not (home / "profiles").exists()  # nothing measured, nothing written
    assert not list(tmp_path.glob("mlruns.db"))  # a check, not a store created


def test_a_failed_check_says_what_and_where(tmp_path):
    sweep = tmp_path / "cifar.yaml"
    sweep.write_text(tiny_sweep("cifar") + f"grid:\n  data.dataset: [cifar10]\n  data.root: [{tmp_path / 'none'}]\n")
    data = sweep_data(str(sweep), (), joined=False)
    assert data.status == FAILED and str(sweep) in data.detail and "grid.data.root" in data.detail
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    stored = storage(str(blocked / "results"), joined=False)
    assert stored.status == FAILED and str(blocked / "results") in stored.detail
