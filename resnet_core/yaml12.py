"""YAML read as people write it: PyYAML's safe loader with YAML 1.2's core schema for booleans and numbers.

PyYAML implements YAML 1.1, which reads `on`, `off`, `yes` and `no` as booleans, `1e-4` (no dot) as a string and
`012` as octal. YAML 1.2's core schema, and every reader of a sweep file, sees the word "on", the number 0.0001 and
twelve. Sweep files, `--set` values and the sweep copies kept for `resume` and reports all go through `load`, so
a value means the same wherever it is written. (ruamel.yaml implements YAML 1.2 whole; these three resolvers are
all this project needs of it, and PyYAML's node marks already give error messages their line numbers.)
"""
from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL, _INT, _FLOAT = ("tag:yaml.org,2002:" + t for t in ("bool", "int", "float"))


class Loader(yaml.SafeLoader):
    """SafeLoader (no Python tags: nothing in a file can run code) with YAML 1.2 core's bool, int and float."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
Loader.add_implicit_resolver(_FLOAT, re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
Loader.add_constructor(_INT, lambda loader, node: int(loader.construct_scalar(node), 10))  # 012 is twelve


class Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes what YAML 1.2's core schema would read as a bool or a number: the string
    "1e5" is written "'1e5'", so `load` reads it back as the string it was (PyYAML alone writes it bare, as YAML 1.1
    reads it)."""


for _first, _resolvers in Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        if _tag in (_BOOL, _INT, _FLOAT):
            Dumper.add_implicit_resolver(_tag, _regexp, [_first])


def dump(data: Any) -> str:
    """Plain data as YAML (keys in their order) that `load` reads back equal."""
    return yaml.dump(data, Dumper=Dumper, sort_keys=False)


def load(text: str) -> Any:
    """One YAML document as plain data (dicts, lists, str, int, float, bool, None)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506  Loader is a SafeLoader


def compose_and_load(text: str) -> tuple[Any, Any]:
    """The document's node tree (with line marks, for error messages) and its data, from a single parse."""
    loader = Loader(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()
