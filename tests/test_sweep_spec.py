"""Sweep files: YAML -> SweepSpec -> dict -> SweepSpec, expansion (grid x overrides x seeds), names and ids,
every ready file in sweeps/, and bad input that exits 2 through the CLI naming the key path, starting nothing."""
import textwrap
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.specs.expansion import expand, probe_trials
from orchestrator.specs.naming import shortcut_suffix
from orchestrator.specs.reading import apply_sets, load_sweep, sweep_from_dict
from resnet_core import yaml12
from resnet_core.spec import ModelSpec
from resnet_core.specio import SpecError

SWEEPS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))

TABLE6 = """
name: t6
base:
  model: {family: cifar, shortcut: A}
  optim: {iterations: 100, milestones: [50, 75]}
grid:
  model.depth: [20, 56, 110]
  model.residual: [true, false]
overrides:
  - when: {model.depth: 110}
    set: {optim.warmup: {lr: 0.01, until_train_error: 0.8}}
  - when: {model.depth: 110, model.residual: true}
    set: {seeds: [0, 1, 2]}
seeds: [0]
resources: {gpu: 0.25}
report: [table6]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_round_trip_yaml_spec_dict_spec(tmp_path):
    sweep = load_sweep(write(tmp_path, TABLE6))
    again = sweep_from_dict(yaml.safe_load(yaml.safe_dump(sweep.to_dict())))
    assert again == sweep
    assert again.to_dict() == sweep.to_dict()
    assert [t.id for t in expand(again)] == [t.id for t in expand(sweep)]


def test_grid_overrides_and_seeds_expand(tmp_path):
    trials = expand(load_sweep(write(tmp_path, TABLE6)))
    names = [t.name for t in trials]
    assert names == ["resnet20-A-seed0", "plain20-A-seed0", "resnet56-A-seed0", "plain56-A-seed0",
                     "resnet110-A-seed0", "resnet110-A-seed1", "resnet110-A-seed2", "plain110-A-seed0"]
    by_name = {t.name: t.spec for t in trials}
    assert by_name["resnet110-A-seed2"].seed == 2 and by_name["resnet110-A-seed2"].optim.warmup.lr == 0.01
    assert by_name["plain110-A-seed0"].optim.warmup is not None and not by_name["plain110-A-seed0"].model.residual
    assert by_name["resnet56-A-seed0"].optim.warmup is None
    assert by_name["resnet56-A-seed0"].model.n == 9  # depth 56 = 6n+2
    assert len({t.id for t in trials}) == len(trials)


def test_trial_ids_are_stable_and_names_add_what_differs(tmp_path):
    text = """
    name: lr
    base: {model: {depth: 20}, optim: {iterations: 10, milestones: [5]}}
    grid: {optim.lr: [0.1, 0.01]}
    seeds: [3]
    """
    first, second = expand(load_sweep(write(tmp_path, text))), expand(load_sweep(write(tmp_path, text, "b.yaml")))
    assert [t.id for t in first] == [t.id for t in second]
    assert [t.name for t in first] == ["resnet20-A-lr0.1-seed3", "resnet20-A-lr0.01-seed3"]


def test_n_or_depth_and_model_mappings_in_grid(tmp_path):
    sweep = load_sweep(write(tmp_path, """
    name: n
    base: {model: {n: 3}, optim: {iterations: 10, milestones: [5]}}
    grid:
      model.depth: [8, 14]
    """))
    assert [t.spec.model.n for t in expand(sweep)] == [1, 2]
    resnext = load_sweep(write(tmp_path, """
    name: rx
    base: {optim: {iterations: 10, milestones: [5]}}
    grid:
      model: [{family: resnext, depth: 29, cardinality: 8, width: 64}]
    """, "rx.yaml"))
    assert [t.name for t in expand(resnext)] == ["resnext29_8x64d-seed0"]


def test_set_items_change_base_grid_and_sweep_keys(tmp_path):
    path = write(tmp_path, TABLE6)
    sweep = load_sweep(path, ["optim.iterations=10", "base.optim.lr=0.05", "seeds=[4, 5]",
                              "model.depth=20", "grid.model.residual=[true]", "resources.cpu=0.5"])
    trials = expand(sweep)
    assert [t.name for t in trials] == ["resnet20-A-seed4", "resnet20-A-seed5"]
    assert all(t.spec.optim.iterations == 10 and t.spec.optim.lr == 0.05 for t in trials)
    assert sweep.resources.cpu == 0.5
    assert apply_sets({"name": "x"}, ["name=y"]) == {"name": "y"}


def test_random_search_samples_distinct_combinations(tmp_path):
    sweep = load_sweep(write(tmp_path, """
    name: rnd
    base: {optim: {iterations: 10, milestones: [5]}}
    grid: {optim.lr: [0.1, 0.05, 0.01, 0.005], optim.weight_decay: [0.0001, 0.0005]}
    search: {kind: random, num_samples: 3, seed: 7}
    scheduler: asha
    """))
    trials = expand(sweep)
    assert len(trials) == 3 and len({t.id for t in trials}) == 3
    assert [t.id for t in trials] == [t.id for t in expand(sweep)]
    assert sweep.scheduler.kind == "asha"


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_ready_sweep_loads_and_expands(path):
    sweep = load_sweep(path)
    trials = expand(sweep) or probe_trials(sweep)  # a searched sweep's trials come from its sampler
    assert trials and len({t.name for t in trials}) == len(trials)
    assert sweep_from_dict(sweep.to_dict()) == sweep


def test_ready_sweeps_match_the_papers():
    t6 = {t.name: t.spec for t in expand(load_sweep(SWEEPS[0].with_name("table6_cifar10.yaml")))}
    assert sorted({s.model.depth for s in t6.values()}) == [20, 32, 44, 56, 110, 1202]
    assert sum(1 for s in t6.values() if s.model.depth == 110) == 5
    assert t6["resnet110-A-seed0"].optim.warmup.until_train_error == 0.80
    assert all(s.optim.iterations == 64000 and s.optim.milestones == (32000, 48000) for s in t6.values())
    fig6 = expand(load_sweep(SWEEPS[0].with_name("fig6_plain_vs_residual.yaml")))
    assert len(fig6) == 10
    resnext = [t.name for t in expand(load_sweep(SWEEPS[0].with_name("resnext_cifar.yaml")))]
    assert "resnext29_32x4d-seed0" in resnext


BAD = [
    # (file text or None for a missing file, --set items, key path in the message, fragment of expectation)
    ("name: x\nbase: {model: {depth: 21}}\n", [], "base.model.depth", "6n+2"),
    ("name: x\nbase: {model: {shortcut: D}}\n", [], "base.model.shortcut", "'A', 'B', 'C'"),
    ("name: x\nbase: {optim: {lr: -0.1}}\n", [], "base.optim.lr", "positive"),
    ("name: x\nbase: {optim: {lr: 0}}\n", [], "base.optim.lr", "positive"),
    ("name: x\nbase: {optim: {lr: fast}}\n", [], "base.optim.lr", "a number"),
    ("name: x\nbase: {modle: {depth: 20}}\n", [], "base.modle", "one of the keys"),
    ("name: x\ngrid: {model.depth: []}\n", [], "grid.model.depth", "non-empty list"),
    ("name: x\ngrid: {model.depth: [20, 21]}\n", [], "grid.model.depth", "6n+2"),
    ("name: x\ngrid: {model.dept: [20]}\n", [], "grid.model.dept", "key path"),
    ("name: x\noverrides: [{when: {model.depth: 20}, set: {optim.lr: -1}}]\n", [], "overrides[0].set.optim.lr",
     "positive"),
    ("name: x\nseeds: []\n", [], "seeds", "non-empty"),
    ("name: x\nresources: {gpu: -1}\n", [], "resources.gpu", "0 or a positive"),
    ("name: x\nscheduler: {kind: hyperband}\n", [], "scheduler.kind", "'fifo', 'asha'"),
    ("name: x\nbogus: 1\n", [], "bogus", "one of the keys"),
    ("name: 'a b'\n", [], "name", "sweep name"),
    ('name: "x\\n"\n', [], "name", "sweep name"),  # a trailing newline is no part of a name
    ("name: x\noverrides: [{when: {model.depth: 20}, set: {seeds: [[1]]}}]\n", [], "overrides[0].set.seeds",
     "distinct whole numbers"),
    ("name: x\nbase: {model: {depth: 20}\n", [], "<top level>", "valid YAML"),
    ("name: x\n", ["optim.lr=-1"], "base.optim.lr", "positive"),
    ("name: x\n", ["optim.lrr=1"], "optim.lrr", "trial key path"),
    (None, [], "bad.yaml: got 'no such file'", "existing sweep file"),  # the file leads, no `<top level>`
]


@pytest.mark.parametrize("text,sets,key_path,expected", BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
@pytest.mark.parametrize("command", ["plan", "run"])
def test_bad_input_exits_2_naming_the_key_path_and_starts_nothing(tmp_path, monkeypatch, capsys, command, text,
                                                                   sets, key_path, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    args = [command, str(path)] + [x for item in sets for x in ("--set", item)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert key_path in err and expected in err
    assert ("--set" if "lrr" in key_path else str(path) if text is not None else "bad.yaml") in err
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "home").exists()  # no MLflow, no state
    import sys
    if "ray" in sys.modules:  # another test may have imported ray; it must not have been started by this one
        import ray
        assert not ray.is_initialized()


def test_the_shortcut_in_a_name_is_one_rule_for_grid_and_sampled_trials(tmp_path):
    """CIFAR ResNets always name their shortcut, ImageNet ones only where the sweep's trials differ in it, ResNeXt
    never; a sampled trial is named as a grid trial whose sweep agrees on its shortcut."""
    cifar, imagenet = ModelSpec(depth=20), ModelSpec(family="imagenet", depth=18)
    resnext = ModelSpec(family="resnext", depth=29)
    assert [shortcut_suffix(m, False) for m in (cifar, imagenet, resnext)] == ["-A", "", ""]
    assert [shortcut_suffix(m, True) for m in (cifar, imagenet, resnext)] == ["-A", "-B", ""]
    sweep = load_sweep(write(tmp_path, """
    name: sc
    base: {model: {family: imagenet, depth: 18}, data: {dataset: synthetic}, optim: {iterations: 10, milestones: [5]}}
    grid: {model.shortcut: [B, C]}
    """))
    assert [t.name for t in expand(sweep)] == ["resnet18-B-seed0", "resnet18-C-seed0"]


def test_error_names_the_line(tmp_path):
    path = write(tmp_path, "name: x\nbase:\n  optim:\n    lr: -0.1\n")
    with pytest.raises(SpecError) as info:
        load_sweep(path)
    assert f"{path}:4" in str(info.value)
    path = write(tmp_path, "name: x\ngrid:\n  model.depth:\n    - 20\n    - 21\n", "g.yaml")
    with pytest.raises(SpecError) as info:
        load_sweep(path)
    assert f"{path}:3" in str(info.value) and "21" in str(info.value)


def test_values_as_people_write_them_in_files_and_set_alike(tmp_path):
    """YAML 1.2's reading, one parser for sweep files and --set: 1e-4 is a number, on/off/yes/no are words."""
    path = write(tmp_path, """
        name: values
        base:
          model: {family: cifar, depth: 20}
          optim: {lr: 1e-1, weight_decay: 1e-4, iterations: 012, milestones: [6]}
          runtime: {compile: on}
        grid:
          optim.momentum: [9e-1, 0.5]
        """)
    sweep = load_sweep(path)
    trial = expand(sweep)[0].spec
    assert trial.optim.weight_decay == 1e-4 and trial.optim.lr == 0.1 and trial.optim.momentum == 0.9
    assert trial.optim.iterations == 12  # decimal, not YAML 1.1's octal
    assert trial.runtime.compile == "on"
    from_set = expand(load_sweep(path, ["optim.weight_decay=5e-4", "runtime.compile=off"]))[0].spec
    assert from_set.optim.weight_decay == 5e-4 and from_set.runtime.compile == "off"
    # what is kept for `resume` and reports reads back the same
    again = sweep_from_dict(yaml12.load(yaml.safe_dump(sweep.to_dict())))
    assert again == sweep
    with pytest.raises(SpecError, match=r"base.model.residual: got 'yes', expected true or false"):
        load_sweep(write(tmp_path, "name: v\nbase: {model: {residual: yes}}\n", "yes.yaml"))
