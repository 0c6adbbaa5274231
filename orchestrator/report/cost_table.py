"""Parameters and multiply-adds of the architectures a sweep ran, counted on the built model, beside the papers'
figures (ResNet Tables 1 and 6, ResNeXt Tables 1 and 7)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.report.aggregate import group_rows
from orchestrator.report.cells import MISSING, Table, count_text, first_cost, ratio_text
from orchestrator.report.rows import Row


def table1(rows: Iterable[Row], paper: Mapping[str, Any]) -> Table:
    """Params and multiply-adds of the architectures the sweep ran, counted on the built model, beside the paper."""
    known = paper["architectures"]
    lines = []
    for group in group_rows(rows).values():
        name = group.arch + (f" ({group.config.shortcut})" if group.config.family != "cifar"
                             and group.config.residual else "")
        entry = known.get(group.arch, {}) if group.config.shortcut in ("A", "B") else {}
        params, macs = first_cost(group, "params"), first_cost(group, "macs")
        line = (name, group.config.dataset, count_text(params), count_text(entry.get("params")),
                ratio_text(params, entry.get("params")), count_text(macs), count_text(entry.get("macs")),
                ratio_text(macs, entry.get("macs")), entry.get("source", MISSING))
        if line not in lines:
            lines.append(line)
    notes = ("Counted on the built model: multiply-adds of every conv and fc layer for one image at the trial's "
             "input size (what the ResNet paper calls FLOPs); diff is relative to the paper's figure.",
             "Option C (all-projection) shortcuts add parameters the paper's Table 1 does not count; no paper "
             "figure is shown for them.")
    return Table("table1", "Parameters and multiply-adds (ResNet Table 1, Table 6; ResNeXt Tables 1 and 7)",
                 "ResNet Table 1 (multiply-adds), Table 6 (params); ResNeXt Tables 1, 7",
                 ("architecture", "data", "params", "paper params", "params diff", "mult-adds", "paper mult-adds",
                  "mult-adds diff", "paper table"), "llrrrrrrl", tuple(lines), notes)
