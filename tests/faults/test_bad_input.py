"""Bad input: malformed sweep files and `--set` values exit 2 naming the key path, never a traceback; property-based
tests: generated bad values are refused at their own key path, showing the value, and good ones read back equal.

Most cases run `orchestrator.cli.main` in-process (the console script's own code path) to keep the table fast;
a few run the installed `resnet-sweep` in a subprocess, `run` included, to show nothing is created on the way out.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import string
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import resnet_sweep
from orchestrator.cli import main
from orchestrator.contract import REPORT_NAMES
from orchestrator.specs.reading import load_sweep, sweep_from_dict
from orchestrator.specs.sweep import SweepSpec
from resnet_core import yaml12
from resnet_core.spec import TrialSpec
from resnet_core.specio import SpecError
from tests.conftest import tiny_sweep

SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.yaml"
SMOKE_DATA = yaml.safe_load(SMOKE.read_text())

# A small valid sweep the cases below break one piece at a time (plan builds it in well under a second).
VALID = tiny_sweep("badinput", lr=0.1) + """\
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


# ---- property-based: generated input, and what the readers must say about it ----
# Each generator knows whether it made a bad value or a good one. A bad value: a SpecError whose key path is the
# bad value's and whose message shows the value it got and what was expected. Good values: a spec that reads back
# equal from its own dict and from YAML, with the values in place. Strings that are good values are words of
# letters, so that their YAML text reads back as the same string.

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
_keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["name", "base", "grid", "seeds", "model", "optim", "lr", "depth", "family", "model.depth", "optim.lr",
     "overrides", "when", "set", "search", "scheduler", "resources", "report", "kind", "num_samples"]),
    st.integers(-3, 3), st.booleans(), st.none())
_yamlish = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_keys, inner, max_size=4)), max_leaves=20)
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_words = st.text(alphabet=string.ascii_letters + " _-", min_size=1, max_size=12).filter(str.strip)

SWEEP_KEYS = ("name", "base", "experiment", "description", "grid", "overrides", "seeds", "resources", "scheduler",
              "search", "max_concurrent", "max_failures", "report")
TRIAL_SECTIONS = ("model", "data", "optim", "runtime", "transfer", "seed")
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # letters, digits, '-', '_' and '.'; a letter or digit first


def _whole(value: object) -> bool:
    """A whole number as a spec's int field takes it (YAML writes 6.4e4 as a float)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _strict_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _one_of(*choices: str):
    return lambda value: isinstance(value, str) and value in choices


def _not(accepted, optional: bool = False) -> st.SearchStrategy:
    """Any YAML value the rule `accepted` refuses (None too, unless the field is optional)."""
    return _yamlish.filter(lambda v: not (accepted(v) or (optional and v is None)))


@dataclass(frozen=True)
class Field:
    good: st.SearchStrategy | None  # values that are fine wherever the others are good; None: not generated
    bad: st.SearchStrategy  # values refused at this field's own key path


def _choice(*choices: str, optional: bool = False) -> Field:
    return Field(st.sampled_from(choices), _not(_one_of(*choices), optional))


def _flag() -> Field:
    return Field(st.booleans(), _not(lambda v: isinstance(v, bool)))


def _count(low: int, high: int, least: int = 1, cap: int | None = None) -> Field:
    """A whole number: good in [low, high]; bad of another type, below the field's `least` or above its `cap`."""
    bad = _not(_whole) | st.integers(max_value=least - 1)
    return Field(st.integers(low, high), bad | st.integers(cap + 1, cap * 1000) if cap else bad)


def _real(low: float, high: float, refused: st.SearchStrategy) -> Field:
    return Field(st.floats(low, high), _not(_number) | refused)


