"""The names runs are written and read by: the contract between the tracking writer, the report reader and the
sweep files that name reports.

One parent run per launch (ROLE "sweep", SWEEP = the sweep's name) and one nested child run per trial (ROLE
"trial", TRIAL_ID = the trial's stable id, PARENT = the parent's run id), the trial's flattened spec as params,
per-epoch metrics with step = iteration, the final errors, epochs and wall time of a finished trial once,
`layer_responses.json`; descriptions (the sweep's, then the report's summary) on the experiment and parent run.
"""
from __future__ import annotations

TAG = "resnet_sweeps."
ROLE, SWEEP, TRIAL_ID, STATE, LAST_STEP, STARTS = (TAG + k for k in
                                                   ("role", "sweep", "trial_id", "state", "last_step", "starts"))
ERROR, LAST_ERROR, DIVERGED_AT = TAG + "error", TAG + "last_error", TAG + "diverged_at_iteration"
PARENT = "mlflow.parentRunId"
TRIAL_STATES = ("finished", "pending", "running", "stopped", "diverged", "failed")  # a child run's STATE tag
FINAL = "final_"  # prefix of a finished trial's final results: final_test_error, ...
# What a finished trial's run keeps once, beside its per-epoch curves: FINAL + each error its last epoch measured,
# `epochs` trained and `wall_time_s` (training and evaluation time summed over its epochs, restarts excluded).
FINAL_ERRORS = ("train_error", "test_error", "val_error", "test_top5_error", "val_top5_error", "test_error_1crop",
                "test_top5_error_1crop")
EPOCHS, WALL_TIME = "epochs", "wall_time_s"
NOTE = "mlflow.note.content"  # MLflow's description of an experiment or run (markdown, shown on its page)
EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3: which UI an experiment belongs to
LAYER_RESPONSES = "layer_responses.json"  # Figure 7: {"layers": [names], "std": [floats]}, on finished runs
# Keys of an epoch record that are not per-epoch metrics: bookkeeping, and Figure 7's statistics (which go to
# LAYER_RESPONSES). Every other number is a metric; a list of [iteration, value] pairs (points within the epoch,
# e.g. a finer training curve) is a metric logged at those steps.
NOT_METRICS = ("event", "time_ms", "iteration", "epoch", "epochs", "epoch_time", "done", "layer_response_std",
               "layer_response_names")  # the epoch is the step's unit; its time is summed into WALL_TIME
START_TAGS = ("device", "torch", "cuda", "host", "node_id", "workers", "resumed_from_iteration")  # TAG + each
# The reports `report:` may name and `resnet-sweep report` builds (orchestrator/report: tables, then figures).
REPORT_NAMES = ("table6", "table1", "table2", "table3", "resnext", "fig6", "fig7")
