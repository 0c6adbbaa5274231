"""Ray Tune runs a sweep's trials: one Tune trial per expanded trial spec.

The trainable only adapts `resnet_core.train.train`: it reports each epoch's metrics, restarts from the trial's
latest checkpoint after a crash or a `resume`, and turns a DivergedError (state diverged) or a SpecError (bad
data, spec or checkpoint: state failed, with its message) into a final result instead of an error, so Tune's
FailureConfig retries real crashes (a killed process, a lost node, out of memory) from the last checkpoint but
never a trial that the same settings would end the same way again. Checkpoints: on file-system storage (local or shared) train() keeps the trial's `latest/`
directory current and that is the one restarts use; on object storage (s3://) they go through Tune's API
(`tune.get_checkpoint()`). Local Ray starts itself (no dashboard) unless RAY_ADDRESS or `--address` names a
cluster.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from orchestrator.sweep import SweepSpec, Trial

# Tune snapshots its experiment state (which trials finished) at most this often; `resume` starts from the
# latest snapshot, and a trial that finished after it is replayed from its final checkpoint without training.
# A snapshot of 200 trials' state takes milliseconds; trials on file-system storage report no Tune checkpoints,
# so nothing else triggers one.
EXPERIMENT_SNAPSHOT_S = "1"
_joined_cluster = False  # set by init_ray: this driver joined a cluster rather than starting a local Ray


def trainable(config: dict[str, Any]) -> None:
    """One trial in one process: config["trial"] is Trial.to_dict() ({id, name, spec, varied});
    config["state_dir"] is the Tune experiment directory when every node sees it as a file system (None for
    s3:// and the like)."""
    from ray import tune

    def report(result: dict[str, Any], checkpoint_dir: Path | None) -> None:
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir))
                    if checkpoint_dir is not None else None)

    run_trial(config, report, tune.get_checkpoint(), leader=True)


# report(result, checkpoint directory or None): Tune's report, or Ray Train's from a data-parallel worker.
Report = Callable[[dict[str, Any], "Path | None"], None]


