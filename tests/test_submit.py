"""`resnet-sweep submit` refuses bad input before contacting any cluster (the cluster itself: test_cluster.py)."""
from pathlib import Path

from conftest import resnet_sweep

SMOKE = str(Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml")


def test_bad_sweep_is_refused_before_submitting(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase: {model: {depth: 21}}\n")
    out = resnet_sweep("submit", str(bad), "--address", "http://127.0.0.1:9", "--tracking-uri", "http://127.0.0.1:9")
    assert out.returncode == 2 and "base.model.depth" in out.stderr and "6n+2" in out.stderr


def test_address_must_be_the_jobs_url():
    out = resnet_sweep("submit", SMOKE, "--address", "127.0.0.1:6379", "--tracking-uri", "http://x")
    assert out.returncode == 2 and "http://HEAD:8265" in out.stderr


def test_unreachable_cluster_is_a_runtime_failure_with_nothing_recorded(tmp_path):
    out = resnet_sweep("submit", SMOKE, "--address", "http://127.0.0.1:9", "--tracking-uri",
                       "http://127.0.0.1:5000", env={"PATH": "/usr/bin:/bin", "RESNET_SWEEPS_HOME": str(tmp_path)})
    assert out.returncode == 1 and "cannot reach Ray Jobs at http://127.0.0.1:9" in out.stderr
    assert not (tmp_path / "submissions").exists()
