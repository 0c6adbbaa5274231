"""A searched sweep's trials as its report's search section reads them: the values each trial was given for the
searched key paths, its result on the search's metric, and for population-based training the schedule of values
each trial ended up with (the HPARAM curves). Read from the same runs as rows.py, in the layout contract.py names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.contract import EXPLOIT_COUNT, HPARAM, STATE, SWEEP_FILE
from orchestrator.report.rows import SweepRuns
from orchestrator.tracking.runs import child_runs, mlflow_client

Curve = tuple[tuple[int, float], ...]  # (iteration, value)


@dataclass(frozen=True)
class SearchTrial:
    """One trial of a search: what it was given and what it measured at its last epoch."""

    run_name: str
    state: str
    values: tuple[tuple[str, Any], ...]  # searched key path -> value (PBT: the value it started with)
    metric: float | None  # the search's metric (a fraction for errors)
    val_error: float | None
    test_error: float | None
    iteration: int | None  # the last one it logged
    iterations: int | None  # its schedule's
    schedule: tuple[tuple[str, Curve], ...] = ()  # PBT: key path -> its values over iterations
    exploits: int = 0  # PBT: how often it continued another trial's checkpoint


@dataclass(frozen=True)
class Search:
    """How the sweep searched, and its trials."""

    kind: str  # optuna | random | pbt | asha (a grid whose poor trials ASHA stopped)
    scheduler: str  # fifo | asha | pbt
    metric: str
    mode: str  # min | max
    keys: tuple[str, ...]  # the searched key paths
    log_scale: tuple[str, ...]  # those searched on a log scale
    trials: tuple[SearchTrial, ...]


def read_search(tracking_uri: str, sweep: SweepRuns) -> Search | None:
    """The search of `sweep`'s launch; None for a sweep that did not search (a grid run to its end)."""
    client = mlflow_client(tracking_uri)
    spec = _sweep_spec(client, sweep.parent_run_id)
    if spec is None or (spec.search.kind == "grid" and spec.scheduler.kind == "fifo"):
        return None
    search, scheduler = spec.search, spec.scheduler
    if scheduler.kind == "pbt":
        dimensions, metric, mode, kind = scheduler.mutations, scheduler.metric, scheduler.mode, "pbt"
    elif search.kind == "optuna":
        dimensions, metric, mode, kind = search.space, search.metric, search.mode, "optuna"
    else:
        dimensions, metric, mode, kind = (), scheduler.metric, scheduler.mode, search.kind
        if kind == "grid":
            kind = "asha"
    keys = tuple(d.key for d in dimensions) or tuple(key for key, _ in spec.grid)
    log_scale = tuple(d.key for d in dimensions if d.kind == "loguniform")
    runs = child_runs(client, [sweep.experiment_id], sweep.parent_run_id)
    return Search(kind, scheduler.kind, metric, mode, keys, log_scale,
                  tuple(_trial(client, run, keys, metric, scheduler.kind == "pbt") for run in runs))


def _sweep_spec(client: Any, parent_run_id: str) -> Any:
    """The launch's resolved sweep (the parent run's SWEEP_FILE), None without one or from another version."""
    import tempfile
    from pathlib import Path

    from orchestrator.specs.reading import sweep_from_dict
    from resnet_core import yaml12

    if SWEEP_FILE not in {a.path for a in client.list_artifacts(parent_run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(client.download_artifacts(parent_run_id, SWEEP_FILE, tmp)).read_text()
    try:
        return sweep_from_dict(yaml12.load(text))
    except (ValueError, TypeError, KeyError):  # SpecError is a ValueError: a file from another version
        return None


def _trial(client: Any, run: Any, keys: tuple[str, ...], metric: str, pbt: bool) -> SearchTrial:
    params, metrics = run.data.params, run.data.metrics
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    schedule = tuple((key, tuple(sorted((m.step, m.value) for m in client.get_metric_history(
        run.info.run_id, HPARAM + key)))) for key in keys) if pbt else ()
    iterations = params.get("optim.iterations")
    return SearchTrial(run.info.run_name or run.info.run_id, run.data.tags.get(STATE, "pending"),
                       tuple((key, _value(params.get(key))) for key in keys), metrics.get(metric),
                       metrics.get("val_error"), metrics.get("test_error"), max(steps) if steps else None,
                       int(iterations) if iterations else None, schedule, int(run.data.tags.get(EXPLOIT_COUNT, 0)))


def _value(text: str | None) -> Any:
    """A param as the number it was, else its text."""
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
