"""The report's search section, a pure function of a `Search` (search_rows.py): the best configuration with its
validation and test error, every trial's values and result, for PBT the schedule the best trial ended up with, for
ASHA what it stopped and the iterations that saved against running every trial to its end; and its figure
(search_figure.py).
"""
from __future__ import annotations

from typing import Any

from orchestrator.contract import FINISHED, STOPPED
from orchestrator.report.search_rows import Search, SearchTrial

FIGURE = "search"  # search.png beside report.md


def best_trial(search: Search) -> SearchTrial | None:
    """The trial with the best metric among those that finished (else among all that measured it)."""
    measured = [t for t in search.trials if t.metric is not None]
    pool = [t for t in measured if t.state == FINISHED] or measured
    if not pool:
        return None
    return (min if search.mode == "min" else max)(pool, key=lambda t: t.metric)


def asha_savings(search: Search) -> tuple[int, int, int] | None:
    """(trials stopped, iterations the sweep trained, iterations every trial run to its end would have); None
    when ASHA stopped nothing or did not run."""
    stopped = [t for t in search.trials if t.state == STOPPED]
    if search.scheduler != "asha" or not stopped:
        return None
    trained = sum(t.iteration or 0 for t in search.trials)
    full = sum(max(t.iterations or 0, t.iteration or 0) for t in search.trials)
    return len(stopped), trained, full


def schedule_line(trial: SearchTrial) -> list[str]:
    """PBT: each mutated key path's values over the best trial's iterations, where they changed."""
    lines = []
    for key, curve in trial.schedule:
        changes = [point for i, point in enumerate(curve) if i == 0 or point[1] != curve[i - 1][1]]
        lines.append(f"{key}: " + " -> ".join(f"{_number(v)} (at it {it})" for it, v in changes))
    return lines


def search_lines(search: Search) -> list[str]:
    """The section's Markdown lines, its figure included."""
    metric, kind = search.metric, {"pbt": "Population-based training", "optuna": "Optuna (TPE) search",
                                   "random": "Random search", "asha": "Grid with ASHA"}[search.kind]
    lines = ["", "## Search", "", f"{kind} over {', '.join(search.keys) or 'the grid'}: {len(search.trials)} "
             f"trials, judged on {metric} ({search.mode}).", ""]
    best = best_trial(search)
    if best is not None:
        given = ", ".join(f"{k}={_number(v)}" for k, v in best.values)
        lines.append(f"- Best configuration: {best.run_name} ({given}{', as it started' if best.schedule else ''}): "
                     f"{metric} {_percent(best.metric, metric)}, validation error {_percent(best.val_error)}, "
                     f"test error {_percent(best.test_error)}.")
        if best.schedule:
            lines.append(f"- The schedule it ended up with ({best.exploits} exploit{'s' * (best.exploits != 1)}):")
            lines += [f"  - {line}" for line in schedule_line(best)]
    saved = asha_savings(search)
    if saved is not None:
        stopped, trained, full = saved
        lines.append(f"- ASHA stopped {stopped} of {len(search.trials)} trials: {trained:,} of {full:,} iterations "
                     f"trained, {full - trained:,} ({(full - trained) / max(full, 1):.0%}) saved against running "
                     "every trial to its end.")
    header = ["trial", "state", *search.keys, metric, "test error"]
    ranked = sorted(search.trials, key=lambda t: (t.metric is None, (t.metric or 0) * (1 if search.mode == "min"
                                                                                        else -1)))
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([t.run_name, t.state, *(_number(v) for _, v in t.values),
                                 _percent(t.metric, metric), _percent(t.test_error)]) + " |" for t in ranked]
    return lines + ["", f"![{FIGURE}]({FIGURE}.png)"]


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _percent(value: float | None, metric: str = "error") -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if "error" in metric else f"{value:.4g}"
