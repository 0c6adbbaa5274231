"""`resnet-sweep train`: --set pairs build the trial, --json ends stdout with the final metrics, bad input exits 2."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main

# A first trial as a newcomer types it: ResNet-20, synthetic data (1024 images, 8 batches of 128 an epoch),
# 20 iterations; about 10 s on 2 CPU cores. `--set` values are YAML, so numbers arrive as numbers.
COMMAND = ["train", "--set", "model.depth=20", "--set", "data.dataset=synthetic", "--set", "optim.iterations=20",
           "--json"]


def console_script() -> list[str]:
    script = Path(sys.executable).with_name("resnet-sweep")
    return [str(script)] if script.exists() else [shutil.which("resnet-sweep") or "resnet-sweep"]


@pytest.mark.slow
def test_console_script_trains_and_ends_with_json(tmp_path):
    done = subprocess.run(console_script() + COMMAND + ["--checkpoint-dir", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    final = json.loads(lines[-1])
    assert final["done"] is True and final["iteration"] == 20 and final["epochs"] == 3
    assert len(final["layer_response_std"]) == 19
    assert final["train_loss"] < 2.0 and 0 <= final["test_error"] <= 1
    assert sum(line.startswith("epoch") for line in lines) == 3
    assert (tmp_path / "checkpoint.pt").is_file()


@pytest.mark.parametrize("item, key", [("model.dept=20", "model.dept"), ("optim.lr=fast", "optim.lr"),
                                       ("model.depth=21", "model.depth"), ("optim", "optim")])
def test_bad_settings_exit_2_naming_the_key(item, key, capsys):
    assert main(["train", "--set", item]) == 2
    err = capsys.readouterr().err
    assert key in err and "--set" in err


def test_missing_dataset_exits_2_with_the_remedy(tmp_path, capsys):
    assert main(["train", "--set", f"data.root={tmp_path}", "--set", "optim.iterations=1"]) == 2
    err = capsys.readouterr().err
    assert "cifar-10-batches-py" in err and "data.download: true" in err


def test_divergence_exits_1_and_says_where(capsys):
    code = main(["train", "--set", "model.depth=8", "--set", "data.dataset=synthetic", "--set", "data.image_size=8",
                 "--set", "data.synthetic_train=32", "--set", "optim.batch_size=16", "--set", "optim.lr=1e30",
                 "--set", "optim.iterations=6", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and "diverged at iteration" in err
    assert json.loads(out.strip().splitlines()[-1])["diverged"] is True
