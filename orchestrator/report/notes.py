"""The notes under a table that say what its numbers can and cannot show: data other than the paper's, and the
degradation findings its nets test (cited from findings.py, which judges them, never judged again here)."""
from __future__ import annotations

from collections.abc import Iterable

from orchestrator.report.aggregate import Group
from orchestrator.report.findings import FAMILIES, deeper_resnet, degradation, depths, scopes
from orchestrator.report.rows import Row


def dataset_note(groups: Iterable[Group], paper_dataset: str | tuple[str, ...],
                 paper_table: str) -> tuple[str, ...]:
    """A note when some groups ran on data the paper's table was not measured on."""
    papers = (paper_dataset,) if isinstance(paper_dataset, str) else paper_dataset
    others = sorted({g.config.dataset for g in groups} - set(papers))
    if not others:
        return ()
    return (f"Measured on {', '.join(others)}; {paper_table} is {' / '.join(papers)}: the differences do not "
            f"compare like for like.",)


def degradation_notes(rows: Iterable[Row], families: tuple[str, ...] = FAMILIES) -> tuple[str, ...]:
    """Per family and dataset the sweep ran: the degradation finding and its reversal by the ResNets, as the
    findings state them (verdict and numbers), or why there is no degradation finding yet."""
    rows = list(rows)
    lines: list[str] = []
    for family in families:
        for dataset, scope in scopes(rows, family).items():
            found = degradation(scope, dataset)
            if found is None:
                lines.append(f"Degradation check ({family}, {dataset}): needs finished plain nets at two depths "
                             f"or more; this sweep has {len(depths(scope, residual=False))}.")
            lines += [f.line() for f in (found, deeper_resnet(scope, dataset)) if f is not None]
    return tuple(lines)
