"""Population-based training over a sweep's trials (Ray Tune's PopulationBasedTraining), and what an exploit leaves.

Tune's PBT gives an exploiting trial a copy of the whole config of the trial it copies, identity included (its id
and name: its record, its MLflow run). `Population` lets PBT rank, exploit and explore as it does, then gives the
trial its own identity back with the explored values in its spec, and appends the exploit to the trial's record
(epoch, from which trial, old and new values, the checkpoint it continues from). The trial then continues from that
checkpoint (`exploit_restore`); `resume` hands each trial the spec of its latest exploit (`continued`), and
the population's first round comes once every trial has caught up with the one furthest ahead (`first_round`).

Rounds are synchronous (every trial reaches the same epoch before any exploits): a trial continues from a checkpoint
of the same epoch as its own, so its record and its MLflow history never step back in iterations.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from ray.tune.schedulers import PopulationBasedTraining

from orchestrator.contract import HPARAM
from orchestrator.records import trial_record
from orchestrator.specs.sweep import Dimension, SchedulerSpec
from resnet_core.specio import set_path


def domain(dimension: Dimension) -> Any:
    """A mutation as PBT takes it: a Tune domain to scale or draw from, or the list of choices to step along."""
    from ray import tune

    low, high = dimension.values[0], dimension.values[-1]
    if dimension.kind == "choice":
        return list(dimension.values)
    if dimension.kind == "int":
        return tune.randint(low, high + 1)
    return (tune.loguniform if dimension.kind == "loguniform" else tune.uniform)(low, high)


def spec_value(spec: dict[str, Any], key: str) -> Any:
    """The value at key path `key` (optim.lr) of a trial spec dict."""
    value: Any = spec
    for part in key.split("."):
        value = value[part]
    return value


def hyperparameters(config: dict[str, Any]) -> dict[str, float]:
    """A PBT trial's mutated values as per-epoch metrics (hparam.optim.lr, ...); {} for other sweeps."""
    spec = config["trial"]["spec"]
    return {HPARAM + key: float(spec_value(spec, key)) for key in config.get("mutable", ())}


class Population(PopulationBasedTraining):
    """PBT on the per-epoch `epoch` (it survives a restart, unlike Tune's training_iteration), rounds every
    `perturbation_interval` epochs; the mutated values are flat config keys (optim.lr) beside config["trial"]."""

    def __init__(self, scheduler: SchedulerSpec, records_root: str, first_round: int = 0):
        super().__init__(time_attr="epoch", metric=scheduler.metric, mode=scheduler.mode,
                         perturbation_interval=scheduler.perturbation_interval, burn_in_period=first_round,
                         hyperparam_mutations={d.key: domain(d) for d in scheduler.mutations},
                         quantile_fraction=scheduler.quantile_fraction,
                         resample_probability=scheduler.resample_probability, log_config=False, synch=True)
        self.keys = [d.key for d in scheduler.mutations]
        self.records_root = records_root
        self.own: dict[str, dict[str, Any]] = {}  # Tune's trial id -> the trial's own config["trial"]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        info = trial.config["trial"]
        self.own[trial.trial_id] = info
        for key in self.keys:  # PBT explores these; the trial's spec says where each starts
            trial.config[key] = spec_value(info["spec"], key)
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get("final"):  # a trial's last epoch (or its end as diverged/failed): nothing left to explore
            return self.CONTINUE
        decision = super().on_trial_result(tune_controller, trial, result)
        for other in tune_controller.get_trials():  # a synchronous round may exploit any paused trial
            own = self.own.get(other.trial_id)
            if own is not None and other.config["trial"]["id"] != own["id"]:
                self._took_over(other, own, result if other is trial else other.last_result or {})
        return decision

    def _took_over(self, trial: Any, own: dict[str, Any], last: dict[str, Any]) -> None:
        """`trial` now holds a copy of another trial's config: its own identity back, the explored values in
        the other's spec, and the exploit in its record."""
        source = trial.config["trial"]
        values = {key: trial.config[key] for key in self.keys}
        spec = source["spec"]
        for key, value in values.items():
            spec = set_path(spec, key, value)
        checkpoint = trial.checkpoint  # PBT has made the source's latest checkpoint this trial's
        number = int((own.get("exploit") or {}).get("n", 0)) + 1
        info = {**own, "spec": spec, "exploit": {"n": number, "from": source["id"],
                                                 "checkpoint": checkpoint.path if checkpoint else None}}
        trial.set_config({**trial.config, "trial": info})
        self.own[trial.trial_id] = info
        trial_record.append(trial_record.record_path(self.records_root, info), [trial_record.event(
            "exploit", n=number, epoch=last.get("epoch"), at_iteration=last.get("iteration"),
            from_trial=source["id"], from_name=source["name"], checkpoint=info["exploit"]["checkpoint"],
            old={key: spec_value(own["spec"], key) for key in self.keys}, new=values, spec=spec)])


def first_round(infos: list[dict[str, Any]], records_root: str, interval: int) -> int:
    """The epoch of a resumed population's first round: past every trial's last epoch and on the rounds' grid,
    so that every trial reaches it before any exploits (PBT's burn-in: no round before it). 0 for a new one."""
    reached = [int(history.epochs[-1].get("epoch", 0)) for history in
               (trial_record.read(trial_record.record_path(records_root, info)) for info in infos) if history.epochs]
    return (max(reached) // interval + 1) * interval if reached else 0


def continued(info: dict[str, Any], records_root: str) -> dict[str, Any]:
    """A PBT trial as `resume` hands it to a fresh Tuner: with the spec of its latest exploit, if it had one."""
    exploits = trial_record.read(trial_record.record_path(records_root, info)).exploits
    if not exploits:
        return info
    last = exploits[-1]
    return {**info, "spec": last["spec"], "exploit": {"n": last["n"], "from": last["from_trial"],
                                                       "checkpoint": last.get("checkpoint")}}


def exploit_restore(info: dict[str, Any], record: Path | None, previous: Any, durable: Path | None,
                    work: Path) -> tuple[Path | None, dict[str, Any]]:
    """The checkpoint a trial continues from after an exploit it has not started from yet (the other trial's,
    which Tune hands it, or on `resume` the one its record names), copied into the trial's own latest/ so a
    retry continues from it; with the start event's fields (which exploit, a digest of the weights). (None, {})
    when there is no such exploit: the trial continues from its own checkpoints. On object storage (no record
    here, no latest/) Tune's checkpoint of the trial is the one to continue from in either case."""
    exploit = info.get("exploit")
    if not exploit or record is None or any(s.get("exploit") == exploit["n"]
                                            for s in trial_record.read(record).starts):
        return None, {}
    from ray import tune

    found = previous if previous is not None else (tune.Checkpoint(exploit["checkpoint"])
                                                   if exploit.get("checkpoint") else None)
    if found is None:
        return None, {}
    restored = Path(found.to_directory(str(work / "exploited")))
    if durable is not None:
        durable.mkdir(parents=True, exist_ok=True)
        partial = durable / f".exploited.{os.getpid()}.tmp"
        shutil.copyfile(restored / "checkpoint.pt", partial)
        os.replace(partial, durable / "checkpoint.pt")
    return restored, {"exploit": exploit["n"], "exploited_from": exploit["from"], "weights": weights_digest(restored)}


def weights_digest(checkpoint_dir: Path) -> str:
    """sha256 over a checkpoint's model tensors in name order: which weights a trial started from."""
    from resnet_core.checkpoint import load_checkpoint

    digest = hashlib.sha256()
    for name, tensor in sorted(load_checkpoint(checkpoint_dir)["model"].items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()
