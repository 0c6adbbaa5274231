"""Typed, frozen specs from plain dicts and back, with errors that name the key path.

One generic converter serves every spec dataclass: a spec's fields and their type hints are the
schema, so there is no second copy of it to keep in step. Supported hints: bool, int, float, str, Literal[...],
X | None, tuple[T, ...] and nested spec dataclasses.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Literal, Mapping, TypeVar, Union

from resnet_core.errors import Picklable

T = TypeVar("T")

class SpecError(Picklable, ValueError):
    """Bad input: names the key path, the value and what was expected. The CLI turns it into exit code 2."""

    def __init__(self, key_path: str, value: Any, expected: str, source: str | None = None):
        self.key_path, self.value, self.expected, self.source = key_path, value, expected, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key_path or '<top level>'}: got {value!r}, expected {expected}")

    def under(self, prefix: str) -> "SpecError":
        """The same error seen from one level up (`lr` inside `optim` becomes `optim.lr`)."""
        path = f"{prefix}.{self.key_path}" if self.key_path else prefix
        return SpecError(path, self.value, self.expected, self.source)

    def in_file(self, source: str) -> "SpecError":
        return SpecError(self.key_path, self.value, self.expected, source)


class DatasetError(SpecError):
    """The dataset named by the spec is missing or unreadable; says where we looked and how to get it. Here, not
    in data.py, so a sweep's driver checks data without importing torch: a Ray job's driver that imported torch
    in its main thread after joining the cluster aborted in MKL's loader (tests/test_cluster.py)."""

    def __init__(self, root: Any, problem: str, remedy: str):
        super().__init__("data.root", str(root), f"{remedy} ({problem})")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build spec dataclass `cls` from `data`, checking every key and type; raises SpecError."""
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SpecError(path, data, f"a mapping of {_describe(cls)} keys")
    hints, fields = _schema(cls)
    given = [f.name for f in fields if f.init]
    unknown = [k for k in data if k not in given]
    if unknown:
        key = unknown[0]
        raise SpecError(_join(path, str(key)), data[key], f"one of the keys {', '.join(given)}")
    values = {name: _convert(hints[name], data[name], _join(path, name)) for name in given if name in data}
    try:
        return cls(**values)
    except SpecError as err:
        raise err.under(path) if path else err


def to_dict(spec: Any) -> dict[str, Any]:
    """Plain dict (lists, not tuples) that `from_dict` turns back into an equal spec."""
    return plain(dataclasses.asdict(spec))


def plain(value: Any) -> Any:
    """A value as YAML and JSON write it: tuples become lists, mappings dicts, at every depth."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optim': {'lr': 0.1}} -> {'optim.lr': 0.1}; the form MLflow params and `--set` keys use."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = _join(prefix, key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def set_path(data: dict[str, Any], key_path: str, value: Any) -> dict[str, Any]:
    """A copy of nested `data` with `key_path` ('optim.lr') set; parents are created as needed."""
    out = dict(data)
    head, _, rest = key_path.partition(".")
    if not rest:
        out[head] = value
        return out
    child = out.get(head)
    out[head] = set_path(dict(child) if isinstance(child, Mapping) else {}, rest, value)
    return out


def parse_set_item(item: str, example: str) -> tuple[str, Any]:
    """`KEY=VALUE` from the command line's `--set`: the key path and VALUE read as YAML; SpecError otherwise."""
    import yaml

    from resnet_core import yaml12

    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(item, item, f"KEY=VALUE (e.g. {example})", "--set")
    try:
        return key, yaml12.load(text)  # the reading of a sweep file's values: 1e-4 a number, on the word
    except yaml.YAMLError:
        raise SpecError(key, text, "a YAML value (number, true/false, string, [list], {map})", "--set") from None


def check_key_path(cls: type, key_path: str) -> None:
    """Raise SpecError unless `key_path` names a field of spec `cls` (or a field inside one)."""
    current: Any = cls
    walked = ""
    for part in key_path.split("."):
        hint = _spec_class(current)
        if hint is None:
            raise SpecError(key_path, key_path, f"a key path inside {walked or 'the spec'}; {walked} is a value")
        hints, fields = _schema(hint)
        names = [f.name for f in fields]
        if part not in names:
            raise SpecError(key_path, part, f"one of {', '.join(names)} under {walked or 'the top level'}")
        current = hints[part]
        walked = _join(walked, part)


@functools.cache
def _schema(cls: type) -> tuple[dict[str, Any], tuple[dataclasses.Field, ...]]:
    """A spec class's type hints and fields, looked up once per class: every spec built or key path checked
    reads them, and `get_type_hints` evaluates each annotation (text, under postponed evaluation) anew per call."""
    return typing.get_type_hints(cls), dataclasses.fields(cls)


def _spec_class(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    if _is_union(hint):
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def _convert(hint: Any, value: Any, path: str) -> Any:
    if _is_union(hint):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path)
        errors = []
        for arg in non_none:
            try:
                return _convert(arg, value, path)
            except SpecError as err:
                errors.append(err.expected)
        raise SpecError(path, value, " or ".join(errors))
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices or type(value) is not type(choices[0]):
            raise SpecError(path, value, "one of " + ", ".join(repr(c) for c in choices))
        return value
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise SpecError(path, value, f"a list of {_describe(item_hint)}")
        return tuple(_convert(item_hint, item, f"{path}[{i}]") for i, item in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(path, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():  # YAML reads 6.4e4 as a float
                return int(value)
            raise SpecError(path, value, "a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(path, value, "a number")
        if not math.isfinite(value):  # YAML's .nan and .inf: range checks such as `lr <= 0` let NaN through
            raise SpecError(path, value, "a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SpecError(path, value, "a string")
        return value
    raise TypeError(f"spec field {path} has a type hint the converter does not know: {hint!r}")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _describe(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return hint.__name__
    return getattr(hint, "__name__", str(hint))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