# Every key path of a trial spec that the generators fill in. Good values go together in any combination, with
# VALID's base or smoke.yaml's (a batch of at most 32 images, at least 48 - 16 training images).
TRIAL_FIELDS: dict[str, Field] = {
    "model.family": Field(st.just("cifar"), _not(_one_of("cifar", "imagenet", "resnext"))),
    "model.depth": Field(st.sampled_from([8, 14, 20, 32, 44, 56, 110]), _not(_whole, optional=True)),
    "model.n": Field(None, _not(_whole, optional=True)),
    "model.shortcut": Field(st.sampled_from("ABC"), _not(_one_of("A", "B", "C"), optional=True)),
    "model.residual": _flag(),
    "model.preact": _flag(),
    "model.cardinality": Field(st.just(1), _not(_whole, optional=True)),
    "model.width": Field(st.just(64), _not(_whole, optional=True)),
    "model.stride_on": _choice("1x1", "3x3"),
    "model.zero_init_last_bn": _flag(),
    "data.dataset": Field(st.sampled_from(["cifar10", "cifar100", "synthetic"]),
                          _not(_one_of("cifar10", "cifar100", "imagenet", "synthetic"))),
    "data.root": Field(_words, _not(lambda v: isinstance(v, str))),
    "data.download": _flag(),
    "data.train_limit": Field(st.none() | st.integers(48, 10**5),
                              _not(_whole, optional=True) | st.integers(max_value=0)),
    "data.val_split": Field(st.integers(0, 16), _not(_whole) | st.integers(max_value=-1)),
    "data.augment": _flag(),
    "data.lighting": Field(st.just(0.0), _not(_number, optional=True) | st.floats(-10, -1e-6)),
    "data.normalize": _choice("pixel_mean", "channel"),
    "data.image_size": Field(st.none() | st.integers(8, 64), _not(_whole, optional=True) | st.integers(4097, 10**6)),
    "data.num_classes": Field(st.none() | st.integers(2, 100), _not(_whole, optional=True) | st.integers(max_value=0)),
    "data.synthetic_train": _count(48, 512, cap=2_000_000),
    "data.synthetic_test": _count(1, 512, cap=2_000_000),
    "data.workers": _count(0, 16, least=0),
    "optim.lr": _real(1e-4, 1.0, st.floats(-10, 0)),
    "optim.momentum": _real(0.0, 0.99, st.floats(1.0, 10) | st.floats(-10, -1e-6)),
    "optim.weight_decay": _real(0.0, 0.01, st.floats(-10, -1e-9)),
    "optim.nesterov": _flag(),
    "optim.batch_size": _count(1, 32, cap=2**20),
    "optim.milestones": Field(st.lists(st.integers(1, 10**5), max_size=3, unique=True).map(sorted),
                              _not(lambda v: isinstance(v, list))
                              | st.lists(st.integers(1, 10**5), min_size=2, max_size=3, unique=True).map(
                                  lambda ms: sorted(ms, reverse=True))
                              | st.lists(st.integers(-10, 0), min_size=1, max_size=1)),
    "optim.lr_decay": _real(0.01, 1.0, st.floats(-10, 0)),
    "optim.iterations": _count(1, 10**5, cap=10**8),
    "optim.warmup": Field(st.none() | st.fixed_dictionaries({"lr": st.floats(1e-4, 1.0)}),
                          _not(lambda v: isinstance(v, dict), optional=True)),
    "runtime.device": _choice("auto", "cpu", "cuda"),
    "runtime.precision": _choice("auto", "fp32", "bf16"),
    "runtime.compile": _choice("auto", "off", "on"),
    "runtime.channels_last": _flag(),
    "runtime.checkpoint_every": _count(0, 1000, least=0),
    "runtime.eval_batch_size": _count(1, 4096, cap=2**20),
    "transfer.checkpoint": Field(st.none() | _words, _not(lambda v: isinstance(v, str), optional=True)),
    "transfer.train": _choice("all", "last_stage", "head"),
    "seed": Field(st.integers(0, 10**6), _not(_whole)),
}

_BAD_SEEDS = st.one_of(
    st.just([]),
    st.lists(st.integers(0, 9), min_size=1, max_size=3).map(lambda s: s + s[:1]),  # a seed twice
    st.lists(_not(lambda v: _strict_whole(v) and v >= 0), min_size=1, max_size=3),  # a seed that is not one
    _not(lambda v: isinstance(v, list) or _strict_whole(v)))  # neither a list nor one seed
_GOOD_SEEDS = st.lists(st.integers(0, 10**6), min_size=1, max_size=3, unique=True)
_GOOD_REPORTS = st.lists(st.sampled_from(list(REPORT_NAMES)), max_size=3)


@dataclass(frozen=True)
class Leaf:
    """A leaf of smoke.yaml: where it sits, the key path an error about it names, and what that error shows (the
    leaf itself, or the list it is in where the list is checked as a whole)."""

    path: tuple
    named: str
    field: Field
    shown: tuple


def _leaf(path: tuple, named: str, field: Field, whole_list: bool = False) -> Leaf:
    return Leaf(path, named, field, path[:-1] if whole_list else path)


