"""Code a reader takes in at a glance: short functions in `resnet_core`, short modules in `orchestrator`, and
comments that explain themselves instead of pointing at a tracker or at notes a person who clones the code does
not have. Read from the source files (with `ast` for functions), without importing the project."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 60  # def line to the body's last line, decorators excluded
MAX_MODULE_LINES = 350
# A tracker's issue number (the word, an optional "#", digits) or a project note that is not part of the code (the
# style, product and paper notes in Markdown, the shared folder beside the checkout). This file is not scanned.
POINTERS = re.compile(r"\bissues? ?#?\d+\b|\b(?:STYLE|PRODUCT|PAPER)\.md\b|\.\./shared\b", re.IGNORECASE)


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_no_function_in_resnet_core_is_longer_than_60_lines():
    long = []
    for path in _sources("resnet_core"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{_where(path, node.lineno)} {node.name} is {length} lines")
    assert long == [], f"split into named steps of at most {MAX_FUNCTION_LINES} lines: " + ", ".join(long)


def test_no_module_in_orchestrator_is_longer_than_350_lines():
    long = [f"{_where(path, 1)} has {n} lines" for path in _sources("orchestrator")
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert long == [], f"split by job into modules of at most {MAX_MODULE_LINES} lines: " + ", ".join(long)


def test_comments_say_the_reason_not_an_issue_number_or_a_note_file():
    this = Path(__file__).resolve()
    found = [f"{_where(path, number)}: {match.group(0)!r}"
             for path in _sources("resnet_core", "orchestrator", "tests", "bench") if path.resolve() != this
             for number, line in enumerate(path.read_text().splitlines(), 1)
             for match in POINTERS.finditer(line)]
    assert found == [], "state the reason itself, or cite the paper's section, table or figure: " + ", ".join(found)
