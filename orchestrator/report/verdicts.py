"""How a measured cell stands against the paper's figure: within its spread, better or worse, or no verdict for
runs not at the paper's scale (other data, a subset, a shorter schedule)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.report.aggregate import Group
from orchestrator.report.cells import MISSING
from orchestrator.report.rows import Row

# A paper figure without a printed std gets this spread, in points: about the seed-to-seed std the papers report
# where they do (ResNet-110 6.61 ± 0.16, Highway 7.72 ± 0.16) doubled, since a single figure may be a best run.
DEFAULT_SPREAD = 0.3
WITHIN, BETTER, WORSE, NO_VERDICT = "within", "better", "worse", "no verdict"


def full_scale_gap(group: Group, dataset: str, iterations: int) -> str | None:
    """Why a group's runs do not compare with the paper's figure (None when they do): another dataset (synthetic
    stand-ins), a subset of the data, a shorter schedule than the paper's; every reason that applies."""
    rows = group.finished
    reasons = sorted({r.dataset for r in rows if r.dataset != dataset})
    if any(r.subset for r in rows):
        reasons.append("data subset")
    short = [r.iterations for r in rows if r.iterations is not None and r.iterations < iterations]
    if short:
        reasons.append(f"{min(short):,} of {iterations:,} it")
    return ", ".join(reasons) or None


def verdict_text(group: Group | None, metric: Callable[[Row], float | None], entry: Mapping[str, Any] | None,
                 key: str, dataset: str, iterations: int) -> str:
    """How the measured value stands against the paper's: 'within (+0.12, ±0.30)', 'better (-0.52, ±0.30)',
    'worse (+1.20, ±0.16)'; 'no verdict (400 of 64,000 it)' for runs not at the paper's scale; '—' for nothing
    to compare. Measured: the mean over finished seeds; the paper: its mean where it gives one (with its std as
    the spread), else its figure (spread ±DEFAULT_SPREAD points)."""
    summary = group.summary(metric) if group is not None else None
    if summary is None or summary.mean is None or entry is None or entry.get(key) is None:
        return MISSING
    gap = full_scale_gap(group, dataset, iterations)
    if gap is not None:
        return f"{NO_VERDICT} ({gap})"
    has_spread = key in ("error", "top1") and entry.get("mean") is not None and entry.get("std") is not None
    paper = float(entry["mean"]) if has_spread else float(entry[key])
    spread = float(entry["std"]) if has_spread else DEFAULT_SPREAD
    diff = round(100 * summary.mean - paper, 2) + 0.0  # as printed (and never "-0.00")
    word = WITHIN if abs(diff) <= spread else BETTER if diff < 0 else WORSE
    return f"{word} ({diff:+.2f}, ±{spread:.2f})"


VERDICT_NOTE = (f"verdict: the mean over finished seeds against the paper's mean where it gives one (its std as "
                f"the spread), else its figure (±{DEFAULT_SPREAD} points): within the spread, better (lower error) "
                f"or worse; runs not at the paper's scale (other data, a subset, a shorter schedule) get no "
                f"verdict.")