def _base_leaf(path: tuple) -> Leaf:
    key = ".".join(path[1:])
    return _leaf(path, f"base.{key}", TRIAL_FIELDS[key])


_SMOKE_LEAVES = [
    _leaf(("name",), "name", Field(st.from_regex(SWEEP_NAME, fullmatch=True),
                                   _yamlish.filter(lambda v: not (isinstance(v, str) and SWEEP_NAME.fullmatch(v))))),
    _leaf(("description",), "description", Field(_words, _yamlish.filter(lambda v: v and not isinstance(v, str)))),
    *[_base_leaf(p) for p in [("base", "model", "family"), ("base", "model", "depth"), ("base", "model", "shortcut"),
                              ("base", "model", "residual"), ("base", "data", "dataset"),
                              ("base", "data", "synthetic_train"), ("base", "data", "synthetic_test"),
                              ("base", "data", "augment"), ("base", "optim", "lr"), ("base", "optim", "batch_size"),
                              ("base", "optim", "iterations"), ("base", "runtime", "device"),
                              ("base", "runtime", "eval_batch_size")]],
    _leaf(("base", "optim", "milestones", 0), "base.optim.milestones[0]", Field(st.integers(1, 39), _not(_whole))),
    _leaf(("base", "optim", "milestones", 1), "base.optim.milestones[1]", Field(st.integers(40, 10**4), _not(_whole))),
    _leaf(("grid", "model.depth", 0), "grid.model.depth", Field(st.sampled_from([20, 32]), _not(_whole, True))),
    _leaf(("grid", "model.depth", 1), "grid.model.depth", Field(st.sampled_from([44, 56]), _not(_whole, True))),
    _leaf(("grid", "model.residual", 0), "grid.model.residual", Field(None, TRIAL_FIELDS["model.residual"].bad)),
    _leaf(("grid", "model.residual", 1), "grid.model.residual", Field(None, TRIAL_FIELDS["model.residual"].bad)),
    _leaf(("seeds", 0), "seeds", Field(st.integers(0, 10**6), _not(lambda v: _strict_whole(v) and v >= 0)), True),
    _leaf(("resources", "cpu"), "resources.cpu", _real(0.01, 64.0, st.floats(-10, 0))),
    _leaf(("resources", "gpu"), "resources.gpu", Field(st.none() | st.floats(0, 8),
                                                       _not(_number, optional=True) | st.floats(-10, -1e-6))),
    _leaf(("max_failures",), "max_failures", Field(st.integers(-1, 100),
                                                   _not(_strict_whole) | st.integers(max_value=-2))),
    _leaf(("report", 0), "report", Field(st.sampled_from(REPORT_NAMES), _not(lambda v: isinstance(v, str) and v)),
          True),
    _leaf(("report", 1), "report", Field(st.sampled_from(REPORT_NAMES), _not(lambda v: isinstance(v, str) and v)),
          True),
]


def _pair(values: st.SearchStrategy, named: str) -> st.SearchStrategy:
    """(bad value, the key path an error about it names, what that error shows): here the value itself."""
    return values.map(lambda v: (v, named, v))


def _under(make, named: str, values: st.SearchStrategy, shown=None) -> st.SearchStrategy:
    """(make(v), the key path an error about v names, what that error shows: v unless `shown` says otherwise)."""
    return values.map(lambda v: (make(v), named, v if shown is None else shown(v)))


