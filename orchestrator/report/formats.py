"""One Table, three formats: Markdown (also printed to the terminal), CSV, LaTeX booktabs. Pure string functions."""
from __future__ import annotations

import csv
import io

from orchestrator.report.cells import Table


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: Table) -> str:
    """A heading, the source, a pipe table (right-aligned numbers), then notes and missing cells as bullets."""
    sep = {"l": ":---", "r": "---:"}
    out = [f"### {table.title}", "", f"Paper: {table.source}.", "",
           "| " + " | ".join(_md_cell(c) for c in table.columns) + " |",
           "|" + "|".join(sep[a] for a in table.align) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        out += [""] + [f"- {note}" for note in table.notes]
    if table.missing:
        out += ["", "Missing (no finished trial yet):"] + [f"- {gap}" for gap in table.missing]
    return "\n".join(out) + "\n"


def to_csv(table: Table) -> str:
    """Header and rows only, the cells as shown (so '6.43 (6.61 ± 0.16)' stays one field)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return buffer.getvalue()


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "—": "---", "−": "-"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A `table` float with a booktabs `tabular` (needs \\usepackage{booktabs}); notes go in the caption."""
    caption = latex_escape(f"{table.title}. Paper: {table.source}.")
    out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}", rf"\label{{tab:{table.name}}}",
           rf"\begin{{tabular}}{{{table.align}}}", r"\toprule",
           " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    out += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


FORMATS = {"md": to_markdown, "csv": to_csv, "tex": to_latex}
