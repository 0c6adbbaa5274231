"""Searched sweeps: Optuna's TPE (Ray Tune's OptunaSearch) proposes values, this turns each into a whole trial.

Tune's searchers sample flat values; everything after Tune (the trainable, the MLflow callback, the live table,
`status`) expects a trial as a grid sweep has it: {id, name, spec, varied}. `SweepSearch` is a Tune Searcher
that wraps OptunaSearch over the sweep's `search.space` and hands Tune, for each suggestion, the trial that
`specs.expansion.sample_trial` builds from it (base + sampled key paths + overrides), so the rest of the pipeline
does not know whether a trial came from a grid or a sampler. Optuna learns from `search.metric` as the trials report it; a
failed or diverged trial, which reports no metric, counts as pruned.

A search survives its driver: the searcher saves itself (Tune's `Searcher.save_to_dir`: Optuna's study with every
suggestion and result, and the trials it handed out) beside the trials' records whenever it changes, and ASHA its
rungs (`SavedASHA`) after every result. `resume` restores both (`continue_from`): Optuna hears of the trials that
ended after the last save from their records, the trials that did not end are handed out again to continue from
their checkpoints, and new suggestions fill the rest of `num_samples`.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Searcher

from orchestrator.records import trial_record
from orchestrator.specs.expansion import sample_trial
from orchestrator.specs.sweep import Dimension, SweepSpec, Trial
from resnet_core.spec import TrialSpec

# The files a search's state is saved in, in the directory of the trials' records
SEARCH_STATE = Searcher.CKPT_FILE_TMPL.format("resnet-sweeps")
SCHEDULER_STATE = "scheduler-state-resnet-sweeps.pkl"


def distribution(dimension: Dimension) -> Any:
    """The dimension as Optuna's own distribution (both ends included, as the sweep file means them)."""
    from optuna import distributions

    low, high = dimension.values[0], dimension.values[-1]
    if dimension.kind == "choice":
        return distributions.CategoricalDistribution(list(dimension.values))
    if dimension.kind == "int":
        return distributions.IntDistribution(low, high)
    return distributions.FloatDistribution(low, high, log=dimension.kind == "loguniform")


