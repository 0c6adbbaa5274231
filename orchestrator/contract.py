"""The names runs are written and read by: the contract between the tracking writer, the report reader and the
sweep files that name reports.

One parent run per launch (ROLE "sweep", SWEEP = the sweep's name) and one nested child run per trial (ROLE
"trial", TRIAL_ID = the trial's stable id, PARENT = the parent's run id), the trial's flattened spec as params,
per-epoch metrics with step = iteration (a trial's latest value of each is its result: no copy of a curve's last
point), epochs and wall time of a finished trial once as params, `layer_responses.json`, its model(s) as MLflow
LoggedModels, its data sets as run inputs, its process's CPU and memory under `system/`; descriptions (the sweep's,
then the report's summary) on the experiment and parent run, whose metrics are the launch's outcome.
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
# What a finished trial's run keeps once, as params beside its curves: `epochs` trained and `wall_time_s` (training
# and evaluation time summed over its epochs, restarts excluded). Its final errors are its curves' last points.
EPOCHS, WALL_TIME = "epochs", "wall_time_s"
# A finished trial's models (MLflow LoggedModels of its run): `final` weights, and with `tracking.models: best` the
# checkpoint of its lowest validation error too. MODEL_TAG + kind on the run holds the model's id once it is READY.
MODEL_KINDS = ("final", "best")
MODEL_TAG = TAG + "model."
MODEL_ERROR = TAG + "model_error"  # why a finished trial has no model (its checkpoint could not be exported)
MODELS_PARAM = "sweep.tracking.models"  # the parent run's param: final | best | none
BEST_DIR = "best"  # beside a trial's `latest/` checkpoint: the checkpoint of its lowest val_error so far
CHAMPION = "champion"  # the registry alias `resnet-sweep register` sets
SYSTEM = "system/"  # MLflow's prefix of the metrics its System metrics tab shows
# The key of an epoch event holding the system samples taken during that epoch by the trial's leader process:
# [{"time_ms": ..., NAME: value, ...}], each NAME logged as SYSTEM + NAME at step = seconds since the first start
SYSTEM_SAMPLE = "system"
# The parent run's metrics: the launch's outcome, so the experiment's runs table shows each launch at a glance
BEST_TEST_ERROR = "best_test_error"
TRIALS_OUTCOME = {state: f"trials_{state}" for state in ("finished", "failed", "stopped", "diverged")}
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
               "layer_response_names", SYSTEM_SAMPLE)  # the epoch is the step's unit; its time is summed into WALL_TIME
START_TAGS = ("device", "torch", "cuda", "host", "node_id", "workers", "resumed_from_iteration")  # TAG + each
# The fallback ladder (resnet_core/fallback.py): the rung a trial's latest start trained on (`compiled bf16`, ...)
# and why a faster one was dropped; keys of its epoch events, each also its run's tag TAG + key.
RUNG_FIELDS = ("rung", "fallback")
RUNG, FALLBACK = (TAG + k for k in RUNG_FIELDS)
# Population-based training: a trial's mutated hyperparameters as curves (HPARAM + key path, e.g. hparam.optim.lr,
# per epoch: MLflow params cannot change value), its exploits as an artifact, and how many its run has (a tag).
HPARAM, EXPLOITS, EXPLOIT_COUNT = "hparam.", "exploits.json", TAG + "exploits"
# The reports `report:` may name and `resnet-sweep report` builds (orchestrator/report: tables, then figures).
REPORT_NAMES = ("table6", "table1", "table2", "table3", "resnext", "fig6", "fig7")
