"""Load, the suite's small version of bench/load_sweep.py (200 trials, figures in bench/RESULTS.md):
12 tiny trials through the installed `resnet-sweep run` on 2 CPUs; every trial has one finished child run in
MLflow, and the driver's memory does not grow once the first third of the trials has finished."""
from __future__ import annotations

import pytest

from bench.load_sweep import FLAT_AFTER, run_load, summary

pytestmark = pytest.mark.slow

SEEDS, LRS = 3, 4  # 12 trials: about 25 s on a quiet 2-core machine, most of it Ray's and MLflow's start-up
BOUND_MIB = 30  # the 200-trial bench grew ~12 MiB over its last 180 trials; a leak of 3 MiB a trial fails


def test_a_dozen_tiny_trials_all_logged_and_driver_memory_flat(tmp_path):
    # No models: their export (test_mlflow_models.py) would be most of this test's time, not what it measures.
    result = run_load(tmp_path, SEEDS, LRS, num_cpus=2, interval=0.25, timeout=600, models="none")
    report = "\n".join(summary(result, 2, BOUND_MIB))
    print(report)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.runs == result.finished == result.distinct == SEEDS * LRS, report  # none lost, none twice
    assert len(result.samples) > 10, report
    assert result.growth_after(FLAT_AFTER) < BOUND_MIB, report
