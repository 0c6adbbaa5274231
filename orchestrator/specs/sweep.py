"""A sweep file as one frozen, typed spec, and its expansion into trial specs (PRODUCT.md "A sweep file").

YAML (safe loading only) -> `SweepSpec` -> `expand()` -> `Trial`s, each a validated `TrialSpec` with a stable id
(a hash of the resolved trial dict) and a readable name (`resnet110-A-seed0`). Every trial is built here, before
anything starts, so a bad grid value or override fails `plan` and `run` alike with exit code 2.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from orchestrator.contract import REPORT_NAMES
from orchestrator.specs.yamlsource import YamlSource
from resnet_core.schedule import split_sizes
from resnet_core.spec import TrialSpec
from resnet_core.specio import (SpecError, check_key_path, flatten, from_dict, parse_set_item, set_path,
                                to_dict)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a sweep's name: MLflow experiment, state directory
# Trials one sweep may expand to: every trial is built (and planned) up front, so a grid of 10 keys x 10 values
# (10^10 combinations) must be refused before expansion, not expanded until memory runs out.
MAX_TRIALS = 10_000
MAX_WORKERS = 1024  # data-parallel workers per trial: 128 nodes of 8 GPUs


@dataclass(frozen=True)
class ResourceSpec:
    """Ray resources per trial. Fractions pack trials: `gpu: 0.25` runs four on one GPU.

    `workers: N` trains each trial data-parallel on N processes (Ray Train's TorchTrainer, DDP), e.g. an ImageNet
    trial on 8 GPUs with `{workers: 8, gpu_per_worker: 1}`; `cpu` then counts per worker. optim.batch_size stays
    the global batch (the paper's 256 over 8 GPUs), split among the workers.
    """

    cpu: float = 1.0
    gpu: float | None = None  # None: 1 when the cluster has GPUs, else 0; a GPU-less cluster runs trials on CPU
    workers: int = 1
    gpu_per_worker: float | None = None  # with workers > 1, instead of gpu; None: as gpu

    def __post_init__(self) -> None:
        if self.cpu <= 0:
            raise SpecError("cpu", self.cpu, "a positive number of CPUs (fractions allowed)")
        if self.gpu is not None and self.gpu < 0:
            raise SpecError("gpu", self.gpu, "0 or a positive number of GPUs (fractions allowed, e.g. 0.25)")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise SpecError("workers", self.workers, f"a whole number of data-parallel workers, 1 to {MAX_WORKERS}")
        if self.gpu_per_worker is not None:
            if self.gpu_per_worker < 0:
                raise SpecError("gpu_per_worker", self.gpu_per_worker, "0 or a positive number of GPUs")
            if self.gpu is not None and self.gpu != self.gpu_per_worker:
                raise SpecError("gpu_per_worker", self.gpu_per_worker,
                                f"the same as gpu ({self.gpu:g}), or leave one of them out")

    @property
    def worker_gpu(self) -> float | None:
        """GPUs per worker (per trial when workers is 1); None: decided by the cluster."""
        return self.gpu_per_worker if self.gpu_per_worker is not None else self.gpu


@dataclass(frozen=True)
class SchedulerSpec:
    """FIFO runs every trial to the end (reproductions); ASHA stops poor ones early (users' own HPO)."""

    kind: Literal["fifo", "asha"] = "fifo"
    metric: str = "test_error"  # a key of the per-epoch metrics; errors are fractions
    mode: Literal["min", "max"] = "min"
    grace_period: int = 1  # epochs every trial gets before ASHA may stop it
    reduction_factor: float = 3.0
    max_t: int | None = None  # epochs; None: the longest trial's epochs

    def __post_init__(self) -> None:
        if self.grace_period < 1:
            raise SpecError("grace_period", self.grace_period, "a whole number of epochs >= 1")
        if self.reduction_factor <= 1:
            raise SpecError("reduction_factor", self.reduction_factor, "a number > 1")
        if self.max_t is not None and self.max_t < 1:
            raise SpecError("max_t", self.max_t, "a whole number of epochs >= 1")


@dataclass(frozen=True)
class Dimension:
    """One key path of a searched space: `{loguniform: [low, high]}`, `{uniform: [low, high]}`, `{int: [low,
    high]}` (both ends included) or `{choice: [v1, v2, ...]}`."""

    key: str
    kind: Literal["loguniform", "uniform", "int", "choice"]
    values: tuple[Any, ...]  # (low, high), or the choices

    def to_dict(self) -> dict[str, list[Any]]:
        return {self.kind: _thaw(self.values)}


@dataclass(frozen=True)
class SearchSpec:
    """grid: every combination; random: `num_samples` distinct combinations drawn with `seed`; optuna: Optuna's
    TPE sampler (through Ray Tune's search API) picks `num_samples` trials from `space`, learning from `metric`."""

    kind: Literal["grid", "random", "optuna"] = "grid"
    num_samples: int | None = None  # random and optuna
    seed: int = 0
    metric: str = "test_error"  # optuna: a per-epoch metric; errors are fractions (use val_error to keep test clean)
    mode: Literal["min", "max"] = "min"
    space: tuple[Dimension, ...] = ()  # optuna only; parsed by sweep_from_dict (`search.space`)

    def __post_init__(self) -> None:
        if self.kind in ("random", "optuna") and (self.num_samples is None or self.num_samples < 1):
            raise SpecError("num_samples", self.num_samples, f"a whole number >= 1 for {self.kind} search")
        if self.kind == "grid" and self.num_samples is not None:
            raise SpecError("num_samples", self.num_samples, "no num_samples with grid search (kind: random)")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "num_samples": self.num_samples, "seed": self.seed}
        if self.kind == "optuna":
            out.update(metric=self.metric, mode=self.mode, space={d.key: d.to_dict() for d in self.space})
        return out


@dataclass(frozen=True)
class Override:
    """Conditional settings: trials whose resolved values match every `when` entry get `set` applied."""

    when: tuple[tuple[str, Any], ...]
    set: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: TrialSpec = field(default_factory=TrialSpec)
    experiment: str | None = None  # MLflow experiment; None: the sweep's name
    description: str = ""
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # key path of the trial spec -> values, cartesian product
    overrides: tuple[Override, ...] = ()
    seeds: tuple[int, ...] = (0,)
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    max_concurrent: int | None = None  # None: as many as resources allow
    max_failures: int = 2  # retries of a crashed trial, each from its last checkpoint
    report: tuple[str, ...] = ()  # which paper tables/figures `resnet-sweep report` rebuilds
    base_given: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # base as written

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a plain dict that `sweep_from_dict` turns back into an equal spec."""
        return {
            "name": self.name,
            "experiment": self.experiment,
            "description": self.description,
            "base": json.loads(json.dumps(self.base_given)),
            "grid": {key: _thaw(values) for key, values in self.grid},
            "overrides": [{"when": _thaw(dict(o.when)), "set": _thaw(dict(o.set))} for o in self.overrides],
            "seeds": list(self.seeds),
            "resources": to_dict(self.resources),
            "scheduler": to_dict(self.scheduler),
            "search": self.search.to_dict(),
            "max_concurrent": self.max_concurrent,
            "max_failures": self.max_failures,
            "report": list(self.report),
        }


@dataclass(frozen=True)
class Trial:
    """One expanded trial: what Ray Tune runs and MLflow records as a child run."""

    id: str  # stable: hash of the resolved trial dict
    name: str  # readable, unique within the sweep
    spec: TrialSpec
    varied: tuple[tuple[str, Any], ...]  # the grid/override/seed values that set this trial apart

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "spec": self.spec.to_dict(), "varied": dict(self.varied)}


_TOP_KEYS = [f.name for f in dataclasses.fields(SweepSpec) if f.name != "base_given"]


def load_sweep(path: str | Path, sets: Sequence[str] = ()) -> SweepSpec:
    """Read, apply `--set KEY=VALUE` items, validate; every problem is a SpecError naming file and line."""
    source = YamlSource.from_file(path)
    data = source.data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SpecError("", data, "a mapping with at least `name:` and `base:`", source.where(""))
    data = apply_sets(data, sets)
    return sweep_from_dict(data, source)


def apply_sets(data: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """`--set` items: sweep keys (`seeds=[0,1]`, `base.optim.lr=0.01`, `grid.model.depth=[20]`) or trial key
    paths, which go to `base` (`optim.iterations=10`), or replace the grid's values when the grid varies them."""
    out = dict(data)
    for item in sets:
        key, value = parse_set_item(item, "optim.iterations=100 or seeds=[0,1]")
        head = key.split(".", 1)[0]
        grid = dict(out.get("grid") or {}) if isinstance(out.get("grid") or {}, Mapping) else {}
        if head == "grid" and "." in key:
            grid[key.split(".", 1)[1]] = value
            out["grid"] = grid
        elif head in _TOP_KEYS:
            out = set_path(out, key, value)
        elif key in grid:
            grid[key] = value if isinstance(value, list) else [value]
            out["grid"] = grid
        else:
            try:
                check_key_path(TrialSpec, key)
            except SpecError as err:
                raise SpecError(key, value, f"a sweep key ({', '.join(_TOP_KEYS)}) or a trial key path: "
                                f"{err.expected}", "--set") from None
            out = set_path(out, f"base.{key}", value)
    return out


def sweep_from_dict(data: Mapping[str, Any], source: YamlSource | None = None) -> SweepSpec:
    """Validate a sweep dict (as loaded from YAML) into a SweepSpec; builds every trial once to check it."""

    def where(key_path: str) -> str:
        return source.where(key_path) if source else "<sweep>"

    def fail(key_path: str, value: Any, expected: str) -> SpecError:
        return SpecError(key_path, value, expected, where(key_path))

    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise fail(str(unknown[0]), data[unknown[0]], f"one of the keys {', '.join(_TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise fail("name", name, "a sweep name of letters, digits, '-', '_' or '.' (it names the MLflow "
                   "experiment and the state directory)")
    experiment = data.get("experiment")
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise fail("experiment", experiment, "a non-empty string (the MLflow experiment name)")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise fail("description", description, "a string")

    base_given = data.get("base") or {}
    if not isinstance(base_given, Mapping):
        raise fail("base", base_given, "a mapping of trial settings (model, data, optim, runtime, transfer)")
    try:
        base = TrialSpec.from_dict(base_given)
    except SpecError as err:
        raise err.under("base").in_file(where(f"base.{err.key_path}"))

    grid = _grid(data.get("grid"), fail)
    overrides = _overrides(data.get("overrides"), fail)
    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise fail("seeds", seeds, "a non-empty list of whole numbers >= 0 (e.g. [0, 1, 2, 3, 4])")
    if len(set(seeds)) != len(seeds):
        raise fail("seeds", seeds, "distinct seeds")
    if any(key == "seed" for key, _ in grid):
        raise fail("grid.seed", dict(grid)["seed"], "seeds in `seeds:`, not in the grid")

    parts: dict[str, Any] = {}
    for key, cls in (("resources", ResourceSpec), ("scheduler", SchedulerSpec), ("search", SearchSpec)):
        value = data.get(key)
        if isinstance(value, str) and key != "resources":
            value = {"kind": value}  # `scheduler: asha` is short for `scheduler: {kind: asha}`
        if key == "search" and isinstance(value, Mapping) and "space" in value:
            value = {k: v for k, v in value.items() if k != "space"}  # key path -> distribution: parsed below
        try:
            parts[key] = from_dict(cls, value, key)
        except SpecError as err:
            raise err.in_file(where(err.key_path))
    search_given = data.get("search") if isinstance(data.get("search"), Mapping) else {}
    space = _space(search_given.get("space"), fail)
    if parts["search"].kind == "optuna":
        if not space:
            raise fail("search.space", search_given.get("space"), "a mapping of trial key path -> {loguniform: "
                       "[low, high]}, {uniform: [low, high]}, {int: [low, high]} or {choice: [values]}")
        if grid:
            raise fail("grid", dict(grid), "no grid with optuna search (put its values in search.space as "
                       "{choice: [...]})")
        if len(seeds) > 1:
            raise fail("seeds", seeds, "one seed with optuna search (each sample is one trial)")
        parts["search"] = dataclasses.replace(parts["search"], space=space)
    elif space:
        raise fail("search.space", search_given.get("space"), "no space unless search.kind is optuna")
    max_concurrent = data.get("max_concurrent")
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                       or max_concurrent < 1):
        raise fail("max_concurrent", max_concurrent, "a whole number >= 1, or null for no limit")
    max_failures = data.get("max_failures", 2)
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < -1:
        raise fail("max_failures", max_failures, "a whole number >= 0 (-1: retry forever)")
    report = data.get("report") or []
    if isinstance(report, str):
        report = [report]
    if not isinstance(report, list) or any(not isinstance(r, str) or not r for r in report):
        raise fail("report", report, "a list of report names (e.g. [table6, fig6, fig7])")
    for i, report_name in enumerate(report):
        if report_name not in REPORT_NAMES:
            raise fail(f"report[{i}]", report_name, f"one of {', '.join(REPORT_NAMES)}")

    sweep = SweepSpec(name=name, base=base, experiment=experiment, description=description, grid=grid,
                      overrides=overrides, seeds=tuple(seeds), max_concurrent=max_concurrent,
                      max_failures=max_failures, report=tuple(report), base_given=json.loads(json.dumps(base_given)),
                      **parts)
    expand(sweep, source)  # every trial must build: bad grid values and overrides fail here, before anything runs
    return sweep


def _grid(grid: Any, fail: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if grid is None:
        return ()
    if not isinstance(grid, Mapping):
        raise fail("grid", grid, "a mapping of key path -> list of values (e.g. model.depth: [20, 32])")
    out = []
    for key, values in grid.items():
        _check_trial_key(str(key), f"grid.{key}", fail)
        if not isinstance(values, list) or not values:
            raise fail(f"grid.{key}", values, "a non-empty list of values")
        out.append((str(key), tuple(_freeze(v) for v in values)))
    return tuple(out)


def _space(space: Any, fail: Any) -> tuple[Dimension, ...]:
    if space is None:
        return ()
    if not isinstance(space, Mapping):
        raise fail("search.space", space, "a mapping of trial key path -> distribution")
    out = []
    for key, given in space.items():
        at = f"search.space.{key}"
        _check_trial_key(str(key), at, fail)
        if not isinstance(given, Mapping) or len(given) != 1:
            raise fail(at, given, "one of {loguniform: [low, high]}, {uniform: [low, high]}, {int: [low, high]}, "
                       "{choice: [values]}")
        kind, values = next(iter(given.items()))
        if kind == "choice":
            if not isinstance(values, list) or not values:
                raise fail(f"{at}.choice", values, "a non-empty list of values")
        elif kind in ("loguniform", "uniform", "int"):
            numbers = isinstance(values, list) and len(values) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
            if not numbers or not values[0] < values[1]:
                raise fail(f"{at}.{kind}", values, "[low, high], two finite numbers with low < high")
            if kind == "loguniform" and values[0] <= 0:
                raise fail(f"{at}.{kind}", values, "[low, high] with low > 0 (a log scale)")
            if kind == "int" and not all(isinstance(v, int) for v in values):
                raise fail(f"{at}.{kind}", values, "[low, high], two whole numbers")
        else:
            raise fail(at, kind, "loguniform, uniform, int or choice")
        out.append(Dimension(str(key), kind, tuple(_freeze(v) for v in values)))
    return tuple(out)


def _overrides(overrides: Any, fail: Any) -> tuple[Override, ...]:
    if overrides is None:
        return ()
    if not isinstance(overrides, list):
        raise fail("overrides", overrides, "a list of {when: {key: value}, set: {key: value}}")
    out = []
    for i, item in enumerate(overrides):
        at = f"overrides[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"when", "set"}:
            raise fail(at, item, "a mapping with exactly the keys `when` and `set`")
        for part in ("when", "set"):
            if not isinstance(item[part], Mapping) or not item[part]:
                raise fail(f"{at}.{part}", item[part], "a non-empty mapping of trial key path -> value")
            for key, value in item[part].items():
                if part == "set" and key == "seeds":
                    if (not isinstance(value, list) or not value or len(set(value)) != len(value)
                            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value)):
                        raise fail(f"{at}.set.seeds", value, "a non-empty list of distinct whole numbers >= 0")
                    continue
                if key == "seed":
                    raise fail(f"{at}.{part}.seed", value, "`seeds: [...]` in `set` (repeats), not `seed`")
                _check_trial_key(str(key), f"{at}.{part}.{key}", fail)
        out.append(Override(tuple((str(k), _freeze(v)) for k, v in item["when"].items()),
                            tuple((str(k), _freeze(v)) for k, v in item["set"].items())))
    return tuple(out)


def _check_trial_key(key: str, at: str, fail: Any) -> None:
    try:
        check_key_path(TrialSpec, key)
    except SpecError as err:
        raise fail(at, key, f"a key path of the trial spec: {err.expected}") from None


def _freeze(value: Any) -> Any:
    """Lists inside frozen specs become tuples; mappings stay (they are rebuilt into specs per trial)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value


# Keys that `ModelSpec` resolves from each other: setting one in a grid or override drops the other from base.
_EXCLUSIVE = {"model.depth": "model.n", "model.n": "model.depth"}


def expand(sweep: SweepSpec, source: YamlSource | None = None) -> list[Trial]:
    """Every trial of the sweep in a stable order: grid combinations (or random samples) x seeds."""
    repeats = max([len(sweep.seeds)] + [len(v) if isinstance(v, tuple) else 1
                                         for o in sweep.overrides for k, v in o.set if k == "seeds"])
    count = math.prod(len(values) for _, values in sweep.grid)
    if sweep.search.kind == "random":
        count = min(count, sweep.search.num_samples)
    if count * repeats > MAX_TRIALS:
        raise SpecError("grid", f"{count:,} combinations x {repeats} seeds",
                        f"at most {MAX_TRIALS:,} trials per sweep (split the sweep, or use search: "
                        "{kind: random, num_samples: N})", source.where("grid") if source else None)
    if sweep.search.kind == "optuna":
        probe_trials(sweep, source)  # every end of the space must build; the trials themselves come later
        return []
    keys = [key for key, _ in sweep.grid]
    if sweep.search.kind == "random":
        total = math.prod(len(values) for _, values in sweep.grid)
        if sweep.search.num_samples > total:
            raise SpecError("search.num_samples", sweep.search.num_samples,
                            f"at most {total} (the grid's distinct combinations)",
                            source.where("search.num_samples") if source else None)
        # Sampling indices draws the same combinations as sampling the expanded list, without expanding it.
        picks = random.Random(sweep.search.seed).sample(range(total), sweep.search.num_samples)
        combos = [_combo_at(sweep.grid, i) for i in picks]
    else:
        combos = list(itertools.product(*(values for _, values in sweep.grid)))
    built: list[tuple[TrialSpec, dict[str, Any]]] = []
    for combo in combos:
        chosen = dict(zip(keys, combo))
        data, origin, seeds = _combine(sweep, chosen, source)
        for seed in seeds:
            built.append((_try_build({**data, "seed": seed}, origin, source), {**chosen, "seed": seed}))
    specs = [spec for spec, _ in built]
    names = _names(specs, [varied for _, varied in built])
    trials, seen = [], {}
    for (spec, varied), name in zip(built, names):
        trial_id = trial_id_of(spec)
        if trial_id in seen:
            raise SpecError("grid", name, f"distinct trials; {name} repeats {seen[trial_id]} exactly (a grid or "
                            "override value that changes nothing?)", source.name if source else None)
        seen[trial_id] = name
        trials.append(_check_batch(Trial(trial_id, name, spec, tuple(varied.items())), sweep, source))
    return trials


def _check_batch(trial: Trial, sweep: SweepSpec, source: YamlSource | None) -> Trial:
    """A batch that fits the trial's resources and data: refused here rather than by a trial that fails on Ray."""
    batch, workers = trial.spec.optim.batch_size, sweep.resources.workers
    train_images = split_sizes(trial.spec.data)[0]
    if batch % workers:  # each worker trains on an equal share of every batch
        expected = f"a multiple of resources.workers ({workers})"
    elif batch > train_images:  # every iteration is a full batch
        held = trial.spec.data.val_split
        expected = f"at most the {train_images} training images" + (f" left after data.val_split ({held})" if held else "")
    else:
        return trial
    at = origin_of(sweep, trial, "optim.batch_size")
    raise SpecError(at, batch, f"{expected} in trial {trial.name}", source.where(at) if source else None)


def probe_trials(sweep: SweepSpec, source: YamlSource | None = None) -> list[Trial]:
    """A searched sweep's trials at the ends of its space (every dimension at its low end, then at its high end,
    then each choice): all must build, and they bound what the samples cost (plan, the data check, ASHA's max_t)."""
    corners = [{d.key: d.values[0] for d in sweep.search.space}, {d.key: d.values[-1] for d in sweep.search.space}]
    for d in sweep.search.space:
        corners += [{**corners[0], d.key: v} for v in d.values[1:-1]]
    return [_check_batch(sample_trial(sweep, values, number, source), sweep, source)
            for number, values in enumerate(corners)]


def sample_trial(sweep: SweepSpec, values: Mapping[str, Any], number: int,
                 source: YamlSource | None = None) -> Trial:
    """Trial `number` of a searched sweep: base + the sampled key paths + matching overrides, the sweep's seed.
    Its id is the spec's hash plus the number (a sampler may suggest the same values twice); its name shows the
    sampled values (3 significant digits) and ends with the sample's number (`...-s3`)."""
    chosen = {key: _rounded(value) for key, value in values.items()}
    data, origin, seeds = _combine(sweep, chosen, source, given_by="search.space")
    spec = _try_build({**data, "seed": seeds[0]}, origin, source)
    name = spec.model.name + (f"-{spec.model.shortcut}" if spec.model.family == "cifar" else "")
    for key, value in chosen.items():
        name += f"-{_short_key(key, list(chosen))}{_short_value(value)}"
    name = _path_safe(f"{name}-seed{spec.seed}-s{number}")
    return Trial(f"{trial_id_of(spec)}-{number}", name, spec, tuple({**chosen, "seed": spec.seed}.items()))


def _rounded(value: Any) -> Any:
    """Sampled floats to 3 significant digits: a person reads (and could type) every value the sweep ran."""
    return float(f"{value:.3g}") if isinstance(value, float) else value


def _combo_at(grid: tuple[tuple[str, tuple[Any, ...]], ...], index: int) -> tuple[Any, ...]:
    """The `index`-th element of itertools.product over the grid's values (last key varies fastest)."""
    combo = []
    for _, values in reversed(grid):
        index, i = divmod(index, len(values))
        combo.append(values[i])
    return tuple(reversed(combo))


def _combine(sweep: SweepSpec, chosen: Mapping[str, Any], source: YamlSource | None,
             given_by: str = "grid") -> tuple[dict[str, Any], dict[str, str], tuple[int, ...]]:
    """base + grid values + matching overrides, as a trial dict without its seed, where each value came
    from (for error messages), and the seeds to repeat it with (an override may set `seeds`)."""
    data: dict[str, Any] = json.loads(json.dumps(sweep.base_given))
    origin: dict[str, str] = {}
    for key, value in chosen.items():
        data = _set(data, key, value)
        origin[key] = f"{given_by}.{key}"
    spec = _try_build(data, origin, source)
    resolved = flatten(spec.to_dict())
    seeds = sweep.seeds
    for i, override in enumerate(sweep.overrides):
        if all(_matches(resolved.get(key, _missing(spec, key)), value) for key, value in override.when):
            for key, value in override.set:
                if key == "seeds":  # e.g. the paper's ResNet-110 row: 5 runs where other rows have one
                    seeds = tuple(value) if isinstance(value, tuple) else (value,)
                    continue
                data = _set(data, key, value)
                origin[key] = f"overrides[{i}].set.{key}"
    return data, origin, seeds


def _set(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    other = _EXCLUSIVE.get(key)
    if other:
        section, _, leaf = other.partition(".")
        if isinstance(data.get(section), Mapping):
            data = {**data, section: {k: v for k, v in data[section].items() if k != leaf}}
    return set_path(data, key, _thaw(value))


def _missing(spec: TrialSpec, key: str) -> Any:
    """Value of a key path that `flatten` leaves out (a None sub-spec such as optim.warmup)."""
    value: Any = spec
    for part in key.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, tuple):  # `when: {model.depth: [56, 110]}` matches any of the listed values
        return any(_matches(actual, w) for w in wanted)
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return actual is wanted  # YAML's true is not the number 1
    return actual == wanted


def _try_build(data: dict[str, Any], origin: dict[str, str], source: YamlSource | None) -> TrialSpec:
    try:
        return TrialSpec.from_dict(data)
    except SpecError as err:
        at = _origin_of(err.key_path, origin)
        detail = "" if at.startswith("base") else f" (trial with {', '.join(f'{k}={v!r}' for k, v in _shown(data, origin))})"
        raise SpecError(at, err.value, err.expected + detail, source.where(at) if source else "<sweep>") from None


def _shown(data: dict[str, Any], origin: dict[str, str]) -> list[tuple[str, Any]]:
    flat = flatten(data)
    return [(key, flat.get(key)) for key in origin if key in flat]


def origin_of(sweep: SweepSpec, trial: Trial, key_path: str) -> str:
    """Which key of the sweep file set `key_path` in `trial`: `grid.K`, `overrides[i].set.K` or `base.K`."""
    chosen = {k: v for k, v in trial.varied if k != "seed"}
    _, origin, _ = _combine(sweep, chosen, None, "search.space" if sweep.search.kind == "optuna" else "grid")
    return _origin_of(key_path, origin)


def _origin_of(key_path: str, origin: dict[str, str]) -> str:
    """Which part of the file set the value an error names: the grid or an override, else base."""
    if key_path in origin:
        return origin[key_path]
    parent = key_path.rsplit(".", 1)[0] if "." in key_path else key_path
    for key, where in origin.items():  # e.g. the grid sets model.n and ModelSpec complains about model.depth
        if key.startswith(parent + ".") or key == parent:
            return where
    return f"base.{key_path}"


def trial_id_of(spec: TrialSpec) -> str:
    """Stable id: the first 12 hex digits of SHA-1 over the resolved trial dict (sorted keys)."""
    text = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


# Settings the architecture name already says (resnet110-A, plain20, resnext29_8x64d).
_IN_MODEL_NAME = {"model", "model.family", "model.depth", "model.n", "model.residual", "model.preact", "model.cardinality",
                  "model.width", "model.shortcut", "seed"}


def _names(specs: list[TrialSpec], varied: list[dict[str, Any]]) -> list[str]:
    """resnet110-A-seed0; plus `key=value` for whatever else differs between trials; unique within the sweep."""
    flats = [flatten(s.to_dict()) for s in specs]
    grid_keys = [k for k in (varied[0] if varied else {}) if k not in _IN_MODEL_NAME]
    differing = [k for k in grid_keys if len({json.dumps(v.get(k), sort_keys=True) for v in varied}) > 1]
    shortcuts = {s.model.shortcut for s in specs if s.model.family != "resnext"}
    names = []
    for spec, flat, v in zip(specs, flats, varied):
        name = spec.model.name
        if spec.model.family != "resnext" and (spec.model.family == "cifar" or len(shortcuts) > 1):
            name += f"-{spec.model.shortcut}"
        for key in differing:
            name += f"-{_short_key(key, differing)}{_short_value(flat.get(key, v.get(key)))}"
        names.append(_path_safe(f"{name}-seed{spec.seed}"))
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if counts[n] == 1 else f"{n}-{trial_id_of(s)[:6]}" for n, s in zip(names, specs)]


def _path_safe(name: str) -> str:
    """Names become directory names (Tune's trial directories): only characters safe in a path component."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


def _short_key(key: str, all_keys: list[str]) -> str:
    leaf = key.rsplit(".", 1)[-1]
    clash = sum(1 for k in all_keys if k.rsplit(".", 1)[-1] == leaf) > 1
    return key.replace(".", "_") if clash else leaf


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "_".join(_short_value(v) for v in value)
    if isinstance(value, dict):
        return "_".join(f"{k}{_short_value(v)}" for k, v in value.items())
    return str(value).lower() if isinstance(value, bool) else str(value)
