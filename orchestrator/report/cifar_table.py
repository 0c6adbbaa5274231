"""ResNet Table 6 rebuilt: CIFAR-10 test error by depth, each cell beside the paper's value, the difference and
a verdict; plain nets of the same depths as rows of their own, and the degradation findings as notes."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.report.aggregate import Group, final_test_error, group_rows
from orchestrator.report.cells import (MISSING, Table, count_text, diff_text, first_cost, measured_text, missing_line,
                                       net_name, paper_text, runs_text, stands_in)
from orchestrator.report.notes import dataset_note, degradation_notes
from orchestrator.report.rows import Row
from orchestrator.report.verdicts import VERDICT_NOTE, verdict_text


def table6(rows: Iterable[Row], paper: Mapping[str, Any]) -> Table:
    """ResNet Table 6: test error by depth; the paper's ResNet rows always, plain nets and other depths when run."""
    rows = list(rows)  # read twice: the table's groups, then the degradation notes
    ref = paper["table6"]
    groups = [g for g in group_rows(rows).values()
              if g.config.family == "cifar" and stands_in(g.config.dataset, ref["dataset"])]
    by_depth = {e["layers"]: e for e in ref["rows"]}
    lines: list[tuple[str, ...]] = []
    missing: list[str] = []

    def line(net: str, depth: int, n: int | None, group: Group | None, entry: Mapping[str, Any] | None) -> None:
        lines.append((net, str(depth), MISSING if n is None else str(n), count_text(first_cost(group, "params")),
                      count_text(entry.get("params")) if entry else MISSING,
                      measured_text(group, final_test_error), paper_text(entry, "error"),
                      diff_text(group, final_test_error, entry, "error"),
                      verdict_text(group, final_test_error, entry, "error", ref["dataset"], ref["iterations"]),
                      runs_text(group)))
        gap = missing_line(f"{net}-{depth}", group)
        if gap:
            missing.append(gap)

    # ResNets by depth: the paper's rows always (measured or not), other depths when run; then plain nets,
    # which Table 6 has no value for
    residual = [g for g in groups if g.config.residual]
    depths = sorted(set(by_depth) | {g.config.depth for g in residual})
    for depth in depths:
        entry = by_depth.get(depth)
        for group in sorted((g for g in residual if g.config.depth == depth), key=lambda g: g.config) or [None]:
            line(net_name(group.config) if group else entry["net"], depth,
                 group.rows[0].n if group else entry.get("n"), group, entry)
    for group in sorted((g for g in groups if not g.config.residual), key=lambda g: (g.config.depth, g.config)):
        line(net_name(group.config), group.config.depth, group.rows[0].n, group, None)
    for entry in ref.get("reference", ()):
        lines.append((entry["net"], str(entry.get("layers", MISSING)), MISSING, MISSING,
                      count_text(entry.get("params")), MISSING, paper_text(entry, "error"), MISSING, MISSING,
                      "paper only"))
    notes = ("error %: best of the finished seeds, (mean ± sample std) over two or more seeds; diff: best minus "
             "the paper's best, in points.", VERDICT_NOTE) + dataset_note(groups, ref["dataset"], "Table 6")
    return Table("table6", "CIFAR-10 test error by depth (ResNet Table 6)", ref["source"],
                 ("net", "layers", "n", "params", "paper params", "error %", "paper %", "diff", "verdict", "runs"),
                 "lrrrrrrrll", tuple(lines), notes + degradation_notes(rows, ("cifar",)), tuple(missing))
