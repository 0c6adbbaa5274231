"""Ray Tune runs a sweep's trials: one Tune trial per expanded trial spec (the trainable: running/trainable.py).

FIFO sweeps use Tune's result buffering (see RESULT_BUFFER_S); ASHA and PBT see every epoch, and count time in
the trials' own `epoch` (Tune's training_iteration starts again at 1 in a resumed trial). `resume` builds a fresh
Tuner of the trials not done, in the same experiment directory; on object storage it hands each trial Tune's
newest checkpoint of it (newest_tune_checkpoint). A search's searcher and ASHA's rungs are saved beside the trials'
records and restored on `resume` (running/search.py); PBT's population starts its rounds again, each trial with
the values of its latest exploit (running/pbt.py).
"""
from __future__ import annotations

import os
from typing import Any

from orchestrator.records import trial_record
from orchestrator.running.resources import TrialResources
from orchestrator.running.trainable import trainable
from orchestrator.specs.sweep import SweepSpec, Trial

# A function trainable waits at every report until the driver has taken the result and asked for the next: a
# round trip through Tune's event loop per epoch (about 50 ms on a busy 2-core machine, bench/RESULTS.md).
# Tune's result buffering lets the trial's actor collect results for this long and hand them over together, so
# training runs on meanwhile; a trial's last result is never held back. What the live table and MLflow show lags
# by at most this much; the trial's own record (file-system storage) is written as each epoch ends regardless.
RESULT_BUFFER_S = "5"


def trial_name(trial: Any) -> str:
    return trial.config["trial"]["name"]


def trial_dirname(trial: Any) -> str:
    """The Tune trial's directory name (latest_dir(), the record and data-parallel trials rely on it)."""
    return trial_record.trial_dirname(trial.config["trial"])


def trial_epochs(trial: Trial) -> int:
    from resnet_core.schedule import epochs_for, split_sizes  # an epoch is floor(N / batch) full-batch iterations

    train_images, _ = split_sizes(trial.spec.data)
    return epochs_for(trial.spec.optim.iterations, train_images, trial.spec.optim.batch_size)


def _wrapped(resources: TrialResources, experiment_path: str) -> Any:
    from ray import tune

    if resources.workers == 1:
        return tune.with_resources(trainable, {"cpu": resources.cpu, "gpu": resources.gpu})
    from orchestrator.running.data_parallel import data_parallel_trainable

    trial = tune.with_parameters(data_parallel_trainable, resources=resources, experiment_path=experiment_path)
    # The trial's own process only waits on Ray Train, whose workers hold the resources. Tune refuses an empty
    # request, so it asks for one byte of memory: a CPU share would keep the last worker's CPU from fitting.
    return tune.with_resources(trial, {"cpu": 0, "memory": 1})


def build_tuner(sweep: SweepSpec, trials: list[Trial], resources: TrialResources, storage_path: str,
                experiment_dir: str, callbacks: list, restore_from: dict[str, str] | None = None,
                records_root: str | None = None, resumed: bool = False) -> Any:
    """A Tuner for `trials` (a fresh one for `resume` too: the trials not done, in the same experiment directory,
    each continuing from its latest/ checkpoint, or from `restore_from[trial id]` on object storage).
    `records_root`: where the trials' records are, and a search's state beside them; `resumed`: continue the
    search saved there."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from orchestrator.running.interrupt import WatchInterrupt

    s = sweep.scheduler
    state_dir = trial_record.shared_state_dir(storage_path, experiment_dir)
    records_root = records_root or state_dir
    scheduler: Any = FIFOScheduler()
    searched = sweep.search.kind == "optuna"
    if s.kind == "fifo":  # ASHA and PBT decide on every result: a buffered trial would train past its stop
        os.environ.setdefault("TUNE_RESULT_BUFFER_LENGTH", "1000")  # epochs a trial may hand over at once
        os.environ.setdefault("TUNE_RESULT_BUFFER_MIN_TIME_S", RESULT_BUFFER_S)
        os.environ.setdefault("TUNE_RESULT_BUFFER_MAX_TIME_S", RESULT_BUFFER_S)
    if s.kind == "asha":
        from orchestrator.running.search import SavedASHA
        from orchestrator.specs.expansion import probe_trials

        # a searched sweep's longest trial is at its space's ends
        epochs = max(trial_epochs(t) for t in (probe_trials(sweep) if searched else trials))
        scheduler = SavedASHA(records_root, resumed, time_attr="epoch", metric=s.metric, mode=s.mode,
                              max_t=s.max_t or epochs, grace_period=s.grace_period,
                              reduction_factor=s.reduction_factor)
    search: dict[str, Any] = {}
    infos = [{**t.to_dict(), **({"restore_from": restore_from[t.id]} if t.id in (restore_from or {}) else {})}
             for t in trials]
    space: dict[str, Any] = {"trial": tune.grid_search(infos), "state_dir": state_dir}
    if s.kind == "pbt":
        from orchestrator.running.pbt import Population, continued, first_round

        scheduler = Population(s, records_root, first_round(infos, records_root, s.perturbation_interval))
        space = {"trial": tune.grid_search([continued(i, records_root) for i in infos]), "state_dir": state_dir,
                 "mutable": [d.key for d in s.mutations], "checkpoint_every": s.perturbation_interval}
    if searched:  # the searcher hands out whole trials (running/search.py)
        from orchestrator.running.search import SweepSearch

        searcher = SweepSearch(sweep, state_dir, records_root)
        samples = searcher.continue_from(records_root) if resumed else sweep.search.num_samples
        search = {"search_alg": searcher, "num_samples": samples}
        space = {}
    tune_config = tune.TuneConfig(scheduler=scheduler, reuse_actors=True, trial_name_creator=trial_name,
                                  trial_dirname_creator=trial_dirname,
                                  max_concurrent_trials=resources.max_concurrent or sweep.max_concurrent, **search)
    run_config = tune.RunConfig(
        name=experiment_dir, storage_path=storage_path, verbose=0, callbacks=[*callbacks, WatchInterrupt()],
        failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
        # s3:// (and PBT's rounds) only; ResNet-1202: 0.2 GB each. PBT copies the newest one of a round.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=4 if s.kind == "pbt" else 2))
    experiment_path = f"{storage_path.rstrip('/')}/{experiment_dir}"
    return tune.Tuner(_wrapped(resources, experiment_path), param_space=space,
                      tune_config=tune_config, run_config=run_config)


def newest_tune_checkpoint(experiment_path: str, info: dict[str, Any]) -> str | None:
    """The newest checkpoint Tune (or, for a data-parallel trial, Ray Train) kept for a trial on object storage,
    as a URI `resume` hands the trial in a fresh Tuner; None when there is none. Listed with pyarrow's file
    systems, as Ray itself reaches storage."""
    import pyarrow.fs

    found = []
    for sub in ("", "/train"):
        trial = f"{experiment_path.rstrip('/')}/{trial_record.trial_dirname(info)}{sub}"
        fs, path = pyarrow.fs.FileSystem.from_uri(trial)
        try:
            entries = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
        except OSError:
            continue
        found += [(e.base_name, f"{trial}/{e.base_name}") for e in entries
                  if e.type == pyarrow.fs.FileType.Directory and e.base_name.startswith("checkpoint_")]
    return max(found)[1] if found else None
