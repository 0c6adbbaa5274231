"""Rows -> every requested report -> files in one folder (and on the sweep's MLflow parent run).

Builds each report the sweep names (even when its runs cannot fill it: cells stay missing) and each other report
the finished runs can fill. Per table: NAME.md, NAME.csv, NAME.tex; per figure: NAME.png; and report.md, the
whole report in one Markdown file, which the command also prints.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.contract import TRIAL_STATES
from orchestrator.report.cells import Table
from orchestrator.report.figures import FIGURES
from orchestrator.report.findings import LATE_SPAN, findings
from orchestrator.report.formats import FORMATS, to_markdown
from orchestrator.report.notes import degradation_notes
from orchestrator.report.rows import SweepRuns
from orchestrator.report.search_figure import search_figure
from orchestrator.report.search_rows import Search
from orchestrator.report.search_section import FIGURE as SEARCH_FIGURE, search_lines
from orchestrator.report.tables import TABLES, fillable
from orchestrator.report.verdicts import BETTER, NO_VERDICT, WITHIN, WORSE

REPORTS = tuple(TABLES) + tuple(FIGURES)  # table6, table1, table2, table3, resnext, fig6, fig7: contract.REPORT_NAMES
ARTIFACT_DIR = "report"  # folder on the parent run that holds the files


@dataclass(frozen=True)
class Report:
    out_dir: Path
    names: tuple[str, ...]  # the reports built, in order
    files: tuple[Path, ...]
    markdown: str  # report.md's text
    missing: tuple[str, ...]  # every cell still missing, "table6: ResNet-110: 1 running (3200/64000 it)"


def choose_reports(requested: tuple[str, ...], sweep: SweepRuns) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(reports to build, unknown names the sweep asked for). Requested ones come first, always; the others
    only when a finished run fills them."""
    unknown = tuple(n for n in requested if n not in REPORTS)
    chosen = [n for n in requested if n in REPORTS]
    chosen += [n for n in REPORTS if n not in chosen and fillable(n, sweep.rows)]
    return tuple(dict.fromkeys(chosen)), unknown


def state_counts(sweep: SweepRuns) -> str:
    """'5 trials: 3 finished, 1 running, 1 diverged'."""
    counts = {s: sum(r.state == s for r in sweep.rows) for s in TRIAL_STATES}
    counts.update({r.state: counts.get(r.state, 0) for r in sweep.rows if r.state not in counts})
    parts = [f"{counts[s]} {s}" for s in counts if counts[s]]
    return f"{len(sweep.rows)} trials" + (f": {', '.join(parts)}" if parts else "")


def unfinished(sweep: SweepRuns) -> tuple[str, ...]:
    """'resnet110-A-seed0: running, 3200/64000 it' for every trial that has not finished (yet)."""
    lines = []
    for row in sweep.rows:
        if row.finished:
            continue
        progress = f", {row.iteration}/{row.iterations} it" if row.iteration is not None and row.iterations else ""
        lines.append(f"{row.run_name}: {row.state}{progress}")
    return tuple(lines)


def rungs(sweep: SweepRuns) -> tuple[str, ...]:
    """Which rung of the fallback ladder the trials trained on ('compiled bf16: 6 trials'), and a line for each
    trial whose machine made it drop a faster one: its numbers came from a slower, plainer path."""
    counts: dict[str, int] = {}
    for row in sweep.rows:
        if row.rung:
            counts[row.rung] = counts.get(row.rung, 0) + 1
    lines = [f"{rung}: {count} trial{'s' if count > 1 else ''}" for rung, count in sorted(counts.items())]
    return tuple(lines + [f"{row.run_name} fell back to {row.rung}: {row.fallback}" for row in sweep.rows
                          if row.fallback])


def reproduction_summary(tables: list[Table]) -> tuple[str, ...]:
    """'3 of 5 full-scale cells reproduce the paper (within its spread); 1 better, 1 worse. 4 measured cells are
    not at the paper's scale (no verdict).' over every table built; nothing when no cell has a verdict."""
    verdicts = [v for t in tables for v in t.verdicts]
    judged = [v for v in verdicts if not v.startswith(NO_VERDICT)]
    counts = {word: sum(v.startswith(word) for v in judged) for word in (WITHIN, BETTER, WORSE)}
    lines = []
    if judged:
        lines.append(f"{counts[WITHIN]} of {len(judged)} full-scale cells reproduce the paper (within its spread); "
                     f"{counts[BETTER]} better, {counts[WORSE]} worse.")
    unjudged = len(verdicts) - len(judged)
    if unjudged:
        lines.append(f"{unjudged} measured cell{'s are' if unjudged > 1 else ' is'} not at the paper's scale "
                     f"(other data, a subset or a shorter schedule): no verdict.")
    return tuple(lines)


