"""A sweep's trials: base + grid values (or sampled ones) + matching overrides, times seeds, each built and checked.

Every trial is built before anything starts, so a bad grid value or override fails `plan` and `run` alike (exit
code 2), and the error names the key of the sweep file that set the value.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from typing import Any, Mapping

from orchestrator.specs.naming import ids_and_names, sample_name, trial_id_of
from orchestrator.specs.sweep import MAX_TRIALS, SweepSpec, Trial
from orchestrator.specs.yamlsource import YamlSource, where
from resnet_core.schedule import split_sizes
from resnet_core.spec import TrialSpec
from resnet_core.specio import SpecError, flatten, plain, set_path

# Keys that `ModelSpec` resolves from each other: setting one in a grid or override drops the other from base.
_EXCLUSIVE = {"model.depth": "model.n", "model.n": "model.depth"}


def expand(sweep: SweepSpec, source: YamlSource | None = None) -> list[Trial]:
    """Every trial of the sweep in a stable order: grid combinations (or random samples) x seeds. A searched
    sweep has none before its sampler runs: its space's ends are built to check them, and [] is returned."""
    _check_count(sweep, source)
    if sweep.search.kind == "optuna":
        probe_trials(sweep, source)  # every end of the space must build; the trials themselves come later
        return []
    built: list[tuple[TrialSpec, dict[str, Any]]] = []
    for chosen in _combinations(sweep, source):
        spec, seeds = _build(sweep, chosen, source)
        built += [(dataclasses.replace(spec, seed=seed), {**chosen, "seed": seed}) for seed in seeds]
    return _named(built, sweep, source)


def _check_count(sweep: SweepSpec, source: YamlSource | None) -> None:
    """Refuse a sweep of more than MAX_TRIALS trials before building any of them."""
    repeats = max([len(sweep.seeds)] + [len(v) if isinstance(v, tuple) else 1
                                         for o in sweep.overrides for k, v in o.set if k == "seeds"])
    count = math.prod(len(values) for _, values in sweep.grid)
    if sweep.search.kind == "random":
        count = min(count, sweep.search.num_samples)
    if count * repeats > MAX_TRIALS:
        raise SpecError("grid", f"{count:,} combinations x {repeats} seeds",
                        f"at most {MAX_TRIALS:,} trials per sweep (split the sweep, or use search: "
                        "{kind: random, num_samples: N})", where(source, "grid"))


def _combinations(sweep: SweepSpec, source: YamlSource | None) -> list[dict[str, Any]]:
    """The grid's values for each trial (before seeds): every combination, or random search's samples."""
    keys = [key for key, _ in sweep.grid]
    if sweep.search.kind != "random":
        return [dict(zip(keys, combo)) for combo in itertools.product(*(values for _, values in sweep.grid))]
    total = math.prod(len(values) for _, values in sweep.grid)
    if sweep.search.num_samples > total:
        raise SpecError("search.num_samples", sweep.search.num_samples,
                        f"at most {total} (the grid's distinct combinations)", where(source, "search.num_samples"))
    # Sampling indices draws the same combinations as sampling the expanded list, without expanding it.
    picks = random.Random(sweep.search.seed).sample(range(total), sweep.search.num_samples)
    return [dict(zip(keys, _combo_at(sweep.grid, i))) for i in picks]


def _combo_at(grid: tuple[tuple[str, tuple[Any, ...]], ...], index: int) -> tuple[Any, ...]:
    """The `index`-th element of itertools.product over the grid's values (last key varies fastest)."""
    combo = []
    for _, values in reversed(grid):
        index, i = divmod(index, len(values))
        combo.append(values[i])
    return tuple(reversed(combo))


def _named(built: list[tuple[TrialSpec, dict[str, Any]]], sweep: SweepSpec,
           source: YamlSource | None) -> list[Trial]:
    """Built specs as Trials with ids and names; two trials that compute the same thing are refused."""
    trials, seen = [], {}
    for (spec, varied), (trial_id, name) in zip(built, ids_and_names([s for s, _ in built], [v for _, v in built])):
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
        expected = f"at most the {train_images} training images"
        expected += f" left after data.val_split ({held})" if held else ""
    else:
        return trial
    at = origin_of(sweep, trial, "optim.batch_size")
    raise SpecError(at, batch, f"{expected} in trial {trial.name}", where(source, at))


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
    spec, seeds = _build(sweep, chosen, source)
    spec = dataclasses.replace(spec, seed=seeds[0])
    return Trial(f"{trial_id_of(spec)}-{number}", sample_name(spec, chosen, number), spec,
                 tuple({**chosen, "seed": spec.seed}.items()))


