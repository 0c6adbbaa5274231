"""Verdicts against the papers and the papers' qualitative findings, on hand-made rows: within the spread, better,
worse or no verdict per cell; the reproduction count; degradation, residual vs plain and Figure 7 held or not."""
from __future__ import annotations

import pytest

from orchestrator.report.build import build_report, reproduction_summary
from orchestrator.report.cells import MISSING
from orchestrator.report.cifar_table import table6
from orchestrator.report.findings import findings
from orchestrator.report.imagenet_tables import table3
from orchestrator.report.paper import paper_values
from orchestrator.report.resnext_table import resnext
from orchestrator.report.rows import SweepRuns
from tests.test_report_tables import cells, row

PAPER = paper_values()
FULL = dict(iterations=64000)  # Table 6's schedule


def test_verdict_within_better_worse_against_the_papers_spread():
    rows = [row(20, test=0.0900, **FULL), row(32, test=0.0700, **FULL), row(44, test=0.0760, **FULL),
            row(110, seed=0, test=0.0690, **FULL), row(110, seed=1, test=0.0660, **FULL)]
    table = table6(rows, PAPER)
    assert cells(table, "ResNet", "20")["verdict"] == "within (+0.25, ±0.30)"  # 9.00 vs 8.75, no std: ±0.3
    assert cells(table, "ResNet", "32")["verdict"] == "better (-0.51, ±0.30)"  # 7.00 vs 7.51
    assert cells(table, "ResNet", "44")["verdict"] == "worse (+0.43, ±0.30)"  # 7.60 vs 7.17
    # ResNet-110: mean 6.75 against the paper's mean 6.61 with its std 0.16 as the spread
    assert cells(table, "ResNet", "110")["verdict"] == "within (+0.14, ±0.16)"
    assert cells(table, "ResNet", "56")["verdict"] == MISSING  # not run: nothing to judge
    assert cells(table, "Maxout")["verdict"] == MISSING  # paper-only rows
    assert sorted(v.split()[0] for v in table.verdicts) == ["better", "within", "within", "worse"]


def test_no_verdict_for_runs_not_at_the_papers_scale():
    table = table6([row(20, test=0.45, iterations=400), row(32, test=0.09, subset=True, **FULL),
                    row(44, test=0.07, dataset="synthetic", **FULL),
                    row(56, test=0.3, dataset="synthetic", subset=True, iterations=800)], PAPER)
    assert cells(table, "ResNet", "20")["verdict"] == "no verdict (400 of 64,000 it)"
    assert cells(table, "ResNet", "32")["verdict"] == "no verdict (data subset)"
    assert cells(table, "ResNet", "44")["verdict"] == "no verdict (synthetic)"
    assert cells(table, "ResNet", "56")["verdict"] == "no verdict (synthetic, data subset, 800 of 64,000 it)"
    assert reproduction_summary([table]) == (
        "4 measured cells are not at the paper's scale (other data, a subset or a shorter schedule): no verdict.",)


def test_table3_judges_top1_and_top5_and_the_summary_counts_them():
    imagenet = dict(family="imagenet", dataset="imagenet", iterations=450450)
    rows = [row(34, shortcut="B", test=0.2460, top5=0.0820, **imagenet), row(50, shortcut="B", test=0.2285,
                                                                               top5=0.0640, **imagenet)]
    t3 = table3(rows, PAPER)
    b34 = [dict(zip(t3.columns, r)) for r in t3.rows if r[:3] == ("ResNet", "34", "B")][0]
    assert (b34["top-1 verdict"], b34["top-5 verdict"]) == ("within (+0.08, ±0.30)", "worse (+0.74, ±0.30)")
    r50 = cells(t3, "ResNet", "50")
    assert (r50["top-1 verdict"], r50["top-5 verdict"]) == ("within (+0.00, ±0.30)", "better (-0.31, ±0.30)")
    t6 = table6([row(20, test=0.0875, **FULL), row(32, test=0.09, iterations=400)], PAPER)
    assert reproduction_summary([t3, t6]) == (
        "3 of 5 full-scale cells reproduce the paper (within its spread); 1 better, 1 worse.",
        "1 measured cell is not at the paper's scale (other data, a subset or a shorter schedule): no verdict.")


