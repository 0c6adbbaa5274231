"""Safe YAML loading that remembers where each key sits, so errors can name the file and the line.

One parse (resnet_core/yaml12.py: YAML 1.2's booleans and numbers) gives the node tree with marks and the plain
data constructed from it. Keys inside `grid:` and `when:`/`set:` are dotted paths themselves (`model.depth`), so
lookup matches the longest written key that prefixes the remaining path.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from resnet_core import yaml12
from resnet_core.specio import SpecError

_INDEX = re.compile(r"^(.*?)\[(\d+)\]$")


class YamlSource:
    """Parsed YAML text plus its node tree; `where(key_path)` says 'file:line' for error messages."""

    def __init__(self, text: str, name: str):
        self.name = name
        try:
            self._root, self.data = yaml12.compose_and_load(text)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = f":{mark.line + 1}" if mark else ""
            raise SpecError("", _short(text, mark), f"valid YAML ({err.problem or err})", f"{name}{line}") from None
        except yaml.YAMLError as err:
            raise SpecError("", "<file>", f"valid YAML ({err})", name) from None
        _refuse_duplicate_keys(self._root, name)

    @classmethod
    def from_file(cls, path: str | Path) -> "YamlSource":
        """Read a sweep file; a missing, unreadable or non-text file is a SpecError whose key path is the file
        itself (the whole file is what is wrong, so no key inside it, and no `<top level>`, is named)."""
        file = Path(path)
        try:
            text = file.read_text()
        except FileNotFoundError:
            raise SpecError(str(path), "no such file", "an existing sweep file (e.g. sweeps/smoke.yaml)") from None
        except IsADirectoryError:
            raise SpecError(str(path), "a directory", "a sweep file (e.g. sweeps/smoke.yaml)") from None
        except UnicodeDecodeError as err:
            raise SpecError(str(path), f"bytes that are not UTF-8 text (at byte {err.start})",
                            "a YAML text file") from None
        except OSError as err:  # no permission, I/O error, a name too long
            raise SpecError(str(path), f"an unreadable file ({err.strerror or err.__class__.__name__})",
                            "a readable YAML text file") from None
        return cls(text, str(path))

    def where(self, key_path: str) -> str:
        """'file:line' of the deepest node on `key_path` that the file has ('file' alone if none)."""
        line = _line(self._root, key_path)
        return f"{self.name}:{line}" if line else self.name


def _refuse_duplicate_keys(root: Any, name: str) -> None:
    """PyYAML keeps the last of two equal keys without a word; a sweep file that says `lr` twice is a mistake."""
    stack, seen_nodes = [(root, "")], set()
    while stack:
        node, path = stack.pop()
        if node is None or id(node) in seen_nodes:  # aliases share nodes (and may be cyclic)
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[tuple[str, str]] = set()
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    at = f"{path}.{key_node.value}" if path else str(key_node.value)
                    if key in keys:
                        raise SpecError(at, key_node.value, "each key once in a mapping (a second one would "
                                        "silently replace the first)", f"{name}:{key_node.start_mark.line + 1}")
                    keys.add(key)
                    stack.append((value_node, at))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))


def _line(node: Any, key_path: str) -> int | None:
    best = node.start_mark.line + 1 if node is not None and key_path == "" else None
    while node is not None and key_path:
        if isinstance(node, yaml.MappingNode):
            match = None
            for key_node, value_node in node.value:
                key = str(key_node.value)
                rest = _rest(key_path, key)
                if rest is not None and (match is None or len(key) > len(match[0])):
                    match = (key, rest, key_node, value_node)
            if match is None:
                return best
            _, key_path, key_node, node = match
            best = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            index = _INDEX.match(key_path.split(".", 1)[0]) if key_path.startswith("[") else None
            if index is None:
                return best
            i = int(index.group(2))
            if i >= len(node.value):
                return best
            node = node.value[i]
            best = node.start_mark.line + 1
            key_path = key_path[len(index.group(0)):].lstrip(".")
        else:
            return best
    return best


def _rest(key_path: str, key: str) -> str | None:
    """What is left of `key_path` after a mapping key `key` ('' when it is all), None when it does not match."""
    if key_path == key:
        return ""
    for sep in (".", "["):
        if key_path.startswith(key + sep):
            return key_path[len(key) + (1 if sep == "." else 0):]
    return None


def _short(text: str, mark: Any) -> str:
    if mark is None:
        return "<file>"
    lines = text.splitlines()
    return lines[mark.line].strip() if mark.line < len(lines) else "<end of file>"


def where(source: YamlSource | None, key_path: str, otherwise: str | None = None) -> str | None:
    """'file:line' of `key_path` for a sweep read from a file, else `otherwise` (a dict has no lines to name)."""
    return source.where(key_path) if source else otherwise