def _rounded(value: Any) -> Any:
    """Sampled floats to 3 significant digits: a person reads (and could type) every value the sweep ran."""
    return float(f"{value:.3g}") if isinstance(value, float) else value


def _build(sweep: SweepSpec, chosen: Mapping[str, Any],
           source: YamlSource | None) -> tuple[TrialSpec, tuple[int, ...]]:
    """The trial spec for the chosen grid (or sampled) values, seed aside, and the seeds to repeat it with. It is
    built once, and again only when a matching override changes it: a seed changes nothing a build checks."""
    data, origin, spec = _chosen(sweep, chosen, source)
    overridden, origin, seeds = _overridden(sweep, data, origin, spec)
    return (spec if overridden == data else _try_build(overridden, origin, source)), seeds


def _chosen(sweep: SweepSpec, chosen: Mapping[str, Any],
            source: YamlSource | None) -> tuple[dict[str, Any], dict[str, str], TrialSpec]:
    """base + the chosen values: the trial dict, where each value came from (for error messages), and its spec."""
    given_by = "search.space" if sweep.search.kind == "optuna" else "grid"  # what chose the values
    data: dict[str, Any] = json.loads(json.dumps(sweep.base_given))
    origin: dict[str, str] = {}
    for key, value in chosen.items():
        data = _set(data, key, value)
        origin[key] = f"{given_by}.{key}"
    return data, origin, _try_build(data, origin, source)


def _overridden(sweep: SweepSpec, data: dict[str, Any], origin: dict[str, str],
                spec: TrialSpec) -> tuple[dict[str, Any], dict[str, str], tuple[int, ...]]:
    """The overrides whose `when` matches `spec` applied to its dict and origins, and the seeds to repeat it with
    (an override may set `seeds`)."""
    if not sweep.overrides:
        return data, origin, sweep.seeds
    resolved = flatten(spec.to_dict())
    origin, seeds = dict(origin), sweep.seeds  # `_set` copies the dict it changes
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
    """A copy of `data` with `key` set to `value`, less the key that ModelSpec would resolve from it."""
    other = _EXCLUSIVE.get(key)
    if other:
        section, _, leaf = other.partition(".")
        if isinstance(data.get(section), Mapping):
            data = {**data, section: {k: v for k, v in data[section].items() if k != leaf}}
    return set_path(data, key, plain(value))


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
        shown = ", ".join(f"{k}={v!r}" for k, v in _shown(data, origin))
        detail = "" if at.startswith("base") else f" (trial with {shown})"
        raise SpecError(at, err.value, err.expected + detail, where(source, at, "<sweep>")) from None


def _shown(data: dict[str, Any], origin: dict[str, str]) -> list[tuple[str, Any]]:
    flat = flatten(data)
    return [(key, flat.get(key)) for key in origin if key in flat]


def origin_of(sweep: SweepSpec, trial: Trial, key_path: str) -> str:
    """Which key of the sweep file set `key_path` in `trial`: `grid.K`, `overrides[i].set.K` or `base.K`."""
    data, origin, spec = _chosen(sweep, {k: v for k, v in trial.varied if k != "seed"}, None)
    return _origin_of(key_path, _overridden(sweep, data, origin, spec)[1])


def _origin_of(key_path: str, origin: dict[str, str]) -> str:
    """Which part of the file set the value an error names: the grid or an override, else base."""
    if key_path in origin:
        return origin[key_path]
    parent = key_path.rsplit(".", 1)[0] if "." in key_path else key_path
    for key, given in origin.items():  # e.g. the grid sets model.n and ModelSpec complains about model.depth
        if key.startswith(parent + ".") or key == parent:
            return given
    return f"base.{key_path}"
