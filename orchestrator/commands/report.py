"""`resnet-sweep report NAME [--out DIR] [--tracking-uri URI]`: the papers' tables and figures from a sweep's runs."""
from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the sweep's name (its `name:`)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder (default ./reports/NAME)")
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: the one `run` recorded for NAME, else "
                             "MLFLOW_TRACKING_URI, else sqlite:///<working dir>/mlruns.db as `run` uses)")
    parser.add_argument("--only", nargs="+", default=None, metavar="REPORT",
                        help="build these reports instead of the sweep's list (table6 table1 table2 table3 "
                             "resnext fig6 fig7)")
    parser.add_argument("--no-log", action="store_true", help="do not log the files to the sweep's parent run")


def run(args: argparse.Namespace) -> int:
    from orchestrator.report.build import REPORTS, build_report, log_report, unfinished
    from orchestrator.report.paper import paper_values
    from orchestrator.report.rows import known_sweeps, read_sweep
    from orchestrator.report.search_rows import read_search
    from orchestrator.report.store import sweep_store
    from orchestrator.tracking.uris import redact_uri

    if args.only:
        unknown = [n for n in args.only if n not in REPORTS]
        if unknown:
            raise CliError(f"--only: unknown report {unknown[0]!r}; expected some of {', '.join(REPORTS)}")
    tracking_uri = sweep_store(args.name, args.tracking_uri)
    sweep = read_sweep(args.name, tracking_uri)
    if sweep is None:
        known = known_sweeps(tracking_uri)
        raise CliError(f"no sweep {args.name!r} in the MLflow store {redact_uri(tracking_uri)}; known "
                       f"experiments: {', '.join(known) if known else '(none)'}")
    out_dir = args.out if args.out is not None else Path("reports") / args.name
    report = build_report(sweep, out_dir, paper_values(), tuple(args.only) if args.only else None,
                          read_search(tracking_uri, sweep))
    print(report.markdown)
    if not args.no_log:
        log_report(report, sweep, tracking_uri)
    where = "" if args.no_log else f"; logged to run {sweep.parent_run_id} under report/"
    print(f"Wrote {len(report.files)} files to {out_dir}{where}.")
    if not args.no_log:
        from orchestrator.tracking.ui import browse_hint

        print(f"see it in MLflow: {browse_hint(tracking_uri, sweep.parent_run_id)}")
    if report.missing:
        print(f"{len(report.missing)} cells still missing (see 'Still missing' above).")
    if unfinished(sweep):
        print(f"{len(unfinished(sweep))} of {len(sweep.rows)} trials not finished (see 'Trials not finished').")
    return 0
