"""Bad input (issue 7): malformed sweep files and `--set` values exit 2 naming the key path, never a traceback;
property-based tests: the spec loaders raise nothing but SpecError on arbitrary YAML-shaped data.

Most cases run `orchestrator.cli.main` in-process (the console script's own code path) to keep the table fast;
a few run the installed `resnet-sweep` in a subprocess, `run` included, to show nothing is created on the way out.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import resnet_sweep
from orchestrator.cli import main
from orchestrator.specs.sweep import load_sweep, sweep_from_dict
from resnet_core.spec import TrialSpec
from resnet_core.specio import SpecError

SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.yaml"
SMOKE_DATA = yaml.safe_load(SMOKE.read_text())

# A small valid sweep the cases below break one piece at a time (plan builds it in well under a second).
VALID = """\
name: badinput
base:
  model: {family: cifar, depth: 8}
  data: {dataset: synthetic, synthetic_train: 64, synthetic_test: 32}
  optim: {lr: 0.1, batch_size: 32, milestones: [4, 6], iterations: 8}
  runtime: {device: cpu}
grid:
  model.depth: [8, 14]
seeds: [0]
"""


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes | None  # the sweep file's content; None: use `path` as given
    expect: str  # must appear in stderr: the key path (or the file)
    sets: tuple[str, ...] = ()
    path: str | None = None  # relative to tmp_path when text is None


def _with(**top: str) -> str:
    """VALID with top-level keys replaced by the given YAML snippets (key: snippet)."""
    data = yaml.safe_load(VALID)
    for key, snippet in top.items():
        data[key] = yaml.safe_load(snippet)
    return yaml.safe_dump(data, sort_keys=False)


def _base(section: str, **values: object) -> str:
    data = yaml.safe_load(VALID)
    data["base"].setdefault(section, {}).update(values)
    return yaml.safe_dump(data, sort_keys=False)


HUGE_GRID = VALID.split("grid:")[0] + "grid:\n" + "".join(
    f"  {key}: [{', '.join(str(v) for v in values)}]\n" for key, values in [
        ("optim.lr", [round(0.01 * (i + 1), 2) for i in range(10)]),
        ("optim.momentum", [round(0.05 * i, 2) for i in range(10)]),
        ("optim.weight_decay", [round(1e-4 * (i + 1), 5) for i in range(10)]),
        ("optim.lr_decay", [round(0.05 * (i + 1), 2) for i in range(10)]),
        ("optim.batch_size", [8 * (i + 1) for i in range(10)]),
        ("data.synthetic_train", [64 * (i + 1) for i in range(10)]),
        ("data.synthetic_test", [32 * (i + 1) for i in range(10)]),
        ("runtime.eval_batch_size", [100 * (i + 1) for i in range(10)]),
        ("runtime.checkpoint_every", list(range(10))),
        ("data.workers", list(range(10))),
    ]) + "seeds: [0]\n"

CASES = [
    # syntax
    Case("yaml-syntax", VALID + "grid: {model.depth: [8, 14\n", "badinput.yaml"),
    Case("yaml-tabs", VALID.replace("  model:", "\tmodel:"), "badinput.yaml:"),
    Case("yaml-bad-indent", VALID.replace("  optim:", "    optim:"), "badinput.yaml"),
    Case("duplicate-top-key", VALID + "name: other\n", "name"),
    Case("duplicate-nested-key", VALID.replace("depth: 8}", "depth: 8, depth: 14}"), "base.model.depth"),
    Case("binary-garbage", bytes(range(256)) * 4, "badinput.yaml"),
    Case("top-level-list", "- name: x\n- base: {}\n", "<top level>"),
    Case("top-level-scalar", "just a string\n", "<top level>"),
    # unknown keys at each level
    Case("unknown-top-key", VALID + "grdi: {}\n", "grdi"),
    Case("unknown-section", _with(base="{modle: {depth: 20}}"), "base.modle"),
    Case("unknown-model-key", _base("model", dpeth=20), "base.model.dpeth"),
    Case("unknown-warmup-key", _base("optim", warmup={"lr": 0.01, "until": 0.8}), "base.optim.warmup.until"),
    Case("unknown-grid-key", _with(grid="{model.dpeth: [20]}"), "grid.model.dpeth"),
    Case("unknown-scheduler-key", _with(scheduler="{kind: asha, grace: 2}"), "scheduler.grace"),
    Case("unknown-override-key", _with(overrides="[{when: {model.depth: 8}, set: {optim.learning_rate: 1}}]"),
         "overrides[0].set.optim.learning_rate"),
    # wrong types
    Case("lr-string", _base("optim", lr="fast"), "base.optim.lr"),
    Case("depth-float", _base("model", depth=20.5), "base.model.depth"),
    Case("residual-string", _base("model", residual="yes"), "base.model.residual"),
    Case("milestones-scalar", _base("optim", milestones=32000), "base.optim.milestones"),
    Case("base-list", _with(base="[1, 2]"), "base"),
    Case("seeds-string", _with(seeds="'0,1'"), "seeds"),
    Case("grid-scalar", _with(grid="{model.depth: 20}"), "grid.model.depth"),
    Case("grid-not-mapping", _with(grid="[model.depth, 20]"), "grid"),
    # out of range
    Case("negative-lr", _base("optim", lr=-0.1), "base.optim.lr"),
    Case("zero-batch", _base("optim", batch_size=0), "base.optim.batch_size"),
    Case("momentum-1.5", _base("optim", momentum=1.5), "base.optim.momentum"),
    Case("negative-val-split", _base("data", val_split=-5), "base.data.val_split"),
    Case("negative-seed", _with(seeds="[-1]"), "seeds"),
    Case("zero-cpu", _with(resources="{cpu: 0}"), "resources.cpu"),
    Case("lr-nan", VALID.replace("lr: 0.1", "lr: .nan"), "base.optim.lr"),
    Case("set-momentum-inf", VALID, "base.optim.momentum", sets=("optim.momentum=.inf",)),
    Case("max-concurrent-zero", _with(max_concurrent="0"), "max_concurrent"),
    # impossible architectures
    Case("cifar-depth-21", _base("model", depth=21), "base.model.depth"),
    Case("shortcut-D", _base("model", shortcut="D"), "base.model.shortcut"),
    Case("resnext-cardinality-0", _base("model", family="resnext", depth=29, cardinality=0),
         "base.model.cardinality"),
    Case("imagenet-depth-42", _base("model", family="imagenet", depth=42), "base.model.depth"),
    Case("cifar-depth-6000002", _base("model", depth=6_000_002), "base.model.depth"),  # hours of building
    Case("cifar-width-128", _base("model", width=128), "base.model.width"),
    Case("resnext-10^8-groups", _base("model", family="resnext", depth=29, cardinality=10**8), "base.model.cardinality"),
    Case("synthetic-image-10^13", _base("data", image_size=10**13), "base.data.image_size"),
    Case("synthetic-10^8-classes", _base("data", num_classes=10**8), "base.data.num_classes"),
    Case("synthetic-10^9-images", _base("data", synthetic_train=10**9), "base.data.synthetic_train"),
    Case("batch-1e20", VALID.replace("batch_size: 32", "batch_size: 1e20"), "base.optim.batch_size"),
    Case("set-batch-1e20", VALID, "base.optim.batch_size", sets=("optim.batch_size=1e20",)),
    Case("set-eval-batch-1e20", VALID, "base.runtime.eval_batch_size", sets=("runtime.eval_batch_size=1e20",)),
    Case("iterations-10^12", _base("optim", iterations=10**12), "base.optim.iterations"),
    Case("grid-batch-2^21", _with(grid="{optim.batch_size: [32, 2097152]}"), "grid.optim.batch_size"),
    Case("batch-over-data", _with(grid="{optim.batch_size: [32, 128]}"),  # 64 synthetic images
         "grid.optim.batch_size: got 128, expected at most the 64 training images in trial resnet8-A-batch_size128-seed0"),
    Case("grid-depth-21", _with(grid="{model.depth: [8, 21]}"), "grid.model.depth"),
    # names
    Case("name-traversal", _with(name="../../etc"), "name"),
    Case("name-slash", _with(name="a/b"), "name"),
    Case("name-missing", VALID.replace("name: badinput\n", ""), "name"),
    Case("experiment-empty", _with(experiment="'  '"), "experiment"),
    # grids
    Case("grid-empty-list", _with(grid="{model.depth: []}"), "grid.model.depth"),
    Case("grid-huge", HUGE_GRID, "grid"),
    Case("random-more-than-grid", _with(search="{kind: random, num_samples: 5}"), "search.num_samples"),
    # reports
    Case("report-unknown", _with(report="[table6, fig99]"), "report[1]"),
    Case("report-number", _with(report="[6]"), "report"),
    # files
    Case("missing-file", None, "nonexistent.yaml: got 'no such file'", path="nonexistent.yaml"),
    Case("directory", None, "adir: got 'a directory'", path="adir"),
    Case("not-utf8", b"name: \xff\xfe\n", "badinput.yaml: got 'bytes that are not UTF-8"),
    # --set values
    Case("set-no-equals", VALID, "optim.lr", sets=("optim.lr",)),
    Case("set-unknown-key", VALID, "optim.learning_rate", sets=("optim.learning_rate=0.1",)),
    Case("set-bad-yaml", VALID, "optim.lr", sets=("optim.lr=[0.1",)),
    Case("set-negative-lr", VALID, "base.optim.lr", sets=("optim.lr=-1",)),
    Case("set-zero-batch", VALID, "base.optim.batch_size", sets=("base.optim.batch_size=0",)),
    Case("set-grid-depth", VALID, "grid.model.depth", sets=("model.depth=[8, 42]",)),
    Case("set-seeds-string", VALID, "seeds", sets=("seeds=abc",)),
    Case("set-name-traversal", VALID, "name", sets=("name=../x",)),
    Case("set-into-value", VALID, "optim.lr.x", sets=("optim.lr.x=1",)),
]


def _materialise(case: Case, tmp_path: Path) -> str:
    if case.text is None:
        (tmp_path / "adir").mkdir(exist_ok=True)
        return str(tmp_path / case.path)
    path = tmp_path / "badinput.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text)
    return str(path)


def _set_args(case: Case) -> list[str]:
    return [arg for item in case.sets for arg in ("--set", item)]


def test_whole_file_errors_name_the_file_not_a_key(tmp_path, capsys):
    """A missing file or a directory is wrong as a whole: the message leads with the file, no `<top level>`."""
    for name in ("nonexistent.yaml", "adir"):
        (tmp_path / "adir").mkdir(exist_ok=True)
        assert main(["plan", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"resnet-sweep plan: error: {tmp_path / name}: got ") and "<top level>" not in err


def test_table_is_big_enough():
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


def test_valid_sweep_plans(tmp_path, capsys):
    """The cases break a sweep that is itself fine: without the break, plan exits 0."""
    path = tmp_path / "badinput.yaml"
    path.write_text(VALID)
    assert main(["plan", str(path), "--json"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_refuses_bad_input(case, tmp_path, capsys):
    path = _materialise(case, tmp_path)
    rc = main(["plan", path, *_set_args(case)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert case.expect in err, err
    assert "Traceback" not in err
    assert err.startswith("resnet-sweep plan: error: ")


SUBPROCESS_CASES = ["yaml-tabs", "name-traversal", "grid-huge", "set-negative-lr", "missing-file", "batch-over-data"]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_console_script_run_refuses_before_creating_anything(case_id, tmp_path):
    """The installed CLI, `run` included: exit 2 with the key path, and no MLflow store or state written."""
    case = next(c for c in CASES if c.id == case_id)
    path = _materialise(case, tmp_path)
    home = tmp_path / "home"
    env = {**os.environ, "RESNET_SWEEPS_HOME": str(home)}
    before = set(os.listdir(tmp_path))
    proc = resnet_sweep("run", path, *_set_args(case), cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert case.expect in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlruns.db").exists()
    assert not home.exists()
    assert set(os.listdir(tmp_path)) == before


# ---- property-based: nothing but SpecError escapes the loaders ----

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
_keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["name", "base", "grid", "seeds", "model", "optim", "lr", "depth", "family", "model.depth", "optim.lr",
     "overrides", "when", "set", "search", "scheduler", "resources", "report", "kind", "num_samples"]),
    st.integers(-3, 3), st.booleans(), st.none())
_yamlish = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_keys, inner, max_size=4)), max_leaves=20)
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _paths(data, prefix=()):
    """Every (path of keys) inside nested dicts/lists, the container paths included."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, prefix + (i,))