_WHEN = {"model.depth": 8}
# Each key of a sweep but `name` and `base`: good values (fine together, with VALID's base), and bad ones with the key
# path an error names and the value it shows.
SWEEP_FIELDS: dict[str, tuple[st.SearchStrategy, st.SearchStrategy]] = {
    "experiment": (st.none() | _words, _pair(_not(lambda v: isinstance(v, str), optional=True)
                                             | st.sampled_from(["", "  "]), "experiment")),
    "description": (_words, _pair(_yamlish.filter(lambda v: v and not isinstance(v, str)), "description")),
    "grid": (st.none() | st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=3, unique=True).map(
                 lambda lrs: {"optim.lr": lrs}) | st.just({"model.depth": [8, 14, 20]}),
             st.one_of(_pair(_not(lambda v: isinstance(v, dict), optional=True), "grid"),
                       _under(lambda v: {"optim.lr": v}, "grid.optim.lr", _not(lambda v: isinstance(v, list) and v)),
                       _words.map(lambda w: f"optim.x{w}").map(  # no optim field starts with x
                           lambda key: ({key: [1]}, f"grid.{key}", key)))),
    "overrides": (st.none() | st.just([]) | st.floats(0.0, 0.01).map(
                      lambda wd: [{"when": _WHEN, "set": {"optim.weight_decay": wd}}])
                  | _GOOD_SEEDS.map(lambda s: [{"when": _WHEN, "set": {"seeds": s}}]),
                  st.one_of(_pair(_not(lambda v: isinstance(v, list), optional=True), "overrides"),
                            _under(lambda v: [v], "overrides[0]", _not(lambda v: isinstance(v, dict))),
                            st.just(([{"when": {}, "set": {"optim.lr": 0.1}}], "overrides[0].when", {})),
                            _under(lambda v: [{"when": _WHEN, "set": {"seed": v}}], "overrides[0].set.seed",
                                   st.integers(0, 9)),
                            _under(lambda v: [{"when": _WHEN, "set": {"seeds": v}}], "overrides[0].set.seeds",
                                   _BAD_SEEDS))),
    "seeds": (st.integers(0, 10**6) | _GOOD_SEEDS, _pair(_BAD_SEEDS, "seeds")),
    "resources": (st.none() | st.fixed_dictionaries({"cpu": st.floats(0.1, 8.0)})
                  | st.fixed_dictionaries({"workers": st.sampled_from([1, 2, 4]), "gpu_per_worker": st.floats(0, 1)}),
                  st.one_of(_pair(_not(lambda v: isinstance(v, dict), optional=True), "resources"),
                            _under(lambda v: {"cpu": v}, "resources.cpu", _not(_number) | st.floats(-10, 0)),
                            _under(lambda v: {"workers": v}, "resources.workers",
                                   _not(_whole) | st.integers(max_value=0) | st.integers(1025, 10**6)))),
    "scheduler": (st.sampled_from([None, "fifo", "asha"]) | st.fixed_dictionaries(
                      {"kind": st.just("asha"), "grace_period": st.integers(1, 5),
                       "reduction_factor": st.floats(1.5, 4.0)}),
                  st.one_of(_under(lambda v: {"kind": v}, "scheduler.kind", _not(_one_of("fifo", "asha", "pbt"))),
                            _under(lambda v: {"grace_period": v}, "scheduler.grace_period", st.integers(max_value=0)),
                            _under(lambda v: {"reduction_factor": v}, "scheduler.reduction_factor",
                                   st.floats(-10, 1.0)))),
    "search": (st.sampled_from([None, "grid", {"kind": "grid"}, {"kind": "random", "num_samples": 1}]),
               st.one_of(st.just(({"kind": "random"}, "search.num_samples", None)),
                         _under(lambda v: {"num_samples": v}, "search.num_samples", st.integers(1, 10)),
                         _under(lambda v: {"kind": v}, "search.kind", _not(_one_of("grid", "random", "optuna"))))),
    "max_concurrent": (st.none() | st.integers(1, 64),
                       _pair(_not(_strict_whole, optional=True) | st.integers(max_value=0), "max_concurrent")),
    "max_failures": (st.integers(-1, 10), _pair(_not(_strict_whole) | st.integers(max_value=-2), "max_failures")),
    "report": (_GOOD_REPORTS | st.sampled_from(REPORT_NAMES),
               st.one_of(_pair(_yamlish.filter(lambda v: v and not isinstance(v, (str, list))), "report"),
                         _pair(st.lists(_not(lambda v: isinstance(v, str) and v), min_size=1, max_size=2), "report"),
                         _under(lambda v: [v], "report[0]", _words.filter(lambda w: w not in REPORT_NAMES)))),
}


def _at(data, path: tuple):
    for key in path:
        data = data[key]
    return data


def _replace(data, path, value):
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replace(copy[path[0]], path[1:], value)
    return copy


def _nest(flat: dict) -> dict:
    """{'optim.lr': 0.1} -> {'optim': {'lr': 0.1}}"""
    out: dict = {}
    for path, value in flat.items():
        *sections, key = path.split(".")
        inner = out
        for section in sections:
            inner = inner.setdefault(section, {})
        inner[key] = value
    return out


def _same(got, given) -> bool:
    return got == given or repr(got) == repr(given)  # NaN is not equal to itself


