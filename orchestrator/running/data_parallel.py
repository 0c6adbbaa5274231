"""Trials trained data-parallel on several processes: Ray Train's TorchTrainer inside the Tune trial.

`resources: {workers: N, gpu_per_worker: 1}` makes each Tune trial a small driver that runs a TorchTrainer of N
workers. Ray Train starts the processes (on any nodes), sets up torch.distributed (NCCL on GPUs, gloo on CPUs) and
reserves their resources; every worker runs the same `run_trial` as a one-process trial, and train() shards the
batches and wraps the model in DDP. Rank 0's results reach Tune through Ray's TuneReportCallback, so the MLflow
callback, progress table and reports see one trial as always. A retried trial starts from rank 0's `latest/`
checkpoint on file-system storage; on object storage rank 0 reports its checkpoints to Ray Train, which keeps
them in the trial's directory (`train/`), and a retry, a fresh TorchTrainer of the same name there, starts from
the newest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.records.trial_record import trial_dirname
from orchestrator.running.resources import TrialResources
from orchestrator.running.trainable import run_trial

TRAIN_RUN_NAME = "train"  # Ray Train's run directory inside the Tune trial's directory


def data_parallel_trainable(config: dict[str, Any], resources: TrialResources, experiment_path: str) -> None:
    """The Tune trial: run the TorchTrainer and return when it has; a failed worker fails the Tune trial, which
    Tune's FailureConfig retries (Ray Train itself does not retry, so failures are counted once)."""
    from ray import train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    worker = {"CPU": resources.cpu, **({"GPU": resources.gpu} if resources.gpu else {})}
    trainer = TorchTrainer(
        worker_loop, train_loop_config=config,
        scaling_config=train.ScalingConfig(num_workers=resources.workers, use_gpu=resources.gpu > 0,
                                           resources_per_worker=worker),
        run_config=train.RunConfig(
            name=TRAIN_RUN_NAME, storage_path=f"{experiment_path}/{trial_dirname(config['trial'])}",
            callbacks=[TuneReportCallback()], failure_config=train.FailureConfig(max_failures=0),
            checkpoint_config=train.CheckpointConfig(num_to_keep=2)))
    trainer.fit()


def worker_loop(config: dict[str, Any]) -> None:
    """One rank: the trial's usual loop, reporting to Ray Train (a collective: every rank reports each epoch)."""
    import torch
    from ray import train

    if torch.cuda.is_available():
        from ray.train.torch import get_device

        torch.cuda.set_device(get_device())  # this rank's GPU; train() uses the current device

    def report(result: dict[str, Any], checkpoint_dir: Path | None) -> None:
        train.report(result, checkpoint=train.Checkpoint.from_directory(str(checkpoint_dir))
                     if checkpoint_dir is not None else None)

    run_trial(config, report, train.get_checkpoint(), leader=train.get_context().get_world_rank() == 0)