_SMOKE_PATHS = [p for p in _paths(SMOKE_DATA) if p]


def _replace(data, path, value):
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replace(copy[path[0]], path[1:], value)
    return copy


def _only_spec_errors(call):
    try:
        call()
    except SpecError:
        pass


@_SETTINGS
@given(_yamlish)
def test_sweep_from_dict_arbitrary_data(data):
    if not isinstance(data, dict):
        data = {"name": "x", "base": data}
    _only_spec_errors(lambda: sweep_from_dict(data))


@_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(_SMOKE_PATHS), _yamlish), min_size=1, max_size=3))
def test_sweep_from_dict_mutated_smoke(mutations):
    data = SMOKE_DATA
    for path, value in mutations:
        try:
            data = _replace(data, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed this path's parent
            continue
    _only_spec_errors(lambda: sweep_from_dict(data))


@_SETTINGS
@given(_yamlish)
def test_trial_spec_from_dict_arbitrary_data(data):
    _only_spec_errors(lambda: TrialSpec.from_dict(data))


_SECTIONS = {"model": ["family", "depth", "n", "shortcut", "residual", "preact", "cardinality", "width",
                       "stride_on"],
             "data": ["dataset", "val_split", "train_limit", "image_size", "num_classes", "workers"],
             "optim": ["lr", "momentum", "batch_size", "milestones", "iterations", "warmup", "weight_decay"],
             "runtime": ["device", "checkpoint_every", "eval_batch_size"], "transfer": ["checkpoint", "train"]}


@_SETTINGS
@given(st.dictionaries(st.sampled_from(list(_SECTIONS)), st.dictionaries(
    st.sampled_from(sorted({k for ks in _SECTIONS.values() for k in ks})), _yamlish, max_size=4), max_size=5))
def test_trial_spec_from_dict_known_keys_random_values(data):
    """Right keys, random values: reaches every field's checks and __post_init__."""
    _only_spec_errors(lambda: TrialSpec.from_dict(data))


_TRIAL_KEY_PATHS = sorted(f"{section}.{key}" for section, keys in _SECTIONS.items() for key in keys)
_sweep_values = st.one_of(_yamlish, st.dictionaries(st.sampled_from(_TRIAL_KEY_PATHS), st.lists(_yamlish, max_size=3),
                                                    max_size=3))


@_SETTINGS
@given(st.dictionaries(st.sampled_from(["experiment", "description", "grid", "overrides", "seeds", "resources",
                                        "scheduler", "search", "max_concurrent", "max_failures", "report"]),
                       _sweep_values, max_size=4),
       st.dictionaries(st.sampled_from(_TRIAL_KEY_PATHS), _yamlish, max_size=3))
def test_sweep_from_dict_known_keys_random_values(top, base):
    """A valid name and known sweep keys with random values (grids and overrides keyed by real trial paths)."""
    base_dict: dict = {}
    for path, value in base.items():
        section, key = path.split(".")
        base_dict.setdefault(section, {})[key] = value
    _only_spec_errors(lambda: sweep_from_dict({"name": "x", "base": base_dict, **top}))


@_SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_load_sweep_arbitrary_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("hyp") / "sweep.yaml"
    path.write_text(text)
    _only_spec_errors(lambda: load_sweep(path))


@_SETTINGS
@given(st.lists(st.text(max_size=30), max_size=3))
def test_load_sweep_arbitrary_sets(tmp_path_factory, sets):
    path = tmp_path_factory.mktemp("hyp") / "sweep.yaml"
    path.write_text(VALID)
    _only_spec_errors(lambda: load_sweep(path, sets))
