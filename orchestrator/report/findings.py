"""The papers' qualitative findings, checked on a sweep's finished trials: held or not held, with the numbers.

The ResNet paper's central claims do not need the full 64k-iteration schedule to show; they are about how nets of
different depth and kind train, so a laptop-scale sweep can test them where it cannot reproduce Table 6:

- degradation (Sec. 4.1, Fig. 4 left; Sec. 4.2, Fig. 6 left): a deeper plain net has higher training error than
  a shallower one, throughout training (see `degradation` for how that is compared);
- residual learning reverses it (Sec. 4.1, Fig. 4 right): the deeper ResNet ends with lower training error than
  the shallower one;
- residual learning fixes it (Fig. 4, Fig. 6 middle): a ResNet ends with lower training error than the plain net of
  its depth;
- Figure 7 (the CIFAR nets only, as in the paper): the 3x3 layers' responses (std) of a ResNet are smaller than those of
  the plain net of its depth, and a deeper ResNet's are smaller than a shallower one's ("the deeper ResNet has
  smaller magnitudes of responses").

Pure functions over Rows, one judge per finding: every report section that speaks of a finding (the tables'
degradation notes too) cites these. "Training error at the end" is over the last LATE_SPAN iterations of the finer
curve (the final epoch's mean for a trial without one). Each value is the mean over a configuration's finished
seeds; a finding is also checked seed by seed (seeds paired by number), and says in how many it held, which tells a
robust finding from a lucky one. A finding whose nets did not finish is left out, not guessed.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from orchestrator.report.aggregate import Group, group_rows
from orchestrator.report.rows import Row

FAMILIES = ("cifar", "imagenet")  # the plain and residual nets of ResNet Sec. 4.2 and Sec. 4.1
Scope = dict[tuple[bool, int], Group]  # (residual, depth) -> the nets a finding compares, of one family and dataset


@dataclass(frozen=True)
class Finding:
    name: str  # "Degradation (cifar10)", "ResNet-56 trains better than plain-56 (cifar10)", ...
    held: bool  # on the means over seeds
    text: str  # one sentence with the numbers
    seeds_held: int = 0  # seeds (paired by number) in which it held
    seeds: int = 0  # seeds every compared net finished

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


@dataclass(frozen=True)
class Course:
    """A net's training error through training: each epoch's mean at the iteration the epoch ended, the last
    epoch's replaced by the end of training (late_train_error)."""

    during: tuple[tuple[int, float], ...]
    end: float


def course(rows: Sequence[Row]) -> Course:
    """The course of one trial, or of several (seeds) meaned point by point; rows need a training error at the end."""
    points: dict[int, list[float]] = {}
    for row in rows:
        for point in row.history[:-1]:
            if point.train_error is not None:
                points.setdefault(point.iteration, []).append(point.train_error)
    return Course(tuple(sorted((i, statistics.fmean(v)) for i, v in points.items())),
                  statistics.fmean(late_train_error(r) for r in rows))


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


def scopes(rows: Iterable[Row], family: str) -> dict[str, Scope]:
    """The nets of `family` the findings compare, per dataset: no pre-activation nets, and ResNets with option A
    shortcuts, the paper's in its plain-vs-residual comparisons (Sec. 4.1 Table 2 and Fig. 4, Sec. 4.2). A dataset
    is listed even when none of its nets finished, so a note can say what is missing."""
    out: dict[str, Scope] = {}
    for group in group_rows(rows).values():
        c = group.config
        if c.family == family and not c.preact and (not c.residual or c.shortcut == "A"):
            out.setdefault(c.dataset, {})[(c.residual, c.depth)] = group
    return dict(sorted(out.items()))


def depths(scope: Scope, residual: bool) -> list[int]:
    """Depths of the plain (or residual) nets in `scope` with a finished trial."""
    return sorted(d for (r, d), g in scope.items() if r == residual and g.finished)


