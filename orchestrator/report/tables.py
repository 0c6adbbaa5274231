"""The papers' tables rebuilt from grouped trials, each measured cell beside the paper's value and the difference.

Pure functions: Rows (and the paper's values, orchestrator/report/paper_values.yaml) in, `Table` out; `formats` writes
it. Errors come in as fractions and go out in percent, like the papers. A row the paper lists but no trial
finished is kept and marked missing; reference rows (other methods in the paper's table) carry only the paper's
value. Synthetic data stands in for the dataset a paper table uses, with a note saying the numbers do not compare.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.report.aggregate import (Config, Group, final_test_error, final_top5_error, final_train_error,
                                           group_rows)
from orchestrator.report.rows import Row

MISSING = "—"  # em dash: no value (not run, not finished, or the paper does not print one)
DEGRADATION_SOURCE = "ResNet Sec. 4.1 (Table 2, Fig. 4) and Sec. 4.2 (Fig. 6)"


@dataclass(frozen=True)
class Table:
    """One report table: already-formatted cells, so every format shows the same text."""

    name: str  # report and file name: table6, table1, ...
    title: str
    source: str  # the paper's table the reference values come from
    columns: tuple[str, ...]
    align: str  # one of "l" / "r" per column
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # the rows no trial has finished yet, and why

    def __post_init__(self) -> None:
        if len(self.align) != len(self.columns) or any(len(r) != len(self.columns) for r in self.rows):
            raise ValueError(f"table {self.name}: every row needs {len(self.columns)} cells")

    @property
    def verdicts(self) -> tuple[str, ...]:
        """Every filled verdict cell (columns named '... verdict'), for the report's reproduction count."""
        columns = [i for i, name in enumerate(self.columns) if name.endswith("verdict")]
        return tuple(line[i] for line in self.rows for i in columns if line[i] != MISSING)


# ---- cell text -----------------------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.2f}"


def measured_text(group: Group | None, metric: Callable[[Row], float | None]) -> str:
    """'6.43 (6.61 ± 0.16)' over several seeds as the paper writes ResNet-110's row, '8.75' for one, '—' for none."""
    summary = group.summary(metric) if group is not None else None
    if summary is None or summary.best is None:
        return MISSING
    if summary.std is None:
        return percent(summary.best)
    return f"{percent(summary.best)} ({percent(summary.mean)} ± {100 * summary.std:.2f})"


def paper_text(entry: Mapping[str, Any] | None, key: str) -> str:
    """The paper's value as the paper prints it: '6.43 (6.61 ± 0.16)' where it gives mean and std."""
    if entry is None or entry.get(key) is None:
        return MISSING
    text = f"{float(entry[key]):.2f}"
    if key in ("error", "top1") and entry.get("mean") is not None and entry.get("std") is not None:
        text += f" ({float(entry['mean']):.2f} ± {float(entry['std']):.2f})"
    return text


def diff_text(group: Group | None, metric: Callable[[Row], float | None], entry: Mapping[str, Any] | None,
              key: str) -> str:
    """Best measured minus the paper's value, in percentage points."""
    best = group.summary(metric).best if group is not None else None
    if best is None or entry is None or entry.get(key) is None:
        return MISSING
    return f"{100 * best - float(entry[key]):+.2f}"


# A paper figure without a printed std gets this spread, in points: about the seed-to-seed std the papers report
# where they do (ResNet-110 6.61 ± 0.16, Highway 7.72 ± 0.16) doubled, since a single figure may be a best run.
DEFAULT_SPREAD = 0.3
WITHIN, BETTER, WORSE, NO_VERDICT = "within", "better", "worse", "no verdict"


def full_scale_gap(group: Group, dataset: str, iterations: int) -> str | None:
    """Why a group's runs do not compare with the paper's figure (None when they do): another dataset (synthetic
    stand-ins), a subset of the data, a shorter schedule than the paper's; every reason that applies."""
    rows = group.finished
    reasons = sorted({r.dataset for r in rows if r.dataset != dataset})
    if any(r.subset for r in rows):
        reasons.append("data subset")
    short = [r.iterations for r in rows if r.iterations is not None and r.iterations < iterations]
    if short:
        reasons.append(f"{min(short):,} of {iterations:,} it")
    return ", ".join(reasons) or None


