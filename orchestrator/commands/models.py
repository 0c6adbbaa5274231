"""`resnet-sweep models [--json] [NAME ...]`: params and multiply-adds, computed, beside the papers' figures."""
from __future__ import annotations

import argparse
import json

from orchestrator.report.paper import paper_figures
from resnet_core.architectures import ARCHITECTURES
from orchestrator.errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="architectures to show (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def model_rows(names: list[str]) -> list[dict]:
    from resnet_core.accounting import model_cost  # builds on the meta device: no memory, no arithmetic

    unknown = [n for n in names if n not in ARCHITECTURES]
    if unknown:
        raise CliError(f"unknown architecture {unknown[0]!r}; expected one of {', '.join(ARCHITECTURES)}")
    rows = []
    for name in names or list(ARCHITECTURES):
        arch = ARCHITECTURES[name]
        cost = model_cost(arch.model, arch.num_classes)
        paper = paper_figures(name)
        rows.append({"name": name, "family": arch.model.family, "depth": arch.model.depth,
                     "dataset": arch.dataset, "image_size": cost.image_size, "params": cost.params,
                     "macs": cost.macs, "paper_params": paper.get("params"), "paper_macs": paper.get("macs"),
                     "paper_source": paper.get("source")})
    return rows


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value / 1e9:.2f}G" if unit == "macs" else f"{value / 1e6:.2f}M"


def run(args: argparse.Namespace) -> int:
    rows = model_rows(args.names)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Architectures: counted on the built model, the papers' figures beside")
    for col in ("name", "input", "params", "paper", "mult-adds", "paper", "source"):
        table.add_column(col, justify="left" if col in ("name", "input", "source") else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["name"], f"{r['dataset']}@{r['image_size']}", _si(r["params"], "params"),
                      _si(r["paper_params"], "params"), _si(r["macs"], "macs"), _si(r["paper_macs"], "macs"),
                      r["paper_source"] or "")
    Console(width=max(Console().width, 100)).print(table)  # pipes get 80 columns: too narrow
    return 0
