"""Group trials by configuration and summarise over seeds: best, mean ± std (the paper's ResNet-110 row).

Pure functions over Rows. A configuration with no finished trial stays in the result as a missing cell that says
why (running, diverged, failed), so tables show it instead of dropping it.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from orchestrator.contract import DIVERGED, FINISHED, RUNNING, STOPPED, TRIAL_STATES
from orchestrator.report.rows import Row


@dataclass(frozen=True, order=True)
class Config:
    """What a table row is about: everything that defines a trial's network and data, but not its seed."""

    dataset: str
    family: str
    depth: int
    residual: bool
    shortcut: str
    cardinality: int
    width: int
    preact: bool = False

    @classmethod
    def of(cls, row: Row) -> "Config":
        return cls(row.dataset, row.family, row.depth, row.residual, row.shortcut, row.cardinality, row.width,
                   row.preact)


@dataclass(frozen=True)
class Summary:
    """One value (an error, a fraction) over the finished seeds of one configuration."""

    values: tuple[float, ...]  # finished seeds' values, in seed order

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def best(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1); None below two runs, where it is undefined."""
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


@dataclass(frozen=True)
class Group:
    """All trials of one configuration."""

    config: Config
    rows: tuple[Row, ...]

    @property
    def arch(self) -> str:
        return self.rows[0].arch

    @property
    def finished(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.finished)

    def states(self) -> dict[str, int]:
        """Trials per state, e.g. {'finished': 2, 'diverged': 1}."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    @property
    def diverged(self) -> bool:
        return any(r.state == DIVERGED for r in self.rows)

    @property
    def missing(self) -> bool:
        return not self.finished

    def summary(self, metric: Callable[[Row], float | None]) -> Summary:
        """`metric` over finished trials that measured it (a finished run without the metric is skipped)."""
        values = [metric(r) for r in sorted(self.finished, key=lambda r: r.seed)]
        return Summary(tuple(v for v in values if v is not None))

    def best_row(self, metric: Callable[[Row], float | None]) -> Row | None:
        """The finished trial with the lowest `metric`: the run a figure draws for this configuration."""
        scored = [r for r in self.finished if metric(r) is not None]
        return min(scored, key=lambda r: (metric(r), r.seed)) if scored else None

    def status(self) -> str:
        """'' when every trial finished, else what the others are doing: '1 running (3200/64000 it), 1 diverged'.
        """
        parts = []
        for state in (s for s in TRIAL_STATES if s != FINISHED):
            rows = [r for r in self.rows if r.state == state]
            if not rows:
                continue
            text = f"{len(rows)} {state}"
            if state in (RUNNING, STOPPED) and len(rows) == 1 and rows[0].iteration is not None \
                    and rows[0].iterations:
                text += f" ({'at ' if state == STOPPED else ''}{rows[0].iteration}/{rows[0].iterations} it)"
            parts.append(text)
        return ", ".join(parts)


def group_rows(rows: Iterable[Row]) -> dict[Config, Group]:
    """Rows grouped by configuration, in configuration order."""
    grouped: dict[Config, list[Row]] = {}
    for row in rows:
        grouped.setdefault(Config.of(row), []).append(row)
    return {config: Group(config, tuple(sorted(grouped[config], key=lambda r: (r.seed, r.run_name))))
            for config in sorted(grouped)}


def final_test_error(row: Row) -> float | None:
    return row.test_error


def final_train_error(row: Row) -> float | None:
    return row.train_error


def final_top5_error(row: Row) -> float | None:
    return row.top5_error