def test_resnext_cifar100_column_and_imagenet_one_crop():
    rows = [row(29, family="resnext", cardinality=8, width=64, test=0.1790, dataset="cifar100", iterations=117300),
            row(29, family="resnext", cardinality=16, width=64, test=0.0370, iterations=117300),
            row(50, family="resnext", dataset="imagenet", cardinality=32, width=4, test=0.2100,
                one_crop_error=0.2230, iterations=450450)]
    table = resnext(rows, PAPER)
    by = {(r[0], r[2], r[3]): dict(zip(table.columns, r)) for r in table.rows}
    c100 = by[("ResNeXt-29", "8x64d", "cifar100")]
    assert (c100["error %"], c100["paper %"], c100["verdict"]) == ("17.90", "17.77", "within (+0.13, ±0.30)")
    assert by[("ResNeXt-29", "16x64d", "cifar100")]["runs"] == "not run"
    assert by[("ResNeXt-29", "16x64d", "cifar10")]["verdict"] == "within (+0.12, ±0.30)"
    # ResNeXt Table 3 is 1-crop: the center-crop error is compared, not the 10-crop one
    x50 = by[("ResNeXt-50", "32x4d", "imagenet")]
    assert (x50["error %"], x50["diff"], x50["verdict"]) == ("22.30", "+0.10", "within (+0.10, ±0.30)")
    assert not any("Measured on" in note for note in table.notes)  # all three datasets are the paper's


def test_findings_held_with_numbers_and_per_seed():
    rows = [row(20, False, seed=s, train=0.30 + s / 100, layer_std=(2.0, 3.0)) for s in (0, 1)]
    rows += [row(56, False, seed=s, train=0.45, layer_std=(4.0, 6.0)) for s in (0, 1)]
    rows += [row(56, seed=0, train=0.35, layer_std=(1.0, 1.0)), row(56, seed=1, train=0.50, layer_std=(1.0, 1.0))]
    rows += [row(20, seed=s, train=0.25, layer_std=(1.5, 1.5)) for s in (0, 1)]
    found = {f.name: f for f in findings(rows)}
    assert list(found) == ["Degradation (cifar10)", "ResNet-56 trains better than ResNet-20 (cifar10)",
                           "ResNet-20 trains better than plain-20 (cifar10)",
                           "Fig. 7: ResNet-20 responds less than plain-20 (cifar10)",
                           "ResNet-56 trains better than plain-56 (cifar10)",
                           "Fig. 7: ResNet-56 responds less than plain-56 (cifar10)",
                           "Fig. 7: ResNet-56 responds less than ResNet-20 (cifar10)"]
    degradation = found["Degradation (cifar10)"]
    assert degradation.held and (degradation.seeds_held, degradation.seeds) == (2, 2)
    assert degradation.line() == ("Degradation (cifar10): held. training error at the end plain-56 45.0% vs plain-20 "
                                  "30.5% (the paper: the deeper plain net is worse, throughout training). Per seed: "
                                  "held in 2 of 2.")
    resnets = found["ResNet-56 trains better than ResNet-20 (cifar10)"]
    assert not resnets.held and (resnets.seeds_held, resnets.seeds) == (0, 2)  # 42.5% vs 25.0% on the means
    better = found["ResNet-56 trains better than plain-56 (cifar10)"]
    assert better.held and (better.seeds_held, better.seeds) == (1, 2)  # 42.5% vs 45.0% on the means; seed 1 not
    assert found["Fig. 7: ResNet-56 responds less than plain-56 (cifar10)"].text == (
        "mean std of the 3x3 layer responses ResNet-56 1.000 vs plain-56 5.000.")
    deeper = found["Fig. 7: ResNet-56 responds less than ResNet-20 (cifar10)"]
    assert deeper.held and deeper.text.startswith("mean std of the 3x3 layer responses ResNet-56 1.000 vs ResNet-20")


