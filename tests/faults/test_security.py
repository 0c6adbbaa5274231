"""Security: YAML is loaded safely, checkpoints weights-only, names cannot leave their directories,
the servers the project starts listen on 127.0.0.1 only, and a password in a tracking URI never leaves this
machine through a submitted job. (Credentials on the terminal: test_secrets.py; names in sweep files:
test_bad_input.py.)

Each attack is real: the YAML tags and the pickle would run code (touch a marker file) if they were loaded
unsafely, and the test shows that they do when they are, so a test here cannot pass by accident.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from orchestrator.cli import main
from resnet_core.checkpoint import FILENAME, load_checkpoint
from resnet_core.specio import SpecError
from tests.conftest import tiny_sweep

ROOT = Path(__file__).resolve().parents[2]
SWEEP = tiny_sweep("secure", lr=0.1) + "seeds: [0]\n"


# ---- YAML: safe loading only ----

def _tags(marker: Path) -> dict[str, str]:
    """YAML documents that construct Python objects or call functions under yaml.unsafe_load (the first one
    creates `marker`)."""
    return {"object-apply": f"!!python/object/apply:os.mkdir ['{marker}']",
            "object-new": f"!!python/object/new:pathlib.Path ['{marker}']",
            "name": "!!python/name:os.system"}


def test_the_yaml_tags_would_run_code_if_loaded_unsafely(tmp_path):
    marker = tmp_path / "pwned"
    yaml.unsafe_load(_tags(marker)["object-apply"])
    assert marker.exists()  # the attack is real: what follows must refuse it


@pytest.mark.parametrize("tag", ["object-apply", "object-new", "name"])
@pytest.mark.parametrize("where", ["value", "set"])
def test_python_yaml_tags_are_refused_with_exit_2(tag, where, tmp_path, capsys):
    marker = tmp_path / "pwned"
    document = _tags(marker)[tag]
    path = tmp_path / "sweep.yaml"
    if where == "value":
        path.write_text(SWEEP.replace("name: secure", f"name: secure\ndescription: {document}"))
        rc = main(["plan", str(path)])
    else:
        path.write_text(SWEEP)
        rc = main(["plan", str(path), "--set", f"description={document}"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert ("sweep.yaml" if where == "value" else "--set") in err and "Traceback" not in err
    assert not marker.exists()


# ---- checkpoints: weights-only loading ----

class _Payload:
    """Unpickling this calls Path.touch(marker): code from the file, the thing weights-only loading prevents."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def _malicious_checkpoint(directory: Path, marker: Path) -> Path:
    directory.mkdir(parents=True)
    torch.save({"model": {"w": torch.zeros(2)}, "iteration": 8, "extra": _Payload(marker)}, directory / FILENAME)
    return directory


def test_the_pickle_would_run_code_if_loaded_unsafely(tmp_path):
    marker = tmp_path / "pwned"
    directory = _malicious_checkpoint(tmp_path / "ckpt", marker)
    torch.load(directory / FILENAME, weights_only=False)
    assert marker.exists()


def test_checkpoint_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    directory = _malicious_checkpoint(tmp_path / "ckpt", marker)
    with pytest.raises(SpecError) as caught:
        load_checkpoint(directory)
    assert caught.value.key_path == "resume_from" and str(directory / FILENAME) in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize("how", ["resume", "transfer"])