def build_report(sweep: SweepRuns, out_dir: Path, paper: Mapping[str, Any],
                 requested: tuple[str, ...] | None = None, search: Search | None = None) -> Report:
    """Write the reports for `sweep` into `out_dir`; `requested` overrides the sweep's own report list; a
    searched sweep's `search` (search_rows.read_search) adds its section and figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names, unknown = choose_reports(sweep.reports if requested is None else requested, sweep)
    files: list[Path] = []
    missing: list[str] = []
    sections = [f"# Report: {sweep.name}", "",
                f"Experiment `{sweep.experiment_name}`, parent run `{sweep.parent_run_id}`; {state_counts(sweep)}.",
                "Errors in percent, as in the papers; measured values beside the paper's and the difference."]
    if unknown:
        sections.append(f"Unknown reports in the sweep's list, skipped: {', '.join(unknown)} "
                        f"(known: {', '.join(REPORTS)}).")
    sections += ["", "## Degradation check", ""] + [f"- {line}" for line in degradation_notes(sweep.rows)
                                                   or ("No finished plain or residual ResNets to compare.",)]
    found = findings(sweep.rows)
    if found:
        held = sum(f.held for f in found)
        sections += ["", "## The papers' findings", "",
                     f"{held} of {len(found)} held. Training error at the end: over the last {LATE_SPAN} iterations "
                     f"(Figure 6's finer curve; the final epoch's mean without one); means over seeds.", ""]
        sections += [f"- {f.line()}" for f in found]
    tables = [TABLES[name](sweep.rows, paper) for name in names if name in TABLES]
    summary_lines = reproduction_summary(tables)
    if summary_lines:
        sections += ["", "## Reproduction", ""] + [f"- {line}" for line in summary_lines]
    for name in names:
        if name in TABLES:
            table = next(t for t in tables if t.name == name)
            for ext, write in FORMATS.items():
                path = out_dir / f"{name}.{ext}"
                path.write_text(write(table))
                files.append(path)
            missing += [f"{name}: {gap}" for gap in table.missing]
            sections += ["", to_markdown(table).rstrip(), "", f"Files: {name}.md, {name}.csv, {name}.tex"]
        else:
            files.append(FIGURES[name](sweep.rows, out_dir / f"{name}.png"))
            sections += ["", f"### {name}", "", f"![{name}]({name}.png)"]
    if search is not None:
        files.append(search_figure(search, out_dir / f"{SEARCH_FIGURE}.png"))
        sections += search_lines(search)
    if missing:
        sections += ["", "## Still missing", ""] + [f"- {gap}" for gap in missing]
    trained_as = rungs(sweep)
    if trained_as:
        sections += ["", "## How the trials ran", ""] + [f"- {line}" for line in trained_as]
    waiting = unfinished(sweep)
    if waiting:
        sections += ["", "## Trials not finished", ""] + [f"- {line}" for line in waiting]
    markdown = "\n".join(sections) + "\n"
    summary = out_dir / "report.md"
    summary.write_text(markdown)
    return Report(out_dir, names, tuple(files) + (summary,), markdown, tuple(missing))


def log_report(report: Report, sweep: SweepRuns, tracking_uri: str) -> None:
    """Put the report's files on the sweep's parent run, under report/, and its summary in the run's description,
    so the run's MLflow page shows the reproduction: tables, verdicts and the figures (read from the artifacts
    through the server's get-artifact route, relative to the UI's own address)."""
    import re
    from urllib.parse import quote

    from orchestrator.tracking.writer import Tracker

    tracker = Tracker(tracking_uri)
    tracker.client.log_artifacts(sweep.parent_run_id, str(report.out_dir), ARTIFACT_DIR)
    figures = re.sub(r"\]\(([\w.-]+\.png)\)",
                     lambda m: "](get-artifact?path=" + quote(f"{ARTIFACT_DIR}/{m.group(1)}", safe="")
                     + f"&run_uuid={sweep.parent_run_id})", report.markdown)
    tracker.describe_run(sweep.parent_run_id, figures)