def _holds(got, given) -> bool:
    """The spec keeps the value given (a mapping given in part is kept with its defaults filled in)."""
    if isinstance(given, dict):
        return isinstance(got, dict) and all(_holds(got.get(k), v) for k, v in given.items())
    return _same(got, given)


_UNCHECKED = object()


def _refused(call, key_path: str, value: object = _UNCHECKED) -> SpecError:
    """`call()` raises a SpecError at `key_path` whose message shows `value` and what was expected."""
    with pytest.raises(SpecError) as info:
        call()
    err = info.value
    assert err.key_path == key_path, f"named {err.key_path!r}, not {key_path!r}: {err}"
    assert value is _UNCHECKED or _same(err.value, value), f"showed {err.value!r}, not {value!r}: {err}"
    assert err.expected and f"{key_path or '<top level>'}: got {err.value!r}, expected {err.expected}" in str(err)
    return err


def _head(key_path: str) -> str:
    return re.split(r"[.\[]", key_path, maxsplit=1)[0]


def _sweep_round_trips(sweep: SweepSpec) -> None:
    again = sweep_from_dict(sweep.to_dict())
    assert again == sweep and again.to_dict() == sweep.to_dict()
    assert sweep_from_dict(yaml12.load(yaml.safe_dump(sweep.to_dict()))) == sweep


def _trial_round_trips(spec: TrialSpec) -> None:
    again = TrialSpec.from_dict(spec.to_dict())
    assert again == spec and again.to_dict() == spec.to_dict()
    assert TrialSpec.from_dict(yaml12.load(yaml.safe_dump(spec.to_dict()))) == spec


def _read_sweep(data: dict, call) -> None:
    """What reading an arbitrary sweep dict must say: a key that is not a sweep key is named first, then a missing
    or malformed name; any other refusal names a key the dict has (or `base`, whose defaults every trial starts
    from); a sweep that is read reads back equal."""
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        _refused(call, str(unknown[0]), data[unknown[0]])
        return
    name = data.get("name")
    if not (isinstance(name, str) and SWEEP_NAME.fullmatch(name)):
        _refused(call, "name", name)
        return
    try:
        sweep = call()
    except SpecError as err:
        assert _head(err.key_path) in {*data, "base"}, str(err)
        return
    _sweep_round_trips(sweep)


@_SETTINGS
@given(_yamlish)
def test_sweep_from_dict_arbitrary_data(data):
    """Arbitrary data as a sweep, or as its base: refused where the rules say, or read back equal."""
    if isinstance(data, dict):
        _read_sweep(data, lambda: sweep_from_dict(data))
    elif data:  # not a mapping, so not a base
        _refused(lambda: sweep_from_dict({"name": "x", "base": data}), "base", data)
    else:  # an empty base: the paper's ResNet-20
        sweep = sweep_from_dict({"name": "x", "base": data})
        assert sweep.base == TrialSpec()
        _sweep_round_trips(sweep)


@_SETTINGS
@given(st.data())
def test_sweep_from_dict_mutated_smoke(data):
    """smoke.yaml with good values at some leaves and at most one bad value: the bad one is refused at its key
    path; without it the sweep reads back equal with the good values in place."""
    goods = data.draw(st.lists(st.sampled_from([leaf for leaf in _SMOKE_LEAVES if leaf.field.good is not None]),
                               unique=True, max_size=4))
    mutated = SMOKE_DATA
    for leaf in goods:
        mutated = _replace(mutated, leaf.path, data.draw(leaf.field.good))
    bad = data.draw(st.none() | st.sampled_from(_SMOKE_LEAVES))
    if bad is not None:
        mutated = _replace(mutated, bad.path, data.draw(bad.field.bad))
        _refused(lambda: sweep_from_dict(mutated), bad.named, _at(mutated, bad.shown))
        return
    sweep = sweep_from_dict(mutated)
    for leaf in goods:
        kept = _at(sweep.base.to_dict(), leaf.path[1:]) if leaf.path[0] == "base" else _at(sweep.to_dict(), leaf.path)
        assert _holds(kept, _at(mutated, leaf.path)), leaf.path
    _sweep_round_trips(sweep)