def run_trial(config: dict[str, Any], report: Report, previous: Any, leader: bool) -> None:
    """Train config's trial and report every epoch. `previous` is the checkpoint Ray hands back on a retry after
    a crash (None on a first start); `leader` is the process that owns the checkpoints and the metric history
    (the only one when a trial is not data-parallel)."""
    from resnet_core.spec import TrialSpec
    from resnet_core.specio import SpecError
    from resnet_core.train import DivergedError, OutOfMemoryError, train

    work = Path(tempfile.mkdtemp(prefix="resnet-trial-"))
    durable = latest_dir(config)
    checkpoint_dir = durable or work / "checkpoint"
    try:
        spec = TrialSpec.from_dict(config["trial"]["spec"])
        restored = None
        if durable is not None and (durable / "checkpoint.pt").is_file():
            # A retry after a crash, or `resume` after the driver died: train() rewrites this one before every
            # report, so it is never older than the checkpoint Ray hands back (and often an epoch newer).
            restored = durable
        elif previous is not None:
            restored = Path(previous.to_directory(str(work / "restored")))
        history = durable.parent / "metrics.jsonl" if durable is not None and leader else None
        iteration, last_epoch = _restored_position(restored)  # now: train() rewrites latest/ as it goes
        first = True
        try:
            for metrics in train(spec, checkpoint_dir=checkpoint_dir, resume_from=restored):
                result = {k: v for k, v in metrics.items() if k != "done"}  # "done" means stop to Tune
                result["final"] = bool(metrics.get("done"))
                if first:
                    result.update(environment(), resumed_from_iteration=iteration)
                    if restored is not None:
                        # Epochs reported before that the driver may not have logged: the history file, and the
                        # checkpoint's own epoch (killed after the checkpoint, before the report). The MLflow
                        # callback logs each step once.
                        backfill = _read_history(history) if history is not None and history.is_file() else []
                        result["backfill"] = backfill + ([_epoch_only(last_epoch)] if last_epoch else [])
                    first = False
                if history is not None:
                    with history.open("a") as f:
                        f.write(json.dumps(_epoch_only(metrics)) + "\n")
                # Ray gets a copy only when storage is no file system (s3://): otherwise latest/ is the newest
                # checkpoint every node sees, and a copy per epoch would double the checkpoint I/O for nothing.
                report(result, checkpoint_dir if leader and durable is None and checkpoint_dir.is_dir() else None)
        except DivergedError as err:  # recorded as an outcome, not retried: the same seed diverges again
            report({"state": "diverged", "diverged_at_iteration": err.iteration, "final": True,
                    "error": str(err)}, None)
    except SpecError as err:
        # Bad data, a bad spec or a checkpoint that is refused: the same settings would fail again, so the trial
        # ends here as `failed` with its message (a final result, so Tune's FailureConfig does not retry it).
        report({"state": "failed", "final": True, "error": f"{type(err).__name__}: {err}"}, None)
    except OutOfMemoryError as err:  # a crash all the same (a retry may land on a freer GPU); say whose
        err.args = (f"trial {config['trial']['name']}: {err}",)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _epoch_only(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _read_history(path: Path) -> list[dict[str, Any]]:
    """Epoch results this trial reported before (one JSON line each; a torn last line is skipped)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def latest_dir(config: dict[str, Any]) -> Path | None:
    """The trial's own always-current checkpoint directory inside the Tune experiment directory.

    Why besides Tune's checkpoints: Tune deletes old checkpoints as new ones arrive but snapshots its experiment
    state only now and then, so after a SIGKILLed driver the snapshot can name a checkpoint that is gone, and
    Tune's restore fails. `resume` therefore restarts unfinished trials and they continue from this directory,
    which train() rewrites atomically before every report.
    """
    if not config.get("state_dir"):
        return None
    return Path(config["state_dir"]) / trial_dirname_of(config["trial"]) / "latest"


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

    return {"device": device, "torch": torch.__version__, "cuda": str(torch.version.cuda),
            "host": platform.node(), "node_id": ray.get_runtime_context().get_node_id(),
            "workers": str(Shard.current().world)}


def trial_name(trial: Any) -> str:
    return trial.config["trial"]["name"]


def trial_dirname(trial: Any) -> str:
    return trial_dirname_of(trial.config["trial"])


def trial_dirname_of(info: dict[str, Any]) -> str:
    """The Tune trial's directory name (latest_dir() and data-parallel trials rely on it)."""
    return f"{info['name']}_{info['id']}"


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
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", EXPERIMENT_SNAPSHOT_S)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own table; keep Tune's reporter quiet
    # Keeping few checkpoints forces an experiment snapshot per checkpoint (wanted: `resume` then knows them);
    # Tune warns about it on every short epoch.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # MLflow is the record; Tune's CSV/JSON/TensorBoard copies of every result cost time and complain about lists.
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
                experiment_dir: str, callbacks: list) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from orchestrator.interrupt import WatchInterrupt

    s = sweep.scheduler
    state_dir = shared_state_dir(storage_path, experiment_dir)
    scheduler: Any = FIFOScheduler()
    searched = sweep.search.kind == "optuna"
    if s.kind == "asha":
        from orchestrator.sweep import probe_trials

        # Tune's training_iteration counts reports, i.e. epochs; a searched sweep's longest is at its space's ends
        epochs = max(trial_epochs(t) for t in (probe_trials(sweep) if searched else trials))
        scheduler = ASHAScheduler(time_attr="training_iteration", metric=s.metric, mode=s.mode,
                                  max_t=s.max_t or epochs, grace_period=s.grace_period,
                                  reduction_factor=s.reduction_factor)
    search: dict[str, Any] = {}
    space: dict[str, Any] = {"trial": tune.grid_search([t.to_dict() for t in trials]), "state_dir": state_dir}
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


def restore_tuner(experiment_path: str, resources: TrialResources) -> Any:
    """The interrupted experiment: finished trials stay finished (never re-run); the others restart and continue
    from their own latest checkpoint (see latest_dir), or from Tune's when storage is not a file system."""
    from ray import tune
    from ray.tune import ResumeConfig

    shared = shared_state_dir(*experiment_path.rstrip("/").rsplit("/", 1)) is not None
    if shared:
        forget_live_trials(Path(experiment_path))
    again = ResumeConfig.ResumeType.RESTART if shared else ResumeConfig.ResumeType.RESUME
    return tune.Tuner.restore(experiment_path, trainable=_wrapped(resources, experiment_path),
                              _resume_config=ResumeConfig(finished=ResumeConfig.ResumeType.SKIP,
                                                          unfinished=again, errored=again))


def forget_live_trials(experiment_dir: Path) -> None:
    """Work around Ray Tune restoring its grid searcher's set of live trials as it was at the last snapshot.

    With `max_concurrent` that set still counts trials that finished (or died with the driver) before the kill,
    nothing removes them after `resume`, and the searcher never hands out the remaining trials: the sweep stalls.
    The restarted trials are tracked by Tune's controller anyway, so the searcher starts with an empty set (at
    worst `max_concurrent` is exceeded while the restarted trials finish). Best effort: files Tune did not write
    in this format are left alone.
    """
    import ray.cloudpickle as pickle

    for path in experiment_dir.glob("basic-variant-state-*.json"):
        try:
            state = pickle.loads(path.read_bytes())
            if not isinstance(state, dict) or not isinstance(state.get("_live_trials"), set):
                continue
            state["_live_trials"] = set()
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(pickle.dumps(state))
            os.replace(tmp, path)
        except Exception:  # noqa: BLE001  a format this workaround does not know: leave it as Tune wrote it
            continue
