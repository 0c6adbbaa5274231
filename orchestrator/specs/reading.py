"""Reading a sweep: a YAML file and `--set` items -> a checked dict -> a `SweepSpec` whose every trial builds.

Each key of the dict is checked by a function of its own, one after another; the first problem found is raised as
a SpecError that names the key path (and the file and line, for a sweep read from a file).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from orchestrator.contract import REPORT_NAMES
from orchestrator.specs.expansion import expand
from orchestrator.specs.sweep import (NAME_PATTERN, PBT_KEYS, SWEEP_KEYS, Dimension, Override, ResourceSpec,
                                      SchedulerSpec, SearchSpec, SweepSpec, TrackingSpec)
from orchestrator.specs.yamlsource import YamlSource, where
from resnet_core.spec import TrialSpec
from resnet_core.specio import SpecError, check_key_path, from_dict, parse_set_item, set_path

Source = YamlSource | None  # None: a dict that came from no file (errors then say `<sweep>`)
Grid = tuple[tuple[str, tuple[Any, ...]], ...]

_SPACE_FORMS = "{loguniform: [low, high]}, {uniform: [low, high]}, {int: [low, high]}"
_OVERRIDE_SEEDS = "a non-empty list of distinct whole numbers >= 0"


def load_sweep(path: str | Path, sets: Sequence[str] = ()) -> SweepSpec:
    """Read, apply `--set KEY=VALUE` items, validate; every problem is a SpecError naming file and line."""
    source = YamlSource.from_file(path)
    data = {} if source.data is None else source.data
    if not isinstance(data, Mapping):
        raise SpecError("", data, "a mapping with at least `name:` and `base:`", source.where(""))
    return sweep_from_dict(apply_sets(data, sets), source)


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
        elif head in SWEEP_KEYS:
            out = set_path(out, key, value)
        elif key in grid:
            grid[key] = value if isinstance(value, list) else [value]
            out["grid"] = grid
        else:
            problem = _trial_key_problem(key)
            if problem:
                raise SpecError(key, value, f"a sweep key ({', '.join(SWEEP_KEYS)}) or a trial key path: {problem}",
                                "--set")
            out = set_path(out, f"base.{key}", value)
    return out


def sweep_from_dict(data: Mapping[str, Any], source: Source = None) -> SweepSpec:
    """Validate a sweep dict (as loaded from YAML) into a SweepSpec; builds every trial once to check it."""
    _check_keys(data, source)
    name, experiment, description = _labels(data, source)
    base_given, base = _base(data.get("base") or {}, source)
    grid = _grid(data.get("grid"), source)
    overrides = _overrides(data.get("overrides"), source)
    seeds = _top_seeds(data.get("seeds", [0]), grid, source)
    resources, scheduler, search, tracking = _running(data, source)
    search = _with_space(search, data.get("search"), grid, seeds, source)
    scheduler = _with_mutations(scheduler, data.get("scheduler"), _Running(resources, scheduler, search), grid, seeds,
                                base, source)
    max_concurrent, max_failures = _limits(data, source)
    sweep = SweepSpec(name=name, base=base, experiment=experiment, description=description, grid=grid,
                      overrides=overrides, seeds=seeds, resources=resources, scheduler=scheduler, search=search,
                      tracking=tracking, max_concurrent=max_concurrent, max_failures=max_failures,
                      report=_report(data.get("report"), source), base_given=base_given)
    trials = expand(sweep, source)  # every trial must build: bad grid values and overrides fail here, not later
    unsplit = [t for t in trials if not t.spec.data.val_split]
    if tracking.models == "best" and unsplit:
        raise _fail(source, "tracking.models", "best", f"final or none: trial {unsplit[0].name} has no validation "
                    "split to pick its best checkpoint by (set data.val_split)")
    return sweep


def _freeze(value: Any) -> Any:
    """Lists inside frozen specs become tuples; mappings stay (each trial rebuilds them into specs)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _fail(source: Source, key_path: str, value: Any, expected: str) -> SpecError:
    return SpecError(key_path, value, expected, where(source, key_path, "<sweep>"))


