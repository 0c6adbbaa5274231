"""The trainable: one trial in one process (or one rank of a data-parallel trial), adapting
`resnet_core.train.train` to Ray.

It records and reports each epoch, restarts from the trial's latest checkpoint after a crash or a `resume`, and
turns a DivergedError (state diverged) or a SpecError (bad data, spec or checkpoint: state failed, with its
message) into a final result instead of an error, so Tune's FailureConfig retries real crashes (a killed process,
a lost node, out of memory) from the last checkpoint but never a trial that the same settings would end the same
way again. Checkpoints: on file-system storage (local or shared) train() keeps the trial's `latest/` directory
current and that is the one restarts use, with the trial's record (orchestrator/records/trial_record.py) beside
it; on object storage (s3://) they go through Tune's API (`tune.get_checkpoint()`, or the newest one `resume`
found).
"""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from orchestrator.contract import SYSTEM_SAMPLE
from orchestrator.records import trial_record
from orchestrator.running.best_checkpoint import keep_if_best
from orchestrator.running.pbt import exploit_restore, hyperparameters
from orchestrator.running.system_metrics import Sampler


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
    from resnet_core.failures import DivergedError, OutOfMemoryError
    from resnet_core.spec import TrialSpec
    from resnet_core.specio import SpecError
    from resnet_core.train import train

    info = config["trial"]
    work = Path(tempfile.mkdtemp(prefix="resnet-trial-"))
    durable = latest_dir(config)
    checkpoint_dir = durable or work / "checkpoint"
    record = durable.parent / trial_record.FILENAME if durable is not None and leader else None
    for_driver: list[dict[str, Any]] = []  # object storage: events the driver records (see trial_record)
    sampler = Sampler().start() if leader else None  # the process's CPU, memory, GPU: into each epoch's line

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
        restored, exploited = None, {}
        if info.get("exploit"):  # population-based training: continue another trial's checkpoint, new values
            restored, exploited = exploit_restore(info, record, previous, durable, work)
        if exploited:
            pass  # its own latest/ now holds the other trial's checkpoint
        elif durable is not None and (durable / "checkpoint.pt").is_file():
            # A retry after a crash, or `resume` after the driver died: train() rewrites this one before every
            # report, so it is never older than the checkpoint Ray hands back (and often an epoch newer).
            restored = durable
        elif previous is not None or info.get("restore_from"):
            from ray import tune

            found = previous if previous is not None else tune.Checkpoint(info["restore_from"])
            restored = Path(found.to_directory(str(work / "restored")))
        iteration, last_epoch = _restored_position(restored)  # now: train() rewrites latest/ as it goes
        events = [trial_record.event("start", resumed_from_iteration=iteration, **environment(), **exploited)]
        behind = record is None or (last_epoch or {}).get("iteration", -1) > trial_record.read(record).last_iteration
        if last_epoch and behind and not exploited:  # the other trial's epochs are not this one's
            events.append(trial_record.event("epoch", **last_epoch))  # killed after its checkpoint, before its line
        note(*events)
        try:
            for metrics in train(spec, checkpoint_dir=checkpoint_dir, resume_from=restored):
                metrics = {**metrics, **hyperparameters(config)}  # PBT's values as curves: they change
                note(trial_record.event("epoch", **metrics, **({SYSTEM_SAMPLE: sampler.take()} if sampler else {})))
                if leader:
                    keep_if_best(durable, metrics)  # tracking.models: best logs it once the trial has finished
                result = {k: v for k, v in metrics.items() if k != "done"}  # "done" means stop to Tune
                result["final"] = bool(metrics.get("done"))
                if for_driver:
                    result["record"], for_driver = for_driver, []
                # Ray gets a copy only when storage is no file system (s3://): otherwise latest/ is the newest
                # checkpoint every node sees, and a copy per epoch would double the checkpoint I/O for nothing.
                # PBT copies checkpoints from trial to trial through Tune: one at each round of its own.
                every = config.get("checkpoint_every")
                due = durable is None or (every and (result["final"] or metrics["epoch"] % every == 0))
                report(result, checkpoint_dir if leader and due and checkpoint_dir.is_dir() else None)
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
        if sampler is not None:
            sampler.stop()
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