def degradation(scope: Scope, dataset: str) -> Finding | None:
    """Degradation: held when each deeper plain net has higher training error than the next shallower one, at
    the end of training and at every earlier epoch both measured; None below two finished plain depths.

    The comparison is the paper's own statement. Sec. 4.1: "the 34-layer plain net has higher training error
    throughout the whole training procedure" than the 18-layer one, hence every epoch and not the end alone (a
    deeper net that trains better for most of its schedule and falls behind only at the end is not what the paper
    saw). Sec. 4.2, Fig. 6 left: "the deep plain nets suffer from increased depth, and exhibit higher training
    error when going deeper", at each step of depth, hence adjacent depths: comparing the shallowest with the
    deepest alone would call a sweep degraded whose plain-56 trains better than its plain-32. The end is over the
    last LATE_SPAN iterations, so a short final epoch does not decide it; earlier epochs are compared at the
    iterations both nets ended one (with the same schedule, every epoch).
    """
    measured = [(g, {r.seed: r for r in g.finished if late_train_error(r) is not None})
                for g in (scope[(False, d)] for d in depths(scope, residual=False))]
    measured = [(g, rows) for g, rows in measured if rows]
    if len(measured) < 2:
        return None
    labels, finished = [_label(g) for g, _ in measured], [rows for _, rows in measured]
    means = [course(list(rows.values())) for rows in finished]
    held, detail = _rises(labels, means)
    seeds = sorted(set.intersection(*(set(rows) for rows in finished)))
    seeds_held = sum(_rises(labels, [course([rows[s]]) for rows in finished])[0] for s in seeds)
    ends = " vs ".join(f"{label} {_pct(c.end)}" for label, c in reversed(list(zip(labels, means))))
    return Finding(f"Degradation ({dataset})", held, f"training error at the end {ends}{detail} (the paper: the "
                   f"deeper plain net is worse, throughout training).", seeds_held, len(seeds))


def _rises(labels: list[str], courses: list[Course]) -> tuple[bool, str]:
    """(whether each course lies above the one before it, at the end and at each earlier point both have; what
    the text adds: where it did not, or how many earlier points agree)."""
    pairs = list(zip(zip(labels, courses), zip(labels[1:], courses[1:])))
    if any(high.end <= low.end for (_, low), (_, high) in pairs):
        return False, ""
    compared = set()
    for (low_label, low), (high_label, high) in pairs:
        before = dict(low.during)
        for iteration, error in high.during:
            if iteration not in before:
                continue
            if error <= before[iteration]:
                return False, (f"; but at iteration {iteration:,} {high_label} {_pct(error)} vs {low_label} "
                               f"{_pct(before[iteration])}")
            compared.add(iteration)
    return True, f", and higher at all {len(compared)} earlier epochs" if compared else ""


def deeper_resnet(scope: Scope, dataset: str) -> Finding | None:
    """Residual learning reverses degradation: the deepest ResNet ends with lower training error than the
    shallowest (Sec. 4.1: "the 34-layer ResNet exhibits considerably lower training error" than the 18-layer,
    a claim about the end of training, not its course)."""
    residual = depths(scope, residual=True)
    if len(residual) < 2:
        return None
    low, high = scope[(True, residual[0])], scope[(True, residual[-1])]
    return _compare(f"{_label(high)} trains better than {_label(low)} ({dataset})", high, low, late_train_error,
                    lambda a, b: f"training error at the end {_label(high)} {_pct(a)} vs {_label(low)} {_pct(b)} "
                                 f"(the paper: the deeper ResNet is better).")


def _residual_vs_plain(scope: Scope, dataset: str, figure7: bool) -> list[Finding | None]:
    """ResNet-d against plain-d at each depth both ran (training error at the end; Figure 7's responses when
    `figure7`), then Figure 7's deepest ResNet against its shallowest."""
    where = f" ({dataset})"
    plain, residual = depths(scope, residual=False), depths(scope, residual=True)
    out: list[Finding | None] = []
    for depth in sorted(set(plain) & set(residual)):
        res, pl = scope[(True, depth)], scope[(False, depth)]
        out.append(_compare(
            f"ResNet-{depth} trains better than plain-{depth}" + where, res, pl, late_train_error,
            lambda a, b, d=depth: f"training error at the end ResNet-{d} {_pct(a)} vs plain-{d} {_pct(b)}."))
        if figure7:
            out.append(_compare(
                f"Fig. 7: ResNet-{depth} responds less than plain-{depth}" + where, res, pl, mean_layer_response,
                lambda a, b, d=depth: f"mean std of the 3x3 layer responses ResNet-{d} {a:.3f} vs plain-{d} "
                                      f"{b:.3f}."))
    if figure7 and len(residual) >= 2:
        low, high = scope[(True, residual[0])], scope[(True, residual[-1])]
        out.append(_compare(
            f"Fig. 7: {_label(high)} responds less than {_label(low)}" + where, high, low, mean_layer_response,
            lambda a, b: f"mean std of the 3x3 layer responses {_label(high)} {a:.3f} vs {_label(low)} {b:.3f}."))
    return out


def findings(rows: Iterable[Row]) -> tuple[Finding, ...]:
    """Every finding the finished plain and residual nets (CIFAR-style, ImageNet-style, or synthetic stand-ins)
    can test, per family and dataset."""
    rows = list(rows)  # read once per family
    out: list[Finding | None] = []
    for family in FAMILIES:
        for dataset, scope in scopes(rows, family).items():
            out += [degradation(scope, dataset), deeper_resnet(scope, dataset)]
            out += _residual_vs_plain(scope, dataset, figure7=family == "cifar")
    return tuple(f for f in out if f is not None)