def test_findings_not_held_and_left_out_when_unfinished():
    rows = [row(20, False, train=0.40, layer_std=(1.0,)), row(56, False, train=0.35, layer_std=(0.5,)),
            row(56, train=0.50, layer_std=(2.0,)), row(20, state="running", train=0.3)]
    found = {f.name: f for f in findings(rows)}
    assert not found["Degradation (cifar10)"].held
    assert found["Degradation (cifar10)"].line().startswith(
        "Degradation (cifar10): NOT held. training error at the end plain-56 35.0% vs plain-20 40.0%")
    assert not found["ResNet-56 trains better than plain-56 (cifar10)"].held
    assert not found["Fig. 7: ResNet-56 responds less than plain-56 (cifar10)"].held
    assert not any("ResNet-20" in name for name in found)  # ResNet-20 has not finished: no finding about it


def test_report_states_findings_and_reproduction(tmp_path):
    rows = (row(20, False, train=0.30, layer_std=(2.0,)), row(56, False, train=0.45, layer_std=(4.0,)),
            row(56, train=0.35, test=0.0697, layer_std=(1.0,), **FULL))
    report = build_report(SweepRuns("s", "1", "s", "parent", ("table6",), rows), tmp_path, PAPER)
    assert "## The papers' findings\n\n3 of 3 held. Training error at the end: over the last 100" in report.markdown
    assert "- ResNet-56 trains better than plain-56 (cifar10): held. training error at the end ResNet-56 35.0% vs " \
           "plain-56 45.0%." in report.markdown
    assert "- 1 of 1 full-scale cells reproduce the paper (within its spread); 0 better, 0 worse." in report.markdown
    # one judge: the degradation check, the findings and Table 6's notes say the same, with the same numbers
    (degradation,) = [f.line() for f in findings(rows) if f.name == "Degradation (cifar10)"]
    assert f"## Degradation check\n\n- {degradation}\n\n## The papers' findings" in report.markdown
    assert report.markdown.count(f"- {degradation}\n") == 3  # the check, the findings, Table 6's notes
    assert degradation in (tmp_path / "table6.md").read_text()


def test_training_error_at_the_end_is_the_curves_last_100_iterations():
    from orchestrator.report.findings import late_train_error

    # windows of 20 iterations, then an epoch's end 5 iterations into the next window (a short final epoch)
    curve = tuple((20 * i, 0.9 - 0.01 * i) for i in range(1, 40)) + ((785, 0.50),)
    trial = row(56, train=0.10, curve=curve)  # the final epoch's own mean: 15 iterations, noisy
    # iterations 685..785: 15 of the window ending at 700, four whole windows (720..780), the 5-iteration tail
    expected = (15 * 0.55 + 20 * (0.54 + 0.53 + 0.52 + 0.51) + 5 * 0.50) / 100
    assert late_train_error(trial) == pytest.approx(expected)
    assert late_train_error(row(56, train=0.10)) == 0.10  # no curve: the final epoch's mean


def test_figure6_merges_the_short_windows_of_epoch_ends():
    from orchestrator.report.figures import steady_windows

    # marks every 20 iterations and epoch ends at 157 and 314: the windows 157-160 and 314-320 are short
    curve = [(140, 0.8), (157, 0.7), (160, 0.2), (180, 0.6), (300, 0.5), (314, 0.4), (320, 0.1)]
    assert steady_windows(curve) == [(140, 0.8), (157, 0.7), (180, pytest.approx((3 * 0.2 + 20 * 0.6) / 23)),
                                     (300, 0.5), (314, 0.4), (320, pytest.approx(0.1))]  # the last ends the curve