def verdict_text(group: Group | None, metric: Callable[[Row], float | None], entry: Mapping[str, Any] | None,
                 key: str, dataset: str, iterations: int) -> str:
    """How the measured value stands against the paper's: 'within (+0.12, ±0.30)', 'better (-0.52, ±0.30)',
    'worse (+1.20, ±0.16)'; 'no verdict (400 of 64,000 it)' for runs not at the paper's scale; '—' for nothing
    to compare. Measured: the mean over finished seeds; the paper: its mean where it gives one (with its std as
    the spread), else its figure (spread ±DEFAULT_SPREAD points)."""
    summary = group.summary(metric) if group is not None else None
    if summary is None or summary.mean is None or entry is None or entry.get(key) is None:
        return MISSING
    gap = full_scale_gap(group, dataset, iterations)
    if gap is not None:
        return f"{NO_VERDICT} ({gap})"
    has_spread = key in ("error", "top1") and entry.get("mean") is not None and entry.get("std") is not None
    paper = float(entry["mean"]) if has_spread else float(entry[key])
    spread = float(entry["std"]) if has_spread else DEFAULT_SPREAD
    diff = round(100 * summary.mean - paper, 2) + 0.0  # as printed (and never "-0.00")
    word = WITHIN if abs(diff) <= spread else BETTER if diff < 0 else WORSE
    return f"{word} ({diff:+.2f}, ±{spread:.2f})"


VERDICT_NOTE = (f"verdict: the mean over finished seeds against the paper's mean where it gives one (its std as "
                f"the spread), else its figure (±{DEFAULT_SPREAD} points): within the spread, better (lower error) "
                f"or worse; runs not at the paper's scale (other data, a subset, a shorter schedule) get no "
                f"verdict.")


def count_text(value: float | None) -> str:
    """Parameters or multiply-adds: 0.27M, 1.82G."""
    if value is None:
        return MISSING
    return f"{value / 1e9:.2f}G" if value >= 1e9 else f"{value / 1e6:.2f}M"


def ratio_text(measured: float | None, paper: float | None) -> str:
    if measured is None or paper is None:
        return MISSING
    return f"{100 * (measured / paper - 1):+.1f}%"


def runs_text(group: Group | None) -> str:
    """'3/3 finished', '1/2 finished, 1 diverged', 'not run'."""
    if group is None:
        return "not run"
    text = f"{len(group.finished)}/{len(group.rows)} finished"
    status = group.status()
    return f"{text}, {status}" if status else text


def _cost(group: Group | None, attr: str) -> int | None:
    if group is None:
        return None
    return next((getattr(r, attr) for r in group.rows if getattr(r, attr) is not None), None)


def _net(config: Config) -> str:
    """'ResNet', 'plain', 'ResNet (B)', 'ResNet preact': how the paper names the row, plus what differs."""
    name = "ResNet" if config.residual else "plain"
    if config.preact:
        name += " preact"
    default_shortcut = "A" if config.family == "cifar" else "B"
    return name + (f" ({config.shortcut})" if config.residual and config.shortcut != default_shortcut else "")


def _missing_line(label: str, group: Group | None) -> str | None:
    """A cell the sweep has trials for but none finished yet (a row no trial is planned for says 'not run' in
    the table and is not listed as missing)."""
    if group is None or group.finished:
        return None
    return f"{label}: {group.status()}"


def _dataset_note(groups: Iterable[Group], paper_dataset: str | tuple[str, ...],
                  paper_table: str) -> tuple[str, ...]:
    papers = (paper_dataset,) if isinstance(paper_dataset, str) else paper_dataset
    others = sorted({g.config.dataset for g in groups} - set(papers))
    if not others:
        return ()
    return (f"Measured on {', '.join(others)}; {paper_table} is {' / '.join(papers)}: the differences do not "
            f"compare like for like.",)


def _stands_in(dataset: str, paper_dataset: str) -> bool:
    return dataset == paper_dataset or dataset == "synthetic"


# ---- Table 6: CIFAR-10 by depth ------------------------------------------------------------------------------