def _trial_key_problem(key: str) -> str | None:
    """Why `key` names no field of the trial spec (None: it names one); grids, spaces, overrides and `--set`
    items all ask here."""
    try:
        check_key_path(TrialSpec, key)
    except SpecError as err:
        return err.expected
    return None


def _check_trial_key(key: str, at: str, source: Source) -> None:
    problem = _trial_key_problem(key)
    if problem:
        raise _fail(source, at, key, f"a key path of the trial spec: {problem}")


def _check_keys(data: Mapping[str, Any], source: Source) -> None:
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        raise _fail(source, str(unknown[0]), data[unknown[0]], f"one of the keys {', '.join(SWEEP_KEYS)}")


def _labels(data: Mapping[str, Any], source: Source) -> tuple[str, str | None, str]:
    """The sweep's name, its MLflow experiment and its description."""
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _fail(source, "name", name, "a sweep name of letters, digits, '-', '_' or '.' (it names the MLflow "
                    "experiment and the state directory)")
    experiment = data.get("experiment")
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise _fail(source, "experiment", experiment, "a non-empty string (the MLflow experiment name)")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise _fail(source, "description", description, "a string")
    return name, experiment, description


def _base(base_given: Any, source: Source) -> tuple[dict[str, Any], TrialSpec]:
    """`base` as written (a plain copy, which each trial starts from) and as a trial spec."""
    if not isinstance(base_given, Mapping):
        raise _fail(source, "base", base_given, "a mapping of trial settings (model, data, optim, runtime, transfer)")
    try:
        base = TrialSpec.from_dict(base_given)
    except SpecError as err:
        raise err.under("base").in_file(where(source, f"base.{err.key_path}", "<sweep>"))
    return json.loads(json.dumps(base_given)), base


def _grid(grid: Any, source: Source) -> Grid:
    if grid is None:
        return ()
    if not isinstance(grid, Mapping):
        raise _fail(source, "grid", grid, "a mapping of key path -> list of values (e.g. model.depth: [20, 32])")
    for key, values in grid.items():
        _check_trial_key(str(key), f"grid.{key}", source)
        if not isinstance(values, list) or not values:
            raise _fail(source, f"grid.{key}", values, "a non-empty list of values")
    return tuple((str(key), tuple(_freeze(v) for v in values)) for key, values in grid.items())


def _overrides(overrides: Any, source: Source) -> tuple[Override, ...]:
    if overrides is None:
        return ()
    if not isinstance(overrides, list):
        raise _fail(source, "overrides", overrides, "a list of {when: {key: value}, set: {key: value}}")
    return tuple(_override(f"overrides[{i}]", item, source) for i, item in enumerate(overrides))


def _override(at: str, item: Any, source: Source) -> Override:
    if not isinstance(item, Mapping) or set(item) != {"when", "set"}:
        raise _fail(source, at, item, "a mapping with exactly the keys `when` and `set`")
    for part in ("when", "set"):
        if not isinstance(item[part], Mapping) or not item[part]:
            raise _fail(source, f"{at}.{part}", item[part], "a non-empty mapping of trial key path -> value")
        for key, value in item[part].items():
            if part == "set" and key == "seeds":  # repeats for the matching trials
                _seeds(value, f"{at}.set.seeds", source, _OVERRIDE_SEEDS, _OVERRIDE_SEEDS)
            elif key == "seed":
                raise _fail(source, f"{at}.{part}.seed", value, "`seeds: [...]` in `set` (repeats), not `seed`")
            else:
                _check_trial_key(str(key), f"{at}.{part}.{key}", source)
    return Override(tuple((str(k), _freeze(v)) for k, v in item["when"].items()),
                    tuple((str(k), _freeze(v)) for k, v in item["set"].items()))


