"""The papers' qualitative findings, checked on a sweep's finished trials: held or not held, with the numbers.

The ResNet paper's central claims do not need the full 64k-iteration schedule to show; they are about how nets of
different depth and kind train, so a laptop-scale sweep can test them where it cannot reproduce Table 6:

- degradation (Sec. 4.1, 4.2; Fig. 6 left): a deeper plain net ends with higher training error than a shallower one;
- residual learning fixes it (Fig. 6 middle): a ResNet ends with lower training error than the plain net of its depth;
- Figure 7: the 3x3 layers' responses (std) of a ResNet are smaller than those of the plain net of its depth, and a
  deeper ResNet's are smaller than a shallower one's ("the deeper ResNet has smaller magnitudes of responses").

Pure functions over Rows (STYLE.md 8). "Training error at the end" is over the last LATE_SPAN iterations of the
finer curve (the final epoch's mean for a trial without one). Each value is the mean over a configuration's
finished seeds; a finding is
also checked seed by seed (seeds paired by number), and says in how many it held, which tells a robust finding
from a lucky one. A finding whose nets did not both finish is left out, not guessed.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from orchestrator.report.aggregate import Group, group_rows
from orchestrator.report.rows import Row


@dataclass(frozen=True)
class Finding:
    name: str  # "degradation", "residual trains better", "Fig. 7: residual < plain", "Fig. 7: deeper ResNet"
    held: bool  # on the means over seeds
    text: str  # one sentence with the numbers
    seeds_held: int = 0  # seeds (paired by number) in which it held
    seeds: int = 0  # seeds both nets finished

    def line(self) -> str:
        verdict = "held" if self.held else "NOT held"
        per_seed = f" Per seed: held in {self.seeds_held} of {self.seeds}." if self.seeds > 1 else ""
        return f"{self.name}: {verdict}. {self.text}{per_seed}"


def mean_layer_response(row: Row) -> float | None:
    """Figure 7 in one number: the mean std of a trial's 3x3 layer responses."""
    return statistics.fmean(row.layer_std) if row.layer_std else None


LATE_SPAN = 100  # iterations: the end of training whose error a finding compares


def late_train_error(row: Row) -> float | None:
    """Training error over the last LATE_SPAN iterations, from the finer curve (each window weighted by its
    iterations); the final epoch's mean where a trial has no curve. The curve keeps a short final epoch (a
    schedule that ends 15 iterations into an epoch) from deciding a finding on a few hundred images."""
    if not row.curve:
        return row.train_error
    end = row.curve[-1][0]
    total = weight = 0.0
    previous = 0
    for iteration, error in row.curve:
        if iteration > end - LATE_SPAN:
            span = iteration - max(previous, end - LATE_SPAN)
            total, weight = total + error * span, weight + span
        previous = iteration
    return total / weight if weight else row.train_error


def _values(group: Group, metric: Callable[[Row], float | None]) -> dict[int, float]:
    return {r.seed: v for r in group.finished if (v := metric(r)) is not None}


def _compare(name: str, low: Group, high: Group, metric: Callable[[Row], float | None],
             sentence: Callable[[float, float], str]) -> Finding | None:
    """The finding 'metric(low) < metric(high)': on the means, and seed by seed."""
    a, b = _values(low, metric), _values(high, metric)
    if not a or not b:
        return None
    mean_a, mean_b = statistics.fmean(a.values()), statistics.fmean(b.values())
    paired = sorted(set(a) & set(b))
    return Finding(name, mean_a < mean_b, sentence(mean_a, mean_b),
                   sum(a[s] < b[s] for s in paired), len(paired))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _label(group: Group) -> str:
    return ("ResNet" if group.config.residual else "plain") + f"-{group.config.depth}"


def findings(rows: Iterable[Row]) -> tuple[Finding, ...]:
    """Every finding the finished CIFAR-style (or synthetic) plain and residual nets can test, per dataset."""
    groups = [g for g in group_rows(rows).values()
              if g.config.family == "cifar" and not g.config.preact and g.config.shortcut == "A" and g.finished]
    out: list[Finding] = []
    for dataset in sorted({g.config.dataset for g in groups}):
        scope = {(g.config.residual, g.config.depth): g for g in groups if g.config.dataset == dataset}
        plain = sorted(d for r, d in scope if not r)
        residual = sorted(d for r, d in scope if r)
        where = f" ({dataset})"
        if len(plain) >= 2:  # the shallowest against the deepest plain net
            low, high = scope[(False, plain[0])], scope[(False, plain[-1])]
            out.append(_compare(
                "Degradation" + where, low, high, late_train_error,
                lambda a, b, lo=low, hi=high: f"training error at the end {_label(hi)} {_pct(b)} vs {_label(lo)} "
                                              f"{_pct(a)} (the paper: the deeper plain net is worse)."))
        for depth in sorted(set(plain) & set(residual)):
            res, pl = scope[(True, depth)], scope[(False, depth)]
            out.append(_compare(
                f"ResNet-{depth} trains better than plain-{depth}" + where, res, pl, late_train_error,
                lambda a, b, d=depth: f"training error at the end ResNet-{d} {_pct(a)} vs plain-{d} {_pct(b)}."))
            out.append(_compare(
                f"Fig. 7: ResNet-{depth} responds less than plain-{depth}" + where, res, pl, mean_layer_response,
                lambda a, b, d=depth: f"mean std of the 3x3 layer responses ResNet-{d} {a:.3f} vs plain-{d} "
                                      f"{b:.3f}."))
        if len(residual) >= 2:
            low, high = scope[(True, residual[0])], scope[(True, residual[-1])]
            out.append(_compare(
                f"Fig. 7: ResNet-{residual[-1]} responds less than ResNet-{residual[0]}" + where, high, low,
                mean_layer_response,
                lambda a, b, lo=low, hi=high: f"mean std of the 3x3 layer responses {_label(hi)} {a:.3f} vs "
                                              f"{_label(lo)} {b:.3f}."))
    return tuple(f for f in out if f is not None)