@_SETTINGS
@given(_yamlish)
def test_trial_spec_from_dict_arbitrary_data(data):
    """Arbitrary data as a trial spec: not a mapping, or a key outside the sections, is named; any other refusal
    names one of the sections given; a spec that is built reads back equal."""
    call = lambda: TrialSpec.from_dict(data)  # noqa: E731
    if data is None:  # no settings: the paper's ResNet-20
        assert call() == TrialSpec()
        _trial_round_trips(call())
    elif not isinstance(data, dict):
        _refused(call, "", data)
    elif unknown := [k for k in data if k not in TRIAL_SECTIONS]:
        _refused(call, str(unknown[0]), data[unknown[0]])
    else:
        try:
            spec = call()
        except SpecError as err:
            assert _head(err.key_path) in data, str(err)
            return
        _trial_round_trips(spec)


@_SETTINGS
@given(st.data())
def test_trial_spec_from_dict_known_keys_random_values(data):
    """Right keys with good values, and at most one bad value: the bad one, of the wrong type or out of its range
    (each field's checks and __post_init__), is refused at its key path; without it the spec keeps every value
    given and reads back equal."""
    paths = data.draw(st.lists(st.sampled_from([p for p, f in TRIAL_FIELDS.items() if f.good is not None]),
                               unique=True, max_size=8))
    given_values = {path: data.draw(TRIAL_FIELDS[path].good) for path in paths}
    bad = data.draw(st.none() | st.sampled_from(sorted(TRIAL_FIELDS)))
    if bad is not None:
        given_values[bad] = data.draw(TRIAL_FIELDS[bad].bad)
        _refused(lambda: TrialSpec.from_dict(_nest(given_values)), bad, given_values[bad])
        return
    spec = TrialSpec.from_dict(_nest(given_values))
    for path, value in given_values.items():
        assert _holds(_at(spec.to_dict(), tuple(path.split("."))), value), path
    _trial_round_trips(spec)


@_SETTINGS
@given(st.data())
def test_sweep_from_dict_known_keys_random_values(data):
    """A valid name and base, the sweep's keys with good values and at most one bad value: the bad one is refused at
    its key path (the key itself, or a key inside it); without it the sweep reads back equal."""
    keys = data.draw(st.lists(st.sampled_from(sorted(SWEEP_FIELDS)), unique=True, max_size=5))
    top = {key: data.draw(SWEEP_FIELDS[key][0]) for key in keys}
    bad = data.draw(st.none() | st.sampled_from(sorted(SWEEP_FIELDS)))
    base = yaml.safe_load(VALID)["base"]
    if bad is not None:
        top[bad], named, shown = data.draw(SWEEP_FIELDS[bad][1])
        _refused(lambda: sweep_from_dict({"name": "x", "base": base, **top}), named, shown)
        return
    sweep = sweep_from_dict({"name": "x", "base": base, **top})
    for key in ("experiment", "description", "max_concurrent", "max_failures"):
        if top.get(key) is not None:
            assert getattr(sweep, key) == top[key]
    _sweep_round_trips(sweep)


def _good_sweeps() -> st.SearchStrategy:
    """Whole sweeps of good values, as dicts."""
    return st.fixed_dictionaries(
        {"name": st.from_regex(SWEEP_NAME, fullmatch=True), "base": st.just(yaml.safe_load(VALID)["base"])},
        optional={key: good for key, (good, _) in SWEEP_FIELDS.items()})


@_SETTINGS
@given(st.one_of(st.text(max_size=200).map(lambda t: (t, None)),
                 st.binary(max_size=200).map(lambda b: (b.decode("latin-1"), None)),
                 _good_sweeps().map(lambda d: (yaml.safe_dump(d, sort_keys=False), d))))
def test_load_sweep_arbitrary_text(tmp_path_factory, text_and_sweep):
    """Any text as a sweep file: text that is not YAML is refused as such, with the file; YAML that is not a
    mapping is refused at the top level; a mapping is read as sweep dicts are, and a good sweep written out reads
    as the same sweep and back."""
    text, written = text_and_sweep
    path = tmp_path_factory.mktemp("hyp") / "sweep.yaml"
    path.write_text(text)
    call = lambda: load_sweep(path)  # noqa: E731
    if written is not None:
        sweep = call()
        assert sweep == sweep_from_dict(written)
        _sweep_round_trips(sweep)
        return
    try:
        data = yaml12.load(path.read_text())
    except yaml.YAMLError:
        err = _refused(call, "")
        assert err.expected.startswith("valid YAML") and err.source.startswith(str(path)), str(err)
        return
    if data is None:
        _refused(call, "name", None)
    elif not isinstance(data, dict):
        err = _refused(call, "", data)
        assert err.expected == "a mapping with at least `name:` and `base:`" and err.source.startswith(str(path))
    elif not _duplicate_key_refused(call, text):
        _read_sweep(data, call)


