"""The one place that plots (matplotlib, Agg backend): ResNet Figure 6 and Figure 7 from a sweep's trials.

Each configuration is drawn from its best finished seed (lowest final test error); a configuration with no
finished seed yet is drawn from its furthest running trial and labelled so, which makes a live sweep's figure useful.
A figure with nothing to draw is still written, saying what is missing, so a requested report never fails.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from orchestrator.contract import RUNNING
from orchestrator.report.aggregate import Group, final_test_error, group_rows
from orchestrator.report.rows import Row


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a training box
    import matplotlib.pyplot as plt

    return plt


def _drawn(group: Group) -> tuple[Row | None, str]:
    """The trial that represents a configuration in a figure, and a label suffix."""
    best = group.best_row(final_test_error)
    if best is not None:
        return best, ""
    running = [r for r in group.rows if r.state == RUNNING and r.history]
    if running:
        return max(running, key=lambda r: r.history[-1].iteration), " (running)"
    return None, ""


def _label(group: Group) -> str:
    c = group.config
    name = group.arch if c.family == "resnext" else ("ResNet" if c.residual else "plain") + f"-{c.depth}"
    if c.residual and c.family != "resnext" and c.shortcut != ("A" if c.family == "cifar" else "B"):
        name += f" ({c.shortcut})"
    return name + (f" [{c.dataset}]" if c.dataset not in ("cifar10", "imagenet") else "")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def steady_windows(curve: Iterable[tuple[int, float]], min_span: int = 10) -> list[tuple[int, float]]:
    """The finer curve with its short windows (an epoch that ends 3 iterations after a mark) merged into the next,
    weighted by iterations, so every plotted point averages at least `min_span` iterations, or ends the curve."""
    out, total, span, previous = [], 0.0, 0, 0
    points = list(curve)
    for index, (iteration, error) in enumerate(points):
        total, span = total + error * (iteration - previous), span + iteration - previous
        previous = iteration
        if span >= min_span or index == len(points) - 1:
            out.append((iteration, total / span if span else error))
            total, span = 0.0, 0
    return out


def fig6(rows: Iterable[Row], path: Path) -> Path:
    """ResNet Figure 6: training (dashed) and test (bold) error % against iterations from 0; plain nets left,
    residual right, one colour per net. Training error every few dozen iterations (the trial's finer curve),
    test error at each evaluation."""
    plt = _pyplot()
    groups = [g for g in group_rows(rows).values()]
    panels = [("plain", [g for g in groups if not g.config.residual]),
              ("residual", [g for g in groups if g.config.residual])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    depths = sorted({g.config.depth for g in groups})  # one colour per depth in both panels
    for ax, (title, members) in zip(axes, panels):
        drawn = 0
        for group in sorted(members, key=lambda g: (g.config.family, g.config.depth, g.config)):
            row, suffix = _drawn(group)
            if row is None or not row.history:
                continue
            colour = cycle[depths.index(group.config.depth) % len(cycle)]
            # the finer curve (every few dozen iterations) where the trial logged one, else the epoch means
            train = [(it, 100 * err) for it, err in steady_windows(row.curve)] or [
                (p.iteration, 100 * p.train_error) for p in row.history if p.train_error is not None]
            test = [(p.iteration, 100 * p.test_error) for p in row.history if p.test_error is not None]
            if train:
                ax.plot(*zip(*train), "--", color=colour, linewidth=1.0)
            if test:
                ax.plot(*zip(*test), "-", color=colour, linewidth=2.2, marker="o", markersize=3,
                        label=_label(group) + suffix)  # markers: a single evaluation still shows
            drawn += 1
        ax.set_title(f"{title} nets")
        ax.set_xlabel("iterations")
        ax.set_xlim(left=0)  # as the paper's axes: training from its start
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            _empty(ax, f"no {title} net has logged errors yet")
    axes[0].set_ylabel("error (%)")
    fig.suptitle("Training (dashed) and test (bold) error, as ResNet Figure 6")
    return _save(fig, path)


def fig7(rows: Iterable[Row], path: Path) -> Path:
    """ResNet Figure 7: std of each 3x3 layer's response (after BN, before the addition and ReLU), in layer order
    (top) and sorted descending (bottom); plain nets dashed, residual nets solid."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5))
    drawn = 0
    for group in group_rows(rows).values():
        row, suffix = _drawn(group)
        if row is None or not row.layer_std:
            continue
        style = "-" if group.config.residual else "--"
        line, = top.plot(range(1, len(row.layer_std) + 1), row.layer_std, style, label=_label(group) + suffix)
        bottom.plot(range(1, len(row.layer_std) + 1), sorted(row.layer_std, reverse=True), style,
                    color=line.get_color())
        drawn += 1
    for ax, order in ((top, "original"), (bottom, "sorted by magnitude")):
        ax.set_xlabel(f"layer index ({order})")
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
    if drawn:
        top.legend(fontsize=8)
    else:
        _empty(top, "no finished trial has logged layer responses yet")
        _empty(bottom, "")
    fig.suptitle("Std of the 3x3 layers' responses, as ResNet Figure 7")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


FIGURES = {"fig6": fig6, "fig7": fig7}