def _seeds(value: Any, at: str, source: Source, expected: str, repeated: str) -> tuple[int, ...]:
    """The one rule for seeds, in `seeds:` and in an override's `set`: a non-empty list of distinct whole numbers
    >= 0. `expected` and `repeated` say what was wanted, as each place words it."""
    if (not isinstance(value, list) or not value
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value)):
        raise _fail(source, at, value, expected)
    if len(set(value)) != len(value):
        raise _fail(source, at, value, repeated)
    return tuple(value)


def _top_seeds(seeds: Any, grid: Grid, source: Source) -> tuple[int, ...]:
    """`seeds:` (a bare number is one seed); a seed in the grid is refused, since `seeds:` says them."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    checked = _seeds(seeds, "seeds", source, "a non-empty list of whole numbers >= 0 (e.g. [0, 1, 2, 3, 4])",
                     "distinct seeds")
    if any(key == "seed" for key, _ in grid):
        raise _fail(source, "grid.seed", dict(grid)["seed"], "seeds in `seeds:`, not in the grid")
    return checked


@dataclasses.dataclass(frozen=True)
class _Running:
    """How the trials run and what MLflow keeps: the parts of a sweep that the spec converter builds in one call."""

    resources: ResourceSpec
    scheduler: SchedulerSpec
    search: SearchSpec
    tracking: TrackingSpec = dataclasses.field(default_factory=TrackingSpec)


def _running(data: Mapping[str, Any], source: Source) -> tuple[ResourceSpec, SchedulerSpec, SearchSpec, TrackingSpec]:
    """resources, scheduler, search (its space aside), tracking; `scheduler: asha` is short for `{kind: asha}`."""
    given = {key: data.get(key) for key in ("resources", "scheduler", "search", "tracking")}
    for key in ("scheduler", "search"):
        if isinstance(given[key], str):
            given[key] = {"kind": given[key]}
    for key, paths in (("search", "space"), ("scheduler", "mutations")):  # trial key paths: _with_space's, ...
        if isinstance(given[key], Mapping) and paths in given[key]:
            given[key] = {k: v for k, v in given[key].items() if k != paths}
    try:
        parts = from_dict(_Running, given)
    except SpecError as err:
        raise err.in_file(where(source, err.key_path, "<sweep>"))
    return parts.resources, parts.scheduler, parts.search, parts.tracking


def _with_space(search: SearchSpec, given: Any, grid: Grid, seeds: tuple[int, ...], source: Source) -> SearchSpec:
    """`search.space`: required by optuna search, which then takes no grid and one seed; refused otherwise."""
    written = given.get("space") if isinstance(given, Mapping) else None
    space = _space(written, source)
    if search.kind != "optuna":
        if space:
            raise _fail(source, "search.space", written, "no space unless search.kind is optuna")
        return search
    if not space:
        raise _fail(source, "search.space", written, f"a mapping of trial key path -> {_SPACE_FORMS} or "
                    "{choice: [values]}")
    if grid:
        raise _fail(source, "grid", dict(grid), "no grid with optuna search (put its values in search.space as "
                    "{choice: [...]})")
    if len(seeds) > 1:
        raise _fail(source, "seeds", list(seeds), "one seed with optuna search (each sample is one trial)")
    return dataclasses.replace(search, space=space)


def _with_mutations(scheduler: SchedulerSpec, given: Any, running: _Running, grid: Grid, seeds: tuple[int, ...],
                    base: TrialSpec, source: Source) -> SchedulerSpec:
    """`scheduler.mutations`: required by pbt, refused otherwise. A PBT population shares its model and seed (a
    trial continues another's weights), and PBT's learning rates are the schedule, so no milestones under them."""
    written = given.get("mutations") if isinstance(given, Mapping) else None
    mutations = _space(written, source, "scheduler.mutations")
    if scheduler.kind != "pbt" or not mutations:
        if scheduler.kind == "pbt" or mutations:
            raise _fail(source, "scheduler.mutations", written, f"mutations with scheduler.kind pbt only: a "
                        f"mapping of {', '.join(PBT_KEYS)} -> {_SPACE_FORMS} or {{choice: [values]}}")
        return scheduler
    model_keys = [key for key, _ in grid if key.startswith("model.")]
    refusals = [(f"scheduler.mutations.{d.key}", d.key, f"one of {', '.join(PBT_KEYS)} (what a running trial "
                 "can change)") for d in mutations if d.key not in PBT_KEYS]
    refusals += [("search.kind", running.search.kind, "grid or random with pbt (the population is the sweep's "
                  "trials)")] if running.search.kind == "optuna" else []
    refusals += [("seeds", list(seeds), "one seed with pbt (a trial continues another's weights)")] * (len(seeds) > 1)
    refusals += [(f"grid.{key}", dict(grid)[key], "no model key in the grid with pbt (a trial continues another's "
                  "weights)") for key in model_keys]
    refusals += [("resources.workers", running.resources.workers, "1 with pbt")] * (running.resources.workers > 1)
    if base.optim.milestones and any(d.key == "optim.lr" for d in mutations):
        refusals.append(("base.optim.milestones", list(base.optim.milestones), "[] with pbt mutating optim.lr (the "
                         "learning rates PBT chooses are the schedule)"))
    if refusals:
        raise _fail(source, *refusals[0])
    return dataclasses.replace(scheduler, mutations=mutations)


def _space(space: Any, source: Source, at: str = "search.space") -> tuple[Dimension, ...]:
    if space is None:
        return ()
    if not isinstance(space, Mapping):
        raise _fail(source, at, space, "a mapping of trial key path -> distribution")
    return tuple(_dimension(str(key), given, source, at) for key, given in space.items())


def _dimension(key: str, given: Any, source: Source, under: str) -> Dimension:
    at = f"{under}.{key}"
    _check_trial_key(key, at, source)
    if not isinstance(given, Mapping) or len(given) != 1:
        raise _fail(source, at, given, f"one of {_SPACE_FORMS}, {{choice: [values]}}")
    kind, values = next(iter(given.items()))
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise _fail(source, f"{at}.choice", values, "a non-empty list of values")
    elif kind in ("loguniform", "uniform", "int"):
        _check_range(kind, values, f"{at}.{kind}", source)
    else:
        raise _fail(source, at, kind, "loguniform, uniform, int or choice")
    return Dimension(key, kind, tuple(_freeze(v) for v in values))


def _check_range(kind: str, values: Any, at: str, source: Source) -> None:
    """[low, high] of a loguniform, uniform or int dimension."""
    numbers = isinstance(values, list) and len(values) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    if not numbers or not values[0] < values[1]:
        raise _fail(source, at, values, "[low, high], two finite numbers with low < high")
    if kind == "loguniform" and values[0] <= 0:
        raise _fail(source, at, values, "[low, high] with low > 0 (a log scale)")
    if kind == "int" and not all(isinstance(v, int) for v in values):
        raise _fail(source, at, values, "[low, high], two whole numbers")


def _limits(data: Mapping[str, Any], source: Source) -> tuple[int | None, int]:
    """max_concurrent (None: no limit) and max_failures (-1: retry forever)."""
    max_concurrent = data.get("max_concurrent")
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                       or max_concurrent < 1):
        raise _fail(source, "max_concurrent", max_concurrent, "a whole number >= 1, or null for no limit")
    max_failures = data.get("max_failures", 2)
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < -1:
        raise _fail(source, "max_failures", max_failures, "a whole number >= 0 (-1: retry forever)")
    return max_concurrent, max_failures


def _report(report: Any, source: Source) -> tuple[str, ...]:
    report = report or []
    if isinstance(report, str):
        report = [report]
    if not isinstance(report, list) or any(not isinstance(r, str) or not r for r in report):
        raise _fail(source, "report", report, "a list of report names (e.g. [table6, fig6, fig7])")
    for i, report_name in enumerate(report):
        if report_name not in REPORT_NAMES:
            raise _fail(source, f"report[{i}]", report_name, f"one of {', '.join(REPORT_NAMES)}")
    return tuple(report)
