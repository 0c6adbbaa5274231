"""The search section's figure: the search's metric against each searched hyperparameter (one panel each, every
trial a point, finished and stopped marked apart, the best ringed) and, for population-based training, the schedule
of each mutated hyperparameter the best trial ended up with, over iterations.
"""
from __future__ import annotations

from pathlib import Path

from orchestrator.contract import STOPPED
from orchestrator.report.search_rows import Search
from orchestrator.report.search_section import best_trial


def search_figure(search: Search, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a training box
    import matplotlib.pyplot as plt

    best = best_trial(search)
    keys = list(search.keys) or ["(no searched values)"]
    rows = 2 if best is not None and best.schedule else 1
    fig, axes = plt.subplots(rows, len(keys), figsize=(4.2 * len(keys), 3.6 * rows), squeeze=False)
    scale = 100 if "error" in search.metric else 1
    for ax, key in zip(axes[0], keys):
        for stopped in (False, True):
            points = [(dict(t.values).get(key), t.metric * scale) for t in search.trials if t.metric is not None
                      and (t.state == STOPPED) == stopped and isinstance(dict(t.values).get(key), (int, float))]
            if points:
                ax.scatter(*zip(*points), marker="x" if stopped else "o",
                           label="stopped early" if stopped else "ran to the end")
        if best is not None and isinstance(dict(best.values).get(key), (int, float)):
            ax.scatter([dict(best.values)[key]], [best.metric * scale], s=160, facecolors="none", edgecolors="red",
                       label="best")
        if key in search.log_scale:
            ax.set_xscale("log")
        ax.set_xlabel(key + (" (at the start)" if search.kind == "pbt" else ""))
        ax.set_ylabel(search.metric + (" (%)" if scale == 100 else ""))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if rows == 2:
        for ax, (key, curve) in zip(axes[1], best.schedule):
            if curve:  # each epoch's value is logged at its last iteration: in force over the epoch before it
                ax.step(*zip((0, curve[0][1]), *curve), where="pre")
            ax.set_xlabel("iterations")
            ax.set_ylabel(key)
            ax.set_title(f"{key} as PBT chose it for {best.run_name}", fontsize=8)
            if key in search.log_scale:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    fig.suptitle(f"{search.metric} against each searched hyperparameter")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