def table6(rows: Iterable[Row], paper: Mapping[str, Any]) -> Table:
    """ResNet Table 6: test error by depth; the paper's ResNet rows always, plain nets and other depths when run."""
    ref = paper["table6"]
    groups = [g for g in group_rows(rows).values()
              if g.config.family == "cifar" and _stands_in(g.config.dataset, ref["dataset"])]
    by_depth = {e["layers"]: e for e in ref["rows"]}
    lines: list[tuple[str, ...]] = []
    missing: list[str] = []

    def line(net: str, depth: int, n: int | None, group: Group | None, entry: Mapping[str, Any] | None) -> None:
        lines.append((net, str(depth), MISSING if n is None else str(n), count_text(_cost(group, "params")),
                      count_text(entry.get("params")) if entry else MISSING,
                      measured_text(group, final_test_error), paper_text(entry, "error"),
                      diff_text(group, final_test_error, entry, "error"),
                      verdict_text(group, final_test_error, entry, "error", ref["dataset"], ref["iterations"]),
                      runs_text(group)))
        gap = _missing_line(f"{net}-{depth}", group)
        if gap:
            missing.append(gap)

    # ResNets by depth: the paper's rows always (measured or not), other depths when run; then plain nets,
    # which Table 6 has no value for
    residual = [g for g in groups if g.config.residual]
    depths = sorted(set(by_depth) | {g.config.depth for g in residual})
    for depth in depths:
        entry = by_depth.get(depth)
        for group in sorted((g for g in residual if g.config.depth == depth), key=lambda g: g.config) or [None]:
            line(_net(group.config) if group else entry["net"], depth,
                 group.rows[0].n if group else entry.get("n"), group, entry)
    for group in sorted((g for g in groups if not g.config.residual), key=lambda g: (g.config.depth, g.config)):
        line(_net(group.config), group.config.depth, group.rows[0].n, group, None)
    for entry in ref.get("reference", ()):
        lines.append((entry["net"], str(entry.get("layers", MISSING)), MISSING, MISSING,
                      count_text(entry.get("params")), MISSING, paper_text(entry, "error"), MISSING, MISSING,
                      "paper only"))
    notes = ("error %: best of the finished seeds, (mean ± sample std) over two or more seeds; diff: best minus "
             "the paper's best, in points.", VERDICT_NOTE) + _dataset_note(groups, ref["dataset"], "Table 6")
    return Table("table6", "CIFAR-10 test error by depth (ResNet Table 6)", ref["source"],
                 ("net", "layers", "n", "params", "paper params", "error %", "paper %", "diff", "verdict", "runs"),
                 "lrrrrrrrll", tuple(lines), notes + degradation(rows, families=("cifar",)), tuple(missing))


# ---- Table 1: multiply-adds and parameters -------------------------------------------------------------------


def table1(rows: Iterable[Row], paper: Mapping[str, Any]) -> Table:
    """Params and multiply-adds of the architectures the sweep ran, counted on the built model, beside the paper."""
    known = paper["architectures"]
    lines = []
    for group in group_rows(rows).values():
        name = group.arch + (f" ({group.config.shortcut})" if group.config.family != "cifar"
                             and group.config.residual else "")
        entry = known.get(group.arch, {}) if group.config.shortcut in ("A", "B") else {}
        params, macs = _cost(group, "params"), _cost(group, "macs")
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


# ---- Tables 2 and 3: ImageNet plain vs residual, shortcut options --------------------------------------------


def _imagenet_groups(rows: Iterable[Row], dataset: str) -> list[Group]:
    return [g for g in group_rows(rows).values()
            if g.config.family == "imagenet" and _stands_in(g.config.dataset, dataset)]


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
        missing += [m for m in [_missing_line(label, group)] if m]
    notes = ("top-1 error %: best of the finished seeds (mean ± sample std over two or more); 10-crop testing "
             "as the paper's (Sec. 3.4): the softmax averaged over the four corners, the center and their flips "
             "of the image resized to 256.", VERDICT_NOTE) + _dataset_note(groups, ref["dataset"], "Table 2")
    return Table("table2", "Plain vs residual on ImageNet (ResNet Table 2)", ref["source"],
                 ("net", "layers", "shortcut", "top-1 %", "paper %", "diff", "verdict", "runs"), "lrlrrrll",
                 tuple(lines),
                 notes + degradation(rows, families=("imagenet",)), tuple(missing))


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
        gap = _missing_line(f"{entry['net']}-{entry['layers']}{entry.get('shortcut', '')}", group)
        missing += [gap] if gap else []
    for group in groups:
        if group.config not in used:
            c = group.config
            line(_net(c).split(" (")[0], str(c.depth), c.shortcut if c.residual else MISSING, group, None,
                 runs_text(group))
    for entry in ref.get("reference", ()):
        line(entry["net"], MISSING, MISSING, None, entry, "paper only")
    notes = ("Errors %: best of the finished seeds (mean ± sample std over two or more), 10-crop testing as the "
             "paper's (Sec. 3.4); top-5: the label among the 5 highest-scoring classes of the crop-averaged "
             "softmax.", VERDICT_NOTE,
             "Table 4's single-model figures (e.g. ResNet-152 19.38 / 4.49) average fully-convolutional scores at "
             "several scales, a test not implemented here; they are not compared.") + _dataset_note(
        groups, ref["dataset"], "Table 3")
    return Table("table3", "Shortcut options and deeper nets on ImageNet (ResNet Table 3)", ref["source"],
                 ("net", "layers", "shortcut", "top-1 %", "paper top-1", "top-1 diff", "top-1 verdict", "top-5 %",
                  "paper top-5", "top-5 diff", "top-5 verdict", "runs"),
                 "lrlrrrlrrrll", tuple(lines), notes, tuple(missing))


