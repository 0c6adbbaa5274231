"""The papers' numbers (paper_values.yaml, beside this module): what reports and `models` compare against."""
from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def paper_values() -> dict[str, Any]:
    """paper_values.yaml: every number the papers print that the project compares against."""
    text = resources.files("orchestrator.report").joinpath("paper_values.yaml").read_text()
    return yaml.safe_load(text)


def paper_figures(name: str) -> dict[str, Any]:
    return paper_values()["architectures"].get(name, {})