class SweepSearch(Searcher):
    """A Tune Searcher: OptunaSearch's suggestions as whole trials of `sweep` (config {"trial", "state_dir"}),
    saved into `save_dir` (the trials' records' root) whenever it changes."""

    def __init__(self, sweep: SweepSpec, state_dir: str | None, save_dir: str | None = None):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line inside the live table
        search = sweep.search
        super().__init__(metric=search.metric, mode=search.mode)
        self.sweep, self.state_dir, self.save_dir = sweep, state_dir, save_dir
        self.inner = OptunaSearch(space={d.key: distribution(d) for d in search.space}, metric=search.metric,
                                  mode=search.mode, seed=search.seed)
        self.suggested = 0  # the sample's number in its trial's name and id
        self.trials: dict[str, dict[str, Any]] = {}  # Tune's trial id -> the trial handed out for it
        self.told: set[str] = set()  # the Tune trial ids whose end Optuna has heard of
        self.again: list[str] = []  # resumed: earlier trials to hand out again, before any new suggestion
        self.alias: dict[str, str] = {}  # a trial handed out again: its new Tune id -> the id Optuna knows

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the space, metric and mode are the sweep's, set at construction

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.again:  # a resumed search: its unfinished trials first, each from its own checkpoint
            earlier = self.again.pop(0)
            self.alias[trial_id] = earlier
            self._changed()
            return {"trial": self.trials[earlier], "state_dir": self.state_dir}
        values = self.inner.suggest(trial_id)
        if values is None or values == Searcher.FINISHED:
            return values
        trial = sample_trial(self.sweep, values, self.suggested)
        self.suggested += 1
        self.trials[trial_id] = trial.to_dict()
        self._changed()  # before Tune starts it: a record never exists for a trial the saved state lacks
        return {"trial": self.trials[trial_id], "state_dir": self.state_dir}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.inner.on_trial_result(self.alias.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        known = self.alias.get(trial_id, trial_id)
        self.inner.on_trial_complete(known, result=result, error=error)
        self.told.add(known)
        self._changed()

    def _changed(self) -> None:
        if self.save_dir is not None:
            Path(self.save_dir).mkdir(parents=True, exist_ok=True)
            self.save_to_dir(self.save_dir, "resnet-sweeps")  # SEARCH_STATE, replaced atomically

    def save(self, checkpoint_path: str) -> None:
        """This searcher's own state and Optuna's (OptunaSearch.save: its study, sampler and trials) in one file."""
        optuna_path = f"{checkpoint_path}.optuna"
        self.inner.save(optuna_path)
        optuna_state = Path(optuna_path).read_bytes()
        os.remove(optuna_path)
        own = {k: getattr(self, k) for k in ("suggested", "trials", "told", "again", "alias")}
        with open(checkpoint_path, "wb") as file:
            pickle.dump({**own, "optuna": optuna_state}, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            saved = pickle.load(file)
        optuna_path = f"{checkpoint_path}.{os.getpid()}.optuna"
        Path(optuna_path).write_bytes(saved.pop("optuna"))
        try:
            self.inner.restore(optuna_path)
        finally:
            os.remove(optuna_path)
        self.__dict__.update(saved)

    def continue_from(self, records_root: str) -> int:
        """A resumed search: the saved state, Optuna told of every trial whose record ended since it was saved,
        and every trial that did not end queued to be handed out again. Returns the trials Tune is to run:
        those again and the samples not yet suggested."""
        path = os.path.join(self.save_dir or records_root, SEARCH_STATE)
        if not os.path.isfile(path):  # the driver died before the first suggestion: nothing to continue
            return self.sweep.search.num_samples or 0
        self.restore(path)
        self.again, self.alias = [], {}
        for tune_id, info in self.trials.items():
            history = trial_record.read(trial_record.record_path(records_root, info))
            if not history.done:
                self.again.append(tune_id)
            elif tune_id not in self.told:
                # as Tune would have told it: a failed or diverged trial's last result holds no metric
                last = dict(history.epochs[-1]) if history.epochs and history.state in ("finished", "stopped") else None
                self.on_trial_complete(tune_id, result=last)
        self._changed()
        return len(self.again) + self.sweep.search.num_samples - len(self.trials)


def handed_out(records_root: str) -> list[Trial]:
    """The trials a search has handed out so far, as its saved state says; [] before its first suggestion."""
    path = Path(records_root) / SEARCH_STATE
    if not path.is_file():
        return []
    with path.open("rb") as file:
        infos = pickle.load(file)["trials"].values()
    return [Trial(i["id"], i["name"], TrialSpec.from_dict(i["spec"]), tuple(i["varied"].items())) for i in infos]


class SavedASHA(ASHAScheduler):
    """ASHA whose rungs (every trial's result at each) are saved beside the trials' records after each result
    (its own `save`), and restored on `resume`, so a resumed search stops trials against the earlier ones too."""

    def __init__(self, save_dir: str | None, restore: bool, **settings: Any):
        super().__init__(**settings)
        self.save_dir = save_dir
        path = os.path.join(save_dir or "", SCHEDULER_STATE)
        if restore and save_dir is not None and os.path.isfile(path):
            self.restore(path)
            self.save_dir = save_dir

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        self._saved()
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        super().on_trial_complete(tune_controller, trial, result)
        self._saved()

    def _saved(self) -> None:
        if self.save_dir is not None:
            partial = os.path.join(self.save_dir, f".{SCHEDULER_STATE}.{os.getpid()}.tmp")
            self.save(partial)
            os.replace(partial, os.path.join(self.save_dir, SCHEDULER_STATE))