# ---- ResNeXt: cardinality x width ----------------------------------------------------------------------------


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
        lines.append((model, str(depth), cxd, dataset, count_text(_cost(group, "params")),
                      count_text(entry.get("params")) if entry else MISSING, measured_text(group, metric),
                      paper_text(entry, key), diff_text(group, metric, entry, key),
                      verdict_text(group, metric, entry, key, dataset, ref["iterations"]), runs))
        if group is not None:
            used.add(group.config)
        gap = _missing_line(f"{model} {cxd} on {dataset}", group) if runs != "paper only" else None
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
             f"Sources: {t3['source']}; {t7['source']}.") + _dataset_note(
        grouped, (t3["dataset"], *t7["datasets"]), "ResNeXt Tables 3 and 7")
    return Table("resnext", "Cardinality vs width at matched complexity (ResNeXt Tables 3 and 7)",
                 f"{t3['source']}; {t7['source']}",
                 ("model", "layers", "C x d", "data", "params", "paper params", "error %", "paper %", "diff",
                  "verdict", "runs"), "lrllrrrrrll", tuple(lines), notes, tuple(missing))


# ---- the degradation check -----------------------------------------------------------------------------------


def _mean_train_error(groups: list[Group]) -> float | None:
    values = [v for g in groups for v in g.summary(final_train_error).values]
    return sum(values) / len(values) if values else None


def degradation(rows: Iterable[Row], families: tuple[str, ...] = ("cifar", "imagenet")) -> tuple[str, ...]:
    """The paper's central observation, checked on the runs: does a deeper plain net end with higher training
    error than a shallower one, and do the residual nets of the same depths avoid it? One sentence per finding.

    Training errors are the final ones, averaged over finished seeds, compared between consecutive depths of
    one family on one dataset.
    """
    groups = [g for g in group_rows(rows).values() if g.config.family in families and not g.config.preact]
    lines: list[str] = []
    for family, dataset in sorted({(g.config.family, g.config.dataset) for g in groups}):
        scope = [g for g in groups if (g.config.family, g.config.dataset) == (family, dataset)]

        def train_error(residual: bool, depth: int) -> float | None:
            return _mean_train_error([g for g in scope if g.config.residual == residual and g.config.depth == depth])

        plain = sorted({g.config.depth for g in scope if not g.config.residual and g.finished})
        plain = [d for d in plain if train_error(False, d) is not None]
        if len(plain) < 2:
            lines.append(f"Degradation check ({family}, {dataset}): needs finished plain nets at two depths or more; "
                         f"this sweep has {len(plain)}.")
            continue
        for shallow, deep in zip(plain, plain[1:]):
            low, high = train_error(False, shallow), train_error(False, deep)
            res_low, res_high = train_error(True, shallow), train_error(True, deep)
            if high > low:
                text = (f"Degradation ({dataset}): plain-{deep} ends with higher training error than plain-{shallow} "
                        f"({percent(high)}% vs {percent(low)}%), as in {DEGRADATION_SOURCE}.")
                if res_low is None or res_high is None:
                    text += f" No finished ResNet-{shallow} and ResNet-{deep} to say whether residual nets avoid it."
                elif res_high <= res_low:
                    text += (f" The residual nets avoid it: ResNet-{deep} {percent(res_high)}% vs "
                             f"ResNet-{shallow} {percent(res_low)}%.")
                else:
                    text += (f" The residual nets degrade too: ResNet-{deep} {percent(res_high)}% vs "
                             f"ResNet-{shallow} {percent(res_low)}%.")
            else:
                text = (f"No degradation ({dataset}): plain-{deep} ends with training error no higher than "
                        f"plain-{shallow} ({percent(high)}% vs {percent(low)}%).")
                if res_low is not None and res_high is not None:
                    text += f" ResNet-{deep} {percent(res_high)}% vs ResNet-{shallow} {percent(res_low)}%."
            lines.append(text)
    return tuple(lines)


# ---- which reports the runs can fill ---------------------------------------------------------------------------

TABLES: dict[str, Callable[[Iterable[Row], Mapping[str, Any]], Table]] = {
    "table6": table6, "table1": table1, "table2": table2, "table3": table3, "resnext": resnext}


def fillable(name: str, rows: Iterable[Row]) -> bool:
    """Whether any finished trial gives this report a measured value (reports a sweep does not name are built
    only then)."""
    finished = [r for r in rows if r.finished]
    if name == "table6":
        return any(r.family == "cifar" for r in finished)
    if name == "table1":
        return bool(finished)
    if name == "table2":
        return any(r.family == "imagenet" and r.depth in (18, 34) for r in finished)
    if name == "table3":
        return any(r.family == "imagenet" for r in finished)
    if name == "resnext":
        return any(r.family == "resnext" for r in finished)
    if name == "fig6":
        return any(len(r.history) >= 1 for r in finished)
    if name == "fig7":
        return any(r.layer_std for r in finished)
    return False
