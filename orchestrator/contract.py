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
SWEEP_ROLE, TRIAL_ROLE = "sweep", "trial"  # ROLE of a launch's parent run, of a trial's child run
VERSION = TAG + "version"  # the parent run's: the package version that launched it
GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own tag for the source commit, shown on the run's page
# A child run's STATE tag: a trial's state. STOPPED: ended early by the scheduler (ASHA), not an error.
FINISHED, PENDING, RUNNING, STOPPED = "finished", "pending", "running", "stopped"
DIVERGED, FAILED = "diverged", "failed"
TRIAL_STATES = (FINISHED, PENDING, RUNNING, STOPPED, DIVERGED, FAILED)
TERMINAL_STATES = (FINISHED, DIVERGED, FAILED, STOPPED)  # trial states that end a start: it trains no further
FINAL = "final_"  # prefix of a finished trial's final results: final_test_error, ...
# What a finished trial's run keeps once, beside its per-epoch curves: FINAL + each error its last epoch measured,
# `epochs` trained and `wall_time_s` (training and evaluation time summed over its epochs, restarts excluded).
FINAL_ERRORS = ("train_error", "test_error", "val_error", "test_top5_error", "val_top5_error", "test_error_1crop",
                "test_top5_error_1crop")
EPOCHS, WALL_TIME = "epochs", "wall_time_s"
MODEL_PARAMS, MODEL_MACS = "model.params", "model.macs"  # child-run params: the size counted on the built model
SWEEP_FILE = "sweep.yaml"  # the parent run's artifact: the launch's resolved sweep file
REPORTS_PARAM = "report"  # the parent run's param: the sweep's `report:` list
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