def _duplicate_key_refused(call, text: str) -> bool:
    """Whether `call` refuses a key written twice in one mapping (YAML itself keeps the last one silently)."""
    try:
        call()
    except SpecError as err:
        if err.expected.startswith("each key once in a mapping"):
            assert text.count(str(err.value)) >= 2, str(err)
            return True
    return False


def _trial_key_paths(cls: type = TrialSpec, prefix: str = "") -> set[str]:
    """Every key path of the trial spec, sections included (`optim`, `optim.warmup`, `optim.warmup.lr`)."""
    paths, hints = set(), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        paths.add(prefix + f.name)
        for hint in (hints[f.name], *typing.get_args(hints[f.name])):
            if dataclasses.is_dataclass(hint):
                paths |= _trial_key_paths(hint, f"{prefix}{f.name}.")
    return paths


TRIAL_KEY_PATHS = _trial_key_paths()


def _set_refusals(items: list[str]) -> tuple[str, object] | None:
    """The first item `--set` refuses before applying any (key path, value shown): one without `KEY=` or with a
    value that is not YAML, or one whose key is no sweep key, no key the grid varies and no trial key path."""
    grid = set(yaml.safe_load(VALID)["grid"])
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            return item, item
        try:
            value = yaml12.load(text)
        except yaml.YAMLError:
            return key, text
        head = key.split(".", 1)[0]
        if key == "grid":
            grid = set(value) if isinstance(value, dict) else set()
        elif head == "grid" and "." in key:
            grid.add(key.split(".", 1)[1])
        elif head not in SWEEP_KEYS and key not in grid and key not in TRIAL_KEY_PATHS:
            return key, value
    return None


@_SETTINGS
@given(st.lists(st.text(max_size=30) | st.tuples(st.text(max_size=12), st.text(max_size=12)).map("=".join),
                max_size=3))
def test_load_sweep_arbitrary_sets(tmp_path_factory, sets):
    """Arbitrary `--set` items: the first malformed or unknown one is refused, naming it, from `--set`; otherwise a
    refusal names a key that was set (or base or the grid, where trial key paths go), or the sweep reads back equal."""
    path = tmp_path_factory.mktemp("hyp") / "sweep.yaml"
    path.write_text(VALID)
    call = lambda: load_sweep(path, sets)  # noqa: E731
    refusal = _set_refusals(sets)
    if refusal is not None:
        err = _refused(call, *refusal)
        assert err.source == "--set", str(err)
        return
    try:
        sweep = call()
    except SpecError as err:
        assert _head(err.key_path) in {_head(s.partition("=")[0].strip()) for s in sets} | {"base", "grid"}, str(err)
        return
    _sweep_round_trips(sweep)


def _flow(value: object) -> str:
    """A value as YAML flow text that reads back as a value of the same type."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if value != value else ".inf" if value > 0 else "-.inf"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # null, true, 12, 0.5, 1e-05, "text" (quoted: a string stays one)


@_SETTINGS
@given(st.data())
def test_load_sweep_set_items(tmp_path_factory, data):
    """`--set` items for trial key paths, good values and at most one bad one (last): the bad one is refused at its
    key path under base; without it every good value is in the sweep's base, and the sweep reads back equal."""
    path = tmp_path_factory.mktemp("hyp") / "sweep.yaml"
    path.write_text(VALID)
    settable = sorted(p for p in TRIAL_FIELDS if p != "model.depth")  # VALID's grid varies model.depth
    paths = data.draw(st.lists(st.sampled_from([p for p in settable if TRIAL_FIELDS[p].good is not None]),
                               unique=True, max_size=6))
    items = [(p, data.draw(TRIAL_FIELDS[p].good)) for p in paths]
    bad = data.draw(st.none() | st.sampled_from(settable))
    if bad is not None:
        items.append((bad, data.draw(TRIAL_FIELDS[bad].bad)))
    sets = [f"{p}={_flow(v)}" for p, v in items]
    if bad is not None:
        _refused(lambda: load_sweep(path, sets), f"base.{bad}", yaml12.load(_flow(items[-1][1])))
        return
    sweep = load_sweep(path, sets)
    for p, value in items:
        assert _holds(_at(sweep.base.to_dict(), tuple(p.split("."))), value), p
    _sweep_round_trips(sweep)
