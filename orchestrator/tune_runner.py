"""Ray Tune runs a sweep's trials: one Tune trial per expanded trial spec.

The trainable only adapts `resnet_core.train.train`: it records and reports each epoch, restarts from the trial's
latest checkpoint after a crash or a `resume`, and turns a DivergedError (state diverged) or a SpecError (bad
data, spec or checkpoint: state failed, with its message) into a final result instead of an error, so Tune's
FailureConfig retries real crashes (a killed process, a lost node, out of memory) from the last checkpoint but
never a trial that the same settings would end the same way again. Checkpoints: on file-system storage (local or
shared) train() keeps the trial's `latest/` directory current and that is the one restarts use, with the trial's
record (orchestrator/trial_record.py) beside it; on object storage (s3://) they go through Tune's API
(`tune.get_checkpoint()`, or the newest one found by `resume`). Local Ray starts itself (no dashboard) unless
RAY_ADDRESS or `--address` names a cluster.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from orchestrator import trial_record
from orchestrator.sweep import SweepSpec, Trial

# A function trainable waits at every report until the driver has taken the result and asked for the next: a
# round trip through Tune's event loop per epoch (about 50 ms on a busy 2-core machine, bench/RESULTS.md).
# Tune's result buffering lets the trial's actor collect results for this long and hand them over together, so
# training runs on meanwhile; a trial's last result is never held back. What the live table and MLflow show lags
# by at most this much; the trial's own record (file-system storage) is written as each epoch ends regardless.
RESULT_BUFFER_S = "5"
_joined_cluster = False  # set by init_ray: this driver joined a cluster rather than starting a local Ray


def trainable(config: dict[str, Any]) -> None:
    """One trial in one process: config["trial"] is Trial.to_dict() ({id, name, spec, varied}, and `restore_from`
    when `resume` found a Tune checkpoint on object storage); config["state_dir"] is the Tune experiment
    directory when every node sees it as a file system (None for s3:// and the like)."""
    from ray import tune

    def report(result: dict[str, Any], checkpoint_dir: Path | None) -> None:
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir))
                    if checkpoint_dir is not None else None)

    run_trial(config, report, tune.get_checkpoint(), leader=True)


# report(result, checkpoint directory or None): Tune's report, or Ray Train's from a data-parallel worker.
Report = Callable[[dict[str, Any], "Path | None"], None]


def run_trial(config: dict[str, Any], report: Report, previous: Any, leader: bool) -> None:
    """Train config's trial, record and report every epoch. `previous` is the checkpoint Ray hands back on a
    retry after a crash (None on a first start); `leader` is the process that owns the checkpoints and the record
    (the only one when a trial is not data-parallel)."""
    from resnet_core.spec import TrialSpec
    from resnet_core.specio import SpecError
    from resnet_core.train import DivergedError, OutOfMemoryError, train

    info = config["trial"]
    work = Path(tempfile.mkdtemp(prefix="resnet-trial-"))
    durable = latest_dir(config)
    checkpoint_dir = durable or work / "checkpoint"
    record = durable.parent / trial_record.FILENAME if durable is not None and leader else None
    for_driver: list[dict[str, Any]] = []  # object storage: events the driver records (see trial_record)

    def note(*events: dict[str, Any]) -> None:
        if leader and record is not None:
            trial_record.append(record, list(events))
        elif leader:
            for_driver.extend(events)

    def end(outcome: dict[str, Any]) -> None:
        """The trial ends here as `outcome` says (diverged, failed): a final result, so Tune does not retry it."""
        note(outcome)
        result = {"state": outcome["event"], "final": True,
                  **{k: outcome[k] for k in ("error", "diverged_at_iteration") if k in outcome}}
        report({**result, "record": for_driver} if for_driver else result, None)

    try:
        spec = TrialSpec.from_dict(info["spec"])
        restored = None
        if durable is not None and (durable / "checkpoint.pt").is_file():
            # A retry after a crash, or `resume` after the driver died: train() rewrites this one before every
            # report, so it is never older than the checkpoint Ray hands back (and often an epoch newer).
            restored = durable
        elif previous is not None or info.get("restore_from"):
            from ray import tune

            found = previous if previous is not None else tune.Checkpoint(info["restore_from"])
            restored = Path(found.to_directory(str(work / "restored")))
        iteration, last_epoch = _restored_position(restored)  # now: train() rewrites latest/ as it goes
        events = [trial_record.event("start", resumed_from_iteration=iteration, **environment())]
        if last_epoch and (record is None or last_epoch["iteration"] > trial_record.read(record).last_iteration):
            events.append(trial_record.event("epoch", **last_epoch))  # killed after its checkpoint, before its line
        note(*events)
        try:
            for metrics in train(spec, checkpoint_dir=checkpoint_dir, resume_from=restored):
                note(trial_record.event("epoch", **metrics))
                result = {k: v for k, v in metrics.items() if k != "done"}  # "done" means stop to Tune
                result["final"] = bool(metrics.get("done"))
                if for_driver:
                    result["record"], for_driver = for_driver, []
                # Ray gets a copy only when storage is no file system (s3://): otherwise latest/ is the newest
                # checkpoint every node sees, and a copy per epoch would double the checkpoint I/O for nothing.
                report(result, checkpoint_dir if leader and durable is None and checkpoint_dir.is_dir() else None)
        except DivergedError as err:  # recorded as an outcome, not retried: the same seed diverges again
            end(trial_record.event("diverged", diverged_at_iteration=err.iteration, error=str(err)))
    except SpecError as err:
        # Bad data, a bad spec or a checkpoint that is refused: the same settings would fail again, so the trial
        # ends here as `failed` with its message (`final`: `resume` does not run it again either).
        end(trial_record.event("failed", final=True, error=f"{type(err).__name__}: {err}"))
    except OutOfMemoryError as err:  # a crash all the same (a retry may land on a freer GPU); say whose
        err.args = (f"trial {info['name']}: {err}",)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def latest_dir(config: dict[str, Any]) -> Path | None:
    """The trial's own always-current checkpoint directory inside the Tune experiment directory.

    train() rewrites it atomically before every report; a retried trial and one that `resume` starts again in
    a fresh Tuner continue from it, and its record (trial_record) sits beside it.
    """
    if not config.get("state_dir"):
        return None
    return Path(config["state_dir"]) / trial_record.trial_dirname(config["trial"]) / "latest"


