"""The papers' tables a report can build, by name, and which of them a sweep's finished runs can fill.

Each table is a pure function of the sweep's Rows and the papers' values (paper_values.yaml) to a `Table`, in a
module of its own per table family; `formats` writes it. A row the paper lists but no trial finished is kept and
marked missing; reference rows (other methods in the paper's table) carry only the paper's value. Synthetic data
stands in for the dataset a paper table uses, with a note saying the numbers do not compare.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from orchestrator.report.cells import Table
from orchestrator.report.cifar_table import table6
from orchestrator.report.cost_table import table1
from orchestrator.report.imagenet_tables import table2, table3
from orchestrator.report.resnext_table import resnext
from orchestrator.report.rows import Row

TABLES: dict[str, Callable[[Iterable[Row], Mapping[str, Any]], Table]] = {
    "table6": table6, "table1": table1, "table2": table2, "table3": table3, "resnext": resnext}


def fillable(name: str, rows: Iterable[Row]) -> bool:
    """Whether any finished trial gives this report a measured value (reports a sweep does not name are built
    only then)."""
    finished = [r for r in rows if r.finished]
    if name == "table6":
        return any(r.family == "cifar" for r in finished)
    if name == "table1":
        return bool(finished)
    if name == "table2":
        return any(r.family == "imagenet" and r.depth in (18, 34) for r in finished)
    if name == "table3":
        return any(r.family == "imagenet" for r in finished)
    if name == "resnext":
        return any(r.family == "resnext" for r in finished)
    if name == "fig6":
        return any(len(r.history) >= 1 for r in finished)
    if name == "fig7":
        return any(r.layer_std for r in finished)
    return False
