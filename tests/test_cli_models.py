"""`resnet-sweep models` through the installed console script, as a user runs it."""
import json

from conftest import resnet_sweep as run


def test_models_json_lists_params_and_macs_beside_the_paper():
    out = run("models", "--json", "resnet110", "resnet50")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["resnet110"]["params"] == 1_727_962 and rows["resnet110"]["paper_params"] == 1.7e6
    assert rows["resnet50"]["macs"] == 3_857_973_248 and rows["resnet50"]["paper_macs"] == 3.8e9
    assert rows["resnet50"]["image_size"] == 224


def test_models_table_and_unknown_name():
    out = run("models", "resnet20", "resnext29_8x64d")
    assert out.returncode == 0 and "resnext29_8x64d" in out.stdout and "0.27M" in out.stdout
    bad = run("models", "resnet21")
    assert bad.returncode == 2 and "resnet21" in bad.stderr and "resnet20" in bad.stderr