def _restored_position(checkpoint: Path | None) -> tuple[int, dict[str, Any] | None]:
    """Schedule position of a restored checkpoint (0: a fresh start), for the run's resumed_from tag, and the
    metrics of the epoch it ends."""
    if checkpoint is None:
        return 0, None
    from resnet_core.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    return int(state.get("iteration", -1)), state.get("last_metrics")


def environment() -> dict[str, str]:
    """Where the trial ran: MLflow tags for the GPU, versions, host and data-parallel workers."""
    import torch

    from resnet_core.distributed import Shard

    device = "cpu"
    if torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "":
        device = torch.cuda.get_device_name(0)
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None  # None: a trial outside Ray
    return {"device": device, "torch": torch.__version__, "cuda": str(torch.version.cuda), "host": platform.node(),
            **({"node_id": node} if node else {}), "workers": str(Shard.current().world)}


def trial_name(trial: Any) -> str:
    return trial.config["trial"]["name"]


def trial_dirname(trial: Any) -> str:
    """The Tune trial's directory name (latest_dir(), the record and data-parallel trials rely on it)."""
    return trial_record.trial_dirname(trial.config["trial"])


def shared_state_dir(storage_path: str, experiment_dir: str) -> str | None:
    """The experiment directory as a file-system path, when storage is one (local or shared); else None."""
    if "://" in storage_path and not storage_path.startswith("file://"):
        return None
    return str(Path(storage_path.removeprefix("file://")).expanduser() / experiment_dir)


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Join RAY_ADDRESS/--address when given; else start a local Ray (dashboard off, nothing to start by hand)."""
    global _joined_cluster
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own table; keep Tune's reporter quiet
    # On object storage, keeping few checkpoints forces an experiment snapshot per checkpoint; Tune warns about
    # it on every short epoch.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # The trials' records and MLflow keep the results; Tune's CSV/JSON/TensorBoard copies of every result cost
    # time and complain about lists.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Without those loggers Tune's result summary warns that result.json is missing; its metrics come from
    # the experiment state all the same.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # On Ctrl-C Tune logs how to restore with its own API; the driver prints `resnet-sweep resume NAME` instead.
    logging.getLogger("ray.tune.tune").setLevel(logging.ERROR)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        _joined_cluster = True
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
                 configure_logging=True)


@dataclass(frozen=True)
class TrialResources:
    """What one trial asks Ray for: `workers` processes of `cpu` CPUs and `gpu` GPUs each."""

    cpu: float
    gpu: float
    workers: int = 1
    max_concurrent: int | None = None  # data-parallel trials: as many as the cluster can hold at once


def trial_resources(sweep: SweepSpec) -> tuple[TrialResources, str | None]:
    """Ray resources per trial, and a note when GPUs were asked for where there are none: the local Ray runs the
    trials on CPU; a cluster keeps the request (an autoscaler adds GPU nodes on demand; trials wait till then)."""
    import ray

    cluster = ray.cluster_resources()
    gpus = cluster.get("GPU", 0)
    wanted, workers = sweep.resources.worker_gpu, sweep.resources.workers
    gpu = (1.0 if gpus else 0.0) if wanted is None else wanted
    note = None
    if gpu and not gpus and _joined_cluster:
        note = (f"resources.gpu is {gpu:g} but this Ray cluster has no GPU now: trials wait for GPU nodes "
                "(an autoscaler starts them)")
    elif gpu and not gpus:
        note = f"resources.gpu is {gpu:g} but this machine has no GPU: trials run on CPU"
        gpu = 0.0
    limit = sweep.max_concurrent
    if workers > 1 and limit is None:
        # Ray Train reserves the workers itself, outside Tune's accounting (the trial's own process takes no
        # CPU), so Tune would start every trial at once; cap it at what fits (an autoscaler may grow this).
        fits = [cluster.get("CPU", 0) / (sweep.resources.cpu * workers)] + ([gpus / (gpu * workers)] if gpu else [])
        limit = max(1, int(min(fits)))
    return TrialResources(sweep.resources.cpu, gpu, workers, limit), note


def trial_epochs(trial: Trial) -> int:
    from orchestrator.plan import split_sizes
    from resnet_core.schedule import epochs_for  # an epoch is floor(N / batch) full-batch iterations

    train_images, _ = split_sizes(trial.spec.data)
    return epochs_for(trial.spec.optim.iterations, train_images, trial.spec.optim.batch_size)


def _wrapped(resources: TrialResources, experiment_path: str) -> Any:
    from ray import tune

    if resources.workers == 1:
        return tune.with_resources(trainable, {"cpu": resources.cpu, "gpu": resources.gpu})
    from orchestrator.data_parallel import data_parallel_trainable

    trial = tune.with_parameters(data_parallel_trainable, resources=resources, experiment_path=experiment_path)
    # The trial's own process only waits on Ray Train, whose workers hold the resources. Tune refuses an empty
    # request, so it asks for one byte of memory: a CPU share would keep the last worker's CPU from fitting.
    return tune.with_resources(trial, {"cpu": 0, "memory": 1})


def build_tuner(sweep: SweepSpec, trials: list[Trial], resources: TrialResources, storage_path: str,
                experiment_dir: str, callbacks: list, restore_from: dict[str, str] | None = None) -> Any:
    """A Tuner for `trials` (a fresh one for `resume` too: the trials not done, in the same experiment directory,
    each continuing from its latest/ checkpoint, or from `restore_from[trial id]` on object storage)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from orchestrator.interrupt import WatchInterrupt

    s = sweep.scheduler
    state_dir = shared_state_dir(storage_path, experiment_dir)
    scheduler: Any = FIFOScheduler()
    searched = sweep.search.kind == "optuna"
    if s.kind == "fifo":  # ASHA decides on every result: a buffered trial would train past its stop
        os.environ.setdefault("TUNE_RESULT_BUFFER_LENGTH", "1000")  # epochs a trial may hand over at once
        os.environ.setdefault("TUNE_RESULT_BUFFER_MIN_TIME_S", RESULT_BUFFER_S)
        os.environ.setdefault("TUNE_RESULT_BUFFER_MAX_TIME_S", RESULT_BUFFER_S)
    if s.kind == "asha":
        from orchestrator.sweep import probe_trials

        # Tune's training_iteration counts reports, i.e. epochs; a searched sweep's longest is at its space's ends
        epochs = max(trial_epochs(t) for t in (probe_trials(sweep) if searched else trials))
        scheduler = ASHAScheduler(time_attr="training_iteration", metric=s.metric, mode=s.mode,
                                  max_t=s.max_t or epochs, grace_period=s.grace_period,
                                  reduction_factor=s.reduction_factor)
    search: dict[str, Any] = {}
    infos = [{**t.to_dict(), **({"restore_from": restore_from[t.id]} if t.id in (restore_from or {}) else {})}
             for t in trials]
    space: dict[str, Any] = {"trial": tune.grid_search(infos), "state_dir": state_dir}
    if searched:  # the searcher hands out whole trials (orchestrator/search.py)
        from orchestrator.search import SweepSearch

        search = {"search_alg": SweepSearch(sweep, state_dir), "num_samples": sweep.search.num_samples}
        space = {}
    tune_config = tune.TuneConfig(scheduler=scheduler, reuse_actors=True, trial_name_creator=trial_name,
                                  trial_dirname_creator=trial_dirname,
                                  max_concurrent_trials=resources.max_concurrent or sweep.max_concurrent, **search)
    run_config = tune.RunConfig(
        name=experiment_dir, storage_path=storage_path, verbose=0, callbacks=[*callbacks, WatchInterrupt()],
        failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2))  # s3:// only; ResNet-1202: 0.2 GB each
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