def test_cli_refuses_a_checkpoint_with_code(how, tmp_path, capsys):
    """`resnet-sweep train --resume DIR` and `--set transfer.checkpoint=DIR`: exit 2 before any training."""
    marker = tmp_path / "pwned"
    directory = _malicious_checkpoint(tmp_path / "ckpt", marker)
    sets = ["--set", "model.depth=8", "--set", "data.dataset=synthetic", "--set", "data.synthetic_train=32",
            "--set", "data.synthetic_test=16", "--set", "optim.iterations=2", "--set", "optim.batch_size=16",
            "--set", "runtime.device=cpu"]
    extra = ["--resume", str(directory)] if how == "resume" else ["--set", f"transfer.checkpoint={directory}"]
    rc = main(["train", *sets, *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert ("resume_from" if how == "resume" else "transfer.checkpoint") in err
    assert not marker.exists()


# ---- names cannot leave their directories ----

@pytest.mark.parametrize("argv", [["status", "../../etc"], ["resume", "../outside"], ["report", "../../tmp/x"],
                                  ["report", "x' OR '1'='1"], ["status", "/etc/passwd"]])
def test_name_arguments_cannot_be_paths(argv, tmp_path, monkeypatch, capsys):
    """NAME of status/resume/report names a state directory, ./reports/NAME and an MLflow filter: exit 2 for
    anything but a sweep name, before anything is read or created."""
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "expected a sweep name" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_trial_names_from_string_grid_values_have_no_path_separators(tmp_path):
    """A grid over a path-valued key (data.root) puts the value in the trial name, which names the trial's
    directory (tune_runner.trial_dirname): it must not contain '/'."""
    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import load_sweep

    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP + "grid:\n  data.root: ['../../../../outside', '/etc/x']\n")
    names = [trial.name for trial in expand(load_sweep(path))]
    assert len(names) == 2 and not any("/" in name or name in (".", "..") for name in names), names


# ---- servers listen on 127.0.0.1 only ----

def test_mlflow_ui_command_relies_on_a_loopback_default(tmp_path):
    """README and `run`'s summary print `mlflow ui --backend-store-uri ...` without --host: MLflow's default
    host (MLFLOW_HOST unset) must be 127.0.0.1, since the UI has no authentication."""
    from mlflow.cli import cli

    from orchestrator.tracking.uris import ui_command

    command = ui_command(f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert command.startswith("mlflow ui ") and "--host" not in command
    assert re.search(r"mlflow ui --backend-store-uri \S+`", (ROOT / "README.md").read_text())  # no --host
    host = next(p for p in cli.get_command(None, "ui").params if p.name == "host")
    assert host.default == "127.0.0.1" and "MLFLOW_HOST" not in os.environ
    # (Started for real, `mlflow ui` takes 50-60 s to listen on this loaded 2-core machine: too slow for the
    # suite; tests/loopback_cluster.py starts `mlflow server --host 127.0.0.1` for real.)


def test_deploy_and_test_cluster_bind_dashboard_and_mlflow_to_loopback():
    """The cluster config and the loopback test cluster start the dashboard and MLflow on 127.0.0.1, and no
    command the project documents binds anything to all interfaces."""
    for path in (ROOT / "deploy" / "aws-gpu.yaml", ROOT / "tests" / "loopback_cluster.py"):
        text = path.read_text()
        assert re.search(r"--dashboard-host[= ]['\"]?127\.0\.0\.1", text), path
        assert re.search(r"mlflow['\"]?,? ['\"]?server['\"]?.*--host['\"]?,? ['\"]?127\.0\.0\.1", text), path
    for path in [ROOT / "README.md", ROOT / "deploy" / "aws-gpu.yaml", *sorted((ROOT / "sweeps").glob("*"))]:
        for line in path.read_text().splitlines():
            if "0.0.0.0" in line:
                assert "never" in line, f"{path}: {line}"  # only the README's warning mentions it


LOCAL_RAY = """
import json
from orchestrator.running.resources import init_ray
import ray
init_ray(None, num_cpus=1)
info = ray._private.worker.global_worker.node.address_info
print(json.dumps({"webui_url": info.get("webui_url")}))
ray.shutdown()
"""


def test_local_ray_starts_no_dashboard():
    """`resnet-sweep run` without --address starts a local Ray with no dashboard (it accepts jobs, i.e. runs
    code, from anyone who reaches it). Ray's own gRPC ports (GCS, raylet) listen on all interfaces in Ray
    2.60 with no setting to change it; Ray's token authentication (on by default) guards them."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", LOCAL_RAY], capture_output=True, text=True, timeout=180, cwd=ROOT,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert not json.loads(done.stdout.strip().splitlines()[-1])["webui_url"]


# ---- a password in a tracking URI stays on this machine ----

def test_submit_refuses_a_tracking_uri_with_a_password(tmp_path, monkeypatch, capsys):
    """The URI would go into the Ray job's entrypoint, readable by anyone who lists the cluster's jobs."""
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    rc = main(["submit", str(path), "--address", "http://127.0.0.1:9", "--tracking-uri",
               "https://alice:s3cr3t-t0ken@mlflow.example.org"])
    err = capsys.readouterr().err
    assert rc == 2 and "s3cr3t" not in err and "alice:***@mlflow.example.org" in err
    assert "MLFLOW_TRACKING_PASSWORD" in err and not (tmp_path / "home").exists()
