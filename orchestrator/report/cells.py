"""A report table and the text of its cells: measured values, the paper's, their difference, sizes and run counts.

Pure functions over grouped trials. Errors come in as fractions and go out in percent, like the papers; a cell with
nothing to show is MISSING.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.report.aggregate import Config, Group
from orchestrator.report.rows import Row

MISSING = "—"  # em dash: no value (not run, not finished, or the paper does not print one)


@dataclass(frozen=True)
class Table:
    """One report table: already-formatted cells, so every format shows the same text."""

    name: str  # report and file name: table6, table1, ...
    title: str
    source: str  # the paper's table the reference values come from
    columns: tuple[str, ...]
    align: str  # one of "l" / "r" per column
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # the rows no trial has finished yet, and why

    def __post_init__(self) -> None:
        if len(self.align) != len(self.columns) or any(len(r) != len(self.columns) for r in self.rows):
            raise ValueError(f"table {self.name}: every row needs {len(self.columns)} cells")

    @property
    def verdicts(self) -> tuple[str, ...]:
        """Every filled verdict cell (columns named '... verdict'), for the report's reproduction count."""
        columns = [i for i, name in enumerate(self.columns) if name.endswith("verdict")]
        return tuple(line[i] for line in self.rows for i in columns if line[i] != MISSING)


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.2f}"


def measured_text(group: Group | None, metric: Callable[[Row], float | None]) -> str:
    """'6.43 (6.61 ± 0.16)' over several seeds as the paper writes ResNet-110's row, '8.75' for one, '—' for none."""
    summary = group.summary(metric) if group is not None else None
    if summary is None or summary.best is None:
        return MISSING
    if summary.std is None:
        return percent(summary.best)
    return f"{percent(summary.best)} ({percent(summary.mean)} ± {100 * summary.std:.2f})"


def paper_text(entry: Mapping[str, Any] | None, key: str) -> str:
    """The paper's value as the paper prints it: '6.43 (6.61 ± 0.16)' where it gives mean and std."""
    if entry is None or entry.get(key) is None:
        return MISSING
    text = f"{float(entry[key]):.2f}"
    if key in ("error", "top1") and entry.get("mean") is not None and entry.get("std") is not None:
        text += f" ({float(entry['mean']):.2f} ± {float(entry['std']):.2f})"
    return text


def diff_text(group: Group | None, metric: Callable[[Row], float | None], entry: Mapping[str, Any] | None,
              key: str) -> str:
    """Best measured minus the paper's value, in percentage points."""
    best = group.summary(metric).best if group is not None else None
    if best is None or entry is None or entry.get(key) is None:
        return MISSING
    return f"{100 * best - float(entry[key]):+.2f}"


def count_text(value: float | None) -> str:
    """Parameters or multiply-adds: 0.27M, 1.82G."""
    if value is None:
        return MISSING
    return f"{value / 1e9:.2f}G" if value >= 1e9 else f"{value / 1e6:.2f}M"


def ratio_text(measured: float | None, paper: float | None) -> str:
    if measured is None or paper is None:
        return MISSING
    return f"{100 * (measured / paper - 1):+.1f}%"


def runs_text(group: Group | None) -> str:
    """'3/3 finished', '1/2 finished, 1 diverged', 'not run'."""
    if group is None:
        return "not run"
    text = f"{len(group.finished)}/{len(group.rows)} finished"
    status = group.status()
    return f"{text}, {status}" if status else text


def first_cost(group: Group | None, attr: str) -> int | None:
    """A configuration's size, `params` or `macs`, from the first of its trials that has it (all have the same)."""
    if group is None:
        return None
    return next((getattr(r, attr) for r in group.rows if getattr(r, attr) is not None), None)


def net_name(config: Config) -> str:
    """'ResNet', 'plain', 'ResNet (B)', 'ResNet preact': how the paper names the row, plus what differs."""
    name = "ResNet" if config.residual else "plain"
    if config.preact:
        name += " preact"
    default_shortcut = "A" if config.family == "cifar" else "B"
    return name + (f" ({config.shortcut})" if config.residual and config.shortcut != default_shortcut else "")


def missing_line(label: str, group: Group | None) -> str | None:
    """A cell the sweep has trials for but none finished yet (a row no trial is planned for says 'not run' in
    the table and is not listed as missing)."""
    if group is None or group.finished:
        return None
    return f"{label}: {group.status()}"


def stands_in(dataset: str, paper_dataset: str) -> bool:
    return dataset == paper_dataset or dataset == "synthetic"
