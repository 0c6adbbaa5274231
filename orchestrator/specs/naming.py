"""A trial's id and name: the id a hash of what it computes, the name what a person reads (`resnet110-A-seed0`).

Names become Tune's trial directories and MLflow run names, so they are unique within a sweep and safe in a path.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping, Sequence

from resnet_core.spec import ModelSpec, TrialSpec
from resnet_core.specio import flatten, to_dict

# Settings the architecture name already says (resnet110-A, plain20, resnext29_8x64d).
_IN_MODEL_NAME = {"model", "model.family", "model.depth", "model.n", "model.residual", "model.preact",
                  "model.cardinality", "model.width", "model.shortcut", "seed"}


def trial_id_of(spec: TrialSpec, resolved: Mapping[str, Any] | None = None) -> str:
    """Stable id: the first 12 hex digits of SHA-1 over the resolved trial dict (sorted keys); `resolved` is
    `spec.to_dict()` where the caller has it already."""
    text = json.dumps(spec.to_dict() if resolved is None else resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def shortcut_suffix(model: ModelSpec, shortcuts_vary: bool) -> str:
    """`-A` after the architecture: always on CIFAR ResNets, on ImageNet ones only where the sweep's trials differ
    in it (most keep B throughout), never on ResNeXt (its names, as its paper writes them, carry none)."""
    if model.family == "resnext" or (model.family != "cifar" and not shortcuts_vary):
        return ""
    return f"-{model.shortcut}"


def ids_and_names(specs: Sequence[TrialSpec], varied: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Each trial's id and name; `varied` holds the values that set each trial apart. Both read the trial's
    resolved dict, made once per trial."""
    resolved = [to_dict(spec) for spec in specs]
    ids = [trial_id_of(spec, r) for spec, r in zip(specs, resolved)]
    return list(zip(ids, trial_names(specs, [flatten(r) for r in resolved], varied, ids)))


def trial_names(specs: Sequence[TrialSpec], flats: Sequence[Mapping[str, Any]],
                varied: Sequence[Mapping[str, Any]], ids: Sequence[str]) -> list[str]:
    """resnet110-A-seed0; plus `key=value` for whatever else differs between trials; unique within the sweep.
    `flats` are the specs flattened to key paths, `ids` their trial ids (a name two trials share gets the id)."""
    grid_keys = [k for k in (varied[0] if varied else {}) if k not in _IN_MODEL_NAME]
    differing = [k for k in grid_keys if len({json.dumps(v.get(k), sort_keys=True) for v in varied}) > 1]
    shortcuts_vary = len({s.model.shortcut for s in specs if s.model.family != "resnext"}) > 1
    names = []
    for spec, flat, chosen in zip(specs, flats, varied):
        shown = {key: flat.get(key, chosen.get(key)) for key in differing}
        names.append(_name(spec, shortcut_suffix(spec.model, shortcuts_vary), shown, f"-seed{spec.seed}"))
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if counts[n] == 1 else f"{n}-{trial_id[:6]}" for n, trial_id in zip(names, ids)]


def sample_name(spec: TrialSpec, chosen: Mapping[str, Any], number: int) -> str:
    """A searched trial's name: every sampled value (it alone says what sets the sample apart), the seed and the
    sample's number (`...-s3`). Its shortcut is named as a grid trial's would be where the sweep's shortcuts agree:
    a space that varies model.shortcut names it among the sampled values."""
    return _name(spec, shortcut_suffix(spec.model, False), chosen, f"-seed{spec.seed}-s{number}")


def _name(spec: TrialSpec, shortcut: str, shown: Mapping[str, Any], tail: str) -> str:
    keys = list(shown)
    parts = "".join(f"-{short_key(key, keys)}{short_value(value)}" for key, value in shown.items())
    return path_safe(f"{spec.model.name}{shortcut}{parts}{tail}")


def path_safe(name: str) -> str:
    """Names become directory names (Tune's trial directories): only characters safe in a path component."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


def short_key(key: str, all_keys: Sequence[str]) -> str:
    """The last part of a key path (`lr`), or the whole path with `_` where two keys end alike."""
    leaf = key.rsplit(".", 1)[-1]
    clash = sum(1 for k in all_keys if k.rsplit(".", 1)[-1] == leaf) > 1
    return key.replace(".", "_") if clash else leaf


def short_value(value: Any) -> str:
    """A value as a name shows it: `0.01`, `true`, lists and mappings joined with `_`."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "_".join(short_value(v) for v in value)
    if isinstance(value, dict):
        return "_".join(f"{k}{short_value(v)}" for k, v in value.items())
    return str(value).lower() if isinstance(value, bool) else str(value)
