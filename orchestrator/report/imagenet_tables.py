"""ResNet Tables 2 and 3 rebuilt: plain vs residual nets on ImageNet (top-1, with the degradation findings as
notes), and the shortcut options A/B/C with the deeper bottleneck nets (top-1 and top-5)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.report.aggregate import Group, final_test_error, final_top5_error, group_rows
from orchestrator.report.cells import (MISSING, Table, diff_text, measured_text, missing_line, net_name, paper_text,
                                       runs_text, stands_in)
from orchestrator.report.notes import dataset_note, degradation_notes
from orchestrator.report.rows import Row
from orchestrator.report.verdicts import VERDICT_NOTE, verdict_text


def _imagenet_groups(rows: Iterable[Row], dataset: str) -> list[Group]:
    return [g for g in group_rows(rows).values()
            if g.config.family == "imagenet" and stands_in(g.config.dataset, dataset)]


def _find(groups: list[Group], entry: Mapping[str, Any]) -> Group | None:
    residual = entry["net"] != "plain"
    for group in groups:
        c = group.config
        if (c.depth == entry["layers"] and c.residual == residual and not c.preact
                and (not residual or c.shortcut == entry.get("shortcut", c.shortcut))):
            return group
    return None


def table2(rows: Iterable[Row], paper: Mapping[str, Any]) -> Table:
    """ResNet Table 2: plain vs residual at 18 and 34 layers, top-1 error."""
    rows = list(rows)
    ref = paper["table2"]
    groups = _imagenet_groups(rows, ref["dataset"])
    lines, missing = [], []
    for entry in ref["rows"]:
        group = _find(groups, entry)
        label = f"{entry['net']}-{entry['layers']}"
        lines.append((entry["net"], str(entry["layers"]), entry.get("shortcut", MISSING),
                      measured_text(group, final_test_error), paper_text(entry, "top1"),
                      diff_text(group, final_test_error, entry, "top1"),
                      verdict_text(group, final_test_error, entry, "top1", ref["dataset"], ref["iterations"]),
                      runs_text(group)))
        missing += [m for m in [missing_line(label, group)] if m]
    notes = ("top-1 error %: best of the finished seeds (mean ± sample std over two or more); 10-crop testing "
             "as the paper's (Sec. 3.4): the softmax averaged over the four corners, the center and their flips "
             "of the image resized to 256.", VERDICT_NOTE) + dataset_note(groups, ref["dataset"], "Table 2")
    return Table("table2", "Plain vs residual on ImageNet (ResNet Table 2)", ref["source"],
                 ("net", "layers", "shortcut", "top-1 %", "paper %", "diff", "verdict", "runs"), "lrlrrrll",
                 tuple(lines),
                 notes + degradation_notes(rows, ("imagenet",)), tuple(missing))


def table3(rows: Iterable[Row], paper: Mapping[str, Any]) -> Table:
    """ResNet Table 3: shortcut options A/B/C at 34 layers and the 50/101/152-layer nets, top-1 and top-5."""
    ref = paper["table3"]
    groups = _imagenet_groups(rows, ref["dataset"])
    lines, missing, used = [], [], set()

    def line(net: str, depth: str, shortcut: str, group: Group | None, entry: Mapping[str, Any] | None,
             runs: str) -> None:
        lines.append((net, depth, shortcut, measured_text(group, final_test_error), paper_text(entry, "top1"),
                      diff_text(group, final_test_error, entry, "top1"),
                      verdict_text(group, final_test_error, entry, "top1", ref["dataset"], ref["iterations"]),
                      measured_text(group, final_top5_error), paper_text(entry, "top5"),
                      diff_text(group, final_top5_error, entry, "top5"),
                      verdict_text(group, final_top5_error, entry, "top5", ref["dataset"], ref["iterations"]), runs))

    for entry in ref["rows"]:
        group = _find(groups, entry)
        used.add(group.config if group else None)
        line(entry["net"], str(entry["layers"]), entry.get("shortcut", MISSING), group, entry, runs_text(group))
        gap = missing_line(f"{entry['net']}-{entry['layers']}{entry.get('shortcut', '')}", group)
        missing += [gap] if gap else []
    for group in groups:
        if group.config not in used:
            c = group.config
            line(net_name(c).split(" (")[0], str(c.depth), c.shortcut if c.residual else MISSING, group, None,
                 runs_text(group))
    for entry in ref.get("reference", ()):
        line(entry["net"], MISSING, MISSING, None, entry, "paper only")
    notes = ("Errors %: best of the finished seeds (mean ± sample std over two or more), 10-crop testing as the "
             "paper's (Sec. 3.4); top-5: the label among the 5 highest-scoring classes of the crop-averaged "
             "softmax.", VERDICT_NOTE,
             "Table 4's single-model figures (e.g. ResNet-152 19.38 / 4.49) average fully-convolutional scores at "
             "several scales, a test not implemented here; they are not compared.") + dataset_note(
        groups, ref["dataset"], "Table 3")
    return Table("table3", "Shortcut options and deeper nets on ImageNet (ResNet Table 3)", ref["source"],
                 ("net", "layers", "shortcut", "top-1 %", "paper top-1", "top-1 diff", "top-1 verdict", "top-5 %",
                  "paper top-5", "top-5 diff", "top-5 verdict", "runs"),
                 "lrlrrrlrrrll", tuple(lines), notes, tuple(missing))
