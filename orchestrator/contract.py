"""The names runs are written and read by: the contract between the tracking writer, the report reader and the
sweep files that name reports.

One parent run per launch (ROLE "sweep", SWEEP = the sweep's name) and one nested child run per trial (ROLE
"trial", TRIAL_ID = the trial's stable id, PARENT = the parent's run id), the trial's flattened spec as params,
per-epoch metrics with step = iteration, `final_<metric>` metrics of a finished trial, `layer_responses.json`.
"""
from __future__ import annotations

TAG = "resnet_sweeps."
ROLE, SWEEP, TRIAL_ID, STATE, LAST_STEP, STARTS = (TAG + k for k in
                                                   ("role", "sweep", "trial_id", "state", "last_step", "starts"))
ERROR, LAST_ERROR, DIVERGED_AT = TAG + "error", TAG + "last_error", TAG + "diverged_at_iteration"
PARENT = "mlflow.parentRunId"
TRIAL_STATES = ("finished", "pending", "running", "diverged", "failed")  # a child run's STATE tag
FINAL = "final_"  # prefix of a finished trial's final metrics: final_test_error, ...
LAYER_RESPONSES = "layer_responses.json"  # Figure 7: {"layers": [names], "std": [floats]}, on finished runs
# Keys of an epoch record that are not per-epoch metrics: bookkeeping, and Figure 7's statistics (which go to
# LAYER_RESPONSES). Every other number is a metric; a list of [iteration, value] pairs (points within the epoch,
# e.g. a finer training curve) is a metric logged at those steps.
NOT_METRICS = ("event", "time_ms", "iteration", "epochs", "done", "layer_response_std", "layer_response_names")
START_TAGS = ("device", "torch", "cuda", "host", "node_id", "workers", "resumed_from_iteration")  # TAG + each
# The reports `report:` may name and `resnet-sweep report` builds (orchestrator/report: tables, then figures).
REPORT_NAMES = ("table6", "table1", "table2", "table3", "resnext", "fig6", "fig7")
