"""Searched sweeps: Optuna's TPE (Ray Tune's OptunaSearch) proposes values, this turns each into a whole trial.

Tune's searchers sample flat values; everything after Tune (the trainable, the MLflow callback, the live table,
`status`) expects a trial as a grid sweep has it: {id, name, spec, varied}. `SweepSearch` is a Tune Searcher
that wraps OptunaSearch over the sweep's `search.space` and hands Tune, for each suggestion, the trial that
`specs.expansion.sample_trial` builds from it (base + sampled key paths + overrides), so the rest of the pipeline
does not know whether a trial came from a grid or a sampler. Optuna learns from `search.metric` as the trials report it; a
failed or diverged trial, which reports no metric, counts as pruned.
"""
from __future__ import annotations

from typing import Any

from ray.tune.search import Searcher

from orchestrator.specs.expansion import sample_trial
from orchestrator.specs.sweep import Dimension, SweepSpec


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
    """A Tune Searcher: OptunaSearch's suggestions as whole trials of `sweep` (config {"trial", "state_dir"})."""

    def __init__(self, sweep: SweepSpec, state_dir: str | None):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line inside the live table
        search = sweep.search
        super().__init__(metric=search.metric, mode=search.mode)
        self.sweep, self.state_dir = sweep, state_dir
        self.inner = OptunaSearch(space={d.key: distribution(d) for d in search.space}, metric=search.metric,
                                  mode=search.mode, seed=search.seed)
        self.suggested = 0  # the sample's number in its trial's name and id

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the space, metric and mode are the sweep's, set at construction

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        values = self.inner.suggest(trial_id)
        if values is None or values == Searcher.FINISHED:
            return values
        trial = sample_trial(self.sweep, values, self.suggested)
        self.suggested += 1
        return {"trial": trial.to_dict(), "state_dir": self.state_dir}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)
