"""ResNeXt Tables 3 and 7 rebuilt: error by cardinality x width at matched complexity, on ImageNet (1-crop top-1)
and on CIFAR-10 and CIFAR-100."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.report.aggregate import Group, final_test_error, group_rows
from orchestrator.report.cells import (MISSING, Table, count_text, diff_text, first_cost, measured_text, missing_line,
                                       paper_text, runs_text)
from orchestrator.report.notes import dataset_note
from orchestrator.report.rows import Row
from orchestrator.report.verdicts import VERDICT_NOTE, verdict_text


def one_crop_error(row: Row) -> float | None:
    """ResNeXt's ImageNet tables test the single 224 center crop of the image resized to 256 (ResNeXt Sec. 5.1):
    the trial's 1-crop error where it measured one (ImageNet folders), else its test error."""
    return row.one_crop_error if row.one_crop_error is not None else row.test_error


def resnext(rows: Iterable[Row], paper: Mapping[str, Any]) -> Table:
    """ResNeXt Table 3 (ImageNet, 50/101 layers, 1-crop top-1) and Table 7 (CIFAR-10 and CIFAR-100, ResNeXt-29):
    error by C x d."""
    grouped = [g for g in group_rows(rows).values()
               if g.config.family == "resnext" or (g.config.family == "imagenet" and g.config.residual
                                                   and g.config.depth in (50, 101))]
    lines, missing, used = [], [], set()

    def find(depth: int, cardinality: int, width: int, dataset: str) -> Group | None:
        # synthetic data stands in for CIFAR-10 and ImageNet, never for CIFAR-100 (its rows would be doubled)
        for group in grouped:
            c = group.config
            if (c.depth, c.cardinality, c.width) == (depth, cardinality, width) and (
                    c.dataset == dataset or (c.dataset == "synthetic" and dataset != "cifar100")):
                return group
        return None

    def line(model: str, depth: Any, cxd: str, dataset: str, group: Group | None, entry: Mapping[str, Any] | None,
             key: str, runs: str, ref: Mapping[str, Any]) -> None:
        metric = one_crop_error if dataset == "imagenet" else final_test_error
        lines.append((model, str(depth), cxd, dataset, count_text(first_cost(group, "params")),
                      count_text(entry.get("params")) if entry else MISSING, measured_text(group, metric),
                      paper_text(entry, key), diff_text(group, metric, entry, key),
                      verdict_text(group, metric, entry, key, dataset, ref["iterations"]), runs))
        if group is not None:
            used.add(group.config)
        gap = missing_line(f"{model} {cxd} on {dataset}", group) if runs != "paper only" else None
        missing.extend([gap] if gap else [])

    t3, t7 = paper["resnext_table3"], paper["resnext_table7"]
    for entry in t3["rows"]:
        c, d = entry["cardinality"], entry["width"]
        group = find(entry["layers"], c, d, t3["dataset"])
        line(f"ResNeXt-{entry['layers']}" if c > 1 else f"ResNet-{entry['layers']}", entry["layers"], f"{c}x{d}d",
             t3["dataset"], group, entry, "top1", runs_text(group), t3)
    for dataset in t7["datasets"]:  # the paper's two columns, CIFAR-10 and CIFAR-100
        for entry in t7["rows"]:
            c, d = entry["cardinality"], entry["width"]
            group = find(entry["layers"], c, d, dataset)
            line(f"ResNeXt-{entry['layers']}", entry["layers"], f"{c}x{d}d", dataset, group, entry, dataset,
                 runs_text(group), t7)
        for entry in t7.get("reference", ()):
            line(entry["net"], MISSING, MISSING, dataset, None, entry, dataset, "paper only", t7)
    for group in grouped:  # other C x d the sweep ran: no paper value
        if group.config not in used:
            c = group.config
            line(f"ResNeXt-{c.depth}" if c.family == "resnext" else f"ResNet-{c.depth}", c.depth,
                 f"{c.cardinality}x{c.width}d", c.dataset, group, None, "", runs_text(group), t7)
    notes = ("error %: 1-crop top-1 on ImageNet (the 224 center crop of the image resized to 256, ResNeXt "
             "Sec. 5.1), test error on CIFAR; best of the finished seeds (mean ± sample std over two or more); the "
             "paper's CIFAR figures are means of 10 runs.", VERDICT_NOTE,
             f"Sources: {t3['source']}; {t7['source']}.") + dataset_note(
        grouped, (t3["dataset"], *t7["datasets"]), "ResNeXt Tables 3 and 7")
    return Table("resnext", "Cardinality vs width at matched complexity (ResNeXt Tables 3 and 7)",
                 f"{t3['source']}; {t7['source']}",
                 ("model", "layers", "C x d", "data", "params", "paper params", "error %", "paper %", "diff",
                  "verdict", "runs"), "lrllrrrrrll", tuple(lines), notes, tuple(missing))
