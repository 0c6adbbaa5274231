"""The one place that reads MLflow: a sweep's latest parent run and its child runs as typed, frozen Rows.

Reads the layout orchestrator/contract.py names and orchestrator/tracking writes: one parent run per launch (role
"sweep", tagged with the sweep's name), one nested child run per trial with the trial's flattened spec as params
(`model.depth`, `seed`, ...) and its size (`model.params` / `model.macs`), per-epoch metrics with step = iteration
(a trial's result is each curve's last point: the run's latest value) and a finished trial's Figure 7 artifact. Errors stay fractions (0..1) here; tables turn
them into percent.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.contract import FALLBACK, RUNG
from orchestrator.contract import (FAILED, FINISHED, LAYER_RESPONSES, MODEL_MACS, MODEL_PARAMS, PENDING,
                                   REPORTS_PARAM, RUNNING, STATE, SWEEP_FILE, TAG, TRIAL_ID)
from orchestrator.tracking.runs import child_runs, latest_parent, mlflow_client

TOP5_METRIC = "test_top5_error"  # multi-crop (10-crop) on ImageNet folders, as ResNet Table 3
ONE_CROP_METRIC = "test_error_1crop"  # the center crop alone, as ResNeXt's tables (ImageNet folders only)
CURVE_METRIC = "train_error_curve"  # Figure 6's finer training curve: windows of a few dozen iterations


@dataclass(frozen=True)
class Point:
    """One epoch of a trial's history: errors as fractions at `iteration` (MLflow step)."""

    iteration: int
    train_error: float | None
    test_error: float | None


@dataclass(frozen=True)
class Row:
    """One trial (one child run): what ran, how it ended, and what it measured."""

    run_id: str
    run_name: str
    arch: str  # ModelSpec.name: resnet110, plain20, resnext29_8x64d
    family: str  # cifar | imagenet | resnext
    depth: int
    n: int | None  # CIFAR blocks per stage; None on ImageNet
    residual: bool
    shortcut: str  # A | B | C
    cardinality: int
    width: int
    seed: int
    dataset: str  # cifar10 | cifar100 | imagenet | synthetic
    state: str  # one of contract.TRIAL_STATES
    train_error: float | None = None  # final (or latest, for a running trial), fraction
    test_error: float | None = None
    top5_error: float | None = None
    one_crop_error: float | None = None  # ImageNet: top-1 of the center crop alone; None elsewhere
    params: int | None = None
    macs: int | None = None  # multiply-adds for one image
    iterations: int | None = None  # the schedule's total
    iteration: int | None = None  # reached so far (last logged step)
    history: tuple[Point, ...] = ()
    curve: tuple[tuple[int, float], ...] = ()  # (iteration, training error) every few dozen iterations
    layer_names: tuple[str, ...] = ()
    layer_std: tuple[float, ...] = ()  # Figure 7: std of each 3x3 layer's response, in layer order
    preact: bool = False
    subset: bool = False  # trained or tested on part of the dataset (data.train_limit / data.test_limit)
    rung: str | None = None  # the fallback ladder's rung it trained on (`compiled bf16`), when the run says
    fallback: str | None = None  # why a faster rung was dropped on its machine

    @property
    def finished(self) -> bool:
        return self.state == FINISHED


@dataclass(frozen=True)
class SweepRuns:
    """A sweep as MLflow holds it: its experiment, latest parent run, the report list it names, its trials."""

    name: str
    experiment_id: str
    experiment_name: str
    parent_run_id: str
    reports: tuple[str, ...]  # empty: the parent run does not say; build every report the runs can fill
    rows: tuple[Row, ...]


def known_sweeps(tracking_uri: str | None = None) -> list[str]:
    """Experiment names in the store, for an error message that lists what a user can ask for."""
    return sorted(e.name for e in mlflow_client(tracking_uri).search_experiments() if e.name != "Default")


def read_sweep(name: str, tracking_uri: str | None = None) -> SweepRuns | None:
    """The latest launch of sweep `name` and its trials; None when the store has no such sweep.

    The sweep's experiment is its `experiment:` or its name; the parent run is found by its sweep tag, so a
    sweep logged under another experiment name is found too.
    """
    client = mlflow_client(tracking_uri)
    parent = latest_parent(client, name)
    if parent is None:
        return None
    experiment = client.get_experiment(parent.info.experiment_id)
    children = child_runs(client, [parent.info.experiment_id], parent.info.run_id)
    sweep_file = _sweep_file(client, parent.info.run_id)
    rows = [_run_row(client, run) for run in children] + _planned(sweep_file, children)
    return SweepRuns(name=name, experiment_id=experiment.experiment_id, experiment_name=experiment.name,
                     parent_run_id=parent.info.run_id, reports=_report_list(parent, sweep_file),
                     rows=tuple(sorted(rows, key=lambda r: (r.family, r.residual, r.depth, r.cardinality,
                                                            r.width, r.shortcut, r.seed, r.run_name))))


def _sweep_file(client: Any, parent_run_id: str) -> dict[str, Any] | None:
    """The launch's resolved sweep (the parent run's SWEEP_FILE artifact), when it has one."""
    text = _artifact_text(client, parent_run_id, SWEEP_FILE)
    if text is None:
        return None
    from resnet_core import yaml12

    data = yaml12.load(text)
    return data if isinstance(data, dict) else None


def _report_list(parent: Any, sweep_file: dict[str, Any] | None) -> tuple[str, ...]:
    """The sweep's `report:` list from the parent run's params or tags, or its sweep file."""
    raw = parent.data.params.get(REPORTS_PARAM) or parent.data.tags.get(TAG + REPORTS_PARAM)
    if raw is None and sweep_file is not None:
        raw = sweep_file.get("report")
    return parse_report_list(raw)


def _planned(sweep_file: dict[str, Any] | None, children: list[Any]) -> list[Row]:
    """Trials the launch planned that have no child run yet, as pending rows: tables then show their cells as
    missing rather than not run. Nothing when the sweep file is absent or this version cannot read it."""
    if sweep_file is None:
        return []
    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import sweep_from_dict
    from resnet_core.specio import flatten

    try:
        trials = expand(sweep_from_dict(sweep_file))
    except (ValueError, TypeError, KeyError):  # SpecError is a ValueError: a file from another version
        return []
    ids = {run.data.tags.get(TRIAL_ID) for run in children}
    names = {run.info.run_name for run in children}
    return [_row(run_id="", run_name=t.name, params={k: str(v) for k, v in flatten(t.spec.to_dict()).items()},
                 state=PENDING, metrics={}, history=(), layers=((), ()))
            for t in trials if t.id not in ids and t.name not in names]


def parse_report_list(raw: Any) -> tuple[str, ...]:
    """`[table6, fig6]`, "['table6', 'fig6']", '["table6"]' or "table6,fig6" -> ('table6', 'fig6')."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [part.strip(" '\"") for part in raw.strip("[]() ").split(",")]
    return tuple(str(item) for item in raw if str(item))


def _artifact_text(client: Any, run_id: str, path: str) -> str | None:
    names = {a.path for a in client.list_artifacts(run_id)}
    if path not in names:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, path, tmp)).read_text()


def _parse(value: str | None, kind: type) -> Any:
    if value is None or value in ("None", ""):
        return None
    if kind is bool:
        return value.strip().lower() in ("true", "1", "yes")
    return kind(float(value)) if kind is int else kind(value)


def _run_row(client: Any, run: Any) -> Row:
    state = run.data.tags.get(STATE) or _RUN_STATUS.get(run.info.status, RUNNING)
    curve = tuple((m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, CURVE_METRIC),
                                                    key=lambda m: (m.step, m.timestamp)))
    row = _row(run_id=run.info.run_id, run_name=run.info.run_name or run.info.run_id, params=run.data.params,
               state=state, metrics=run.data.metrics, history=_history(client, run.info.run_id),
               layers=_layer_responses(client, run.info.run_id), curve=curve)
    return dataclasses.replace(row, rung=run.data.tags.get(RUNG), fallback=run.data.tags.get(FALLBACK))


def _row(run_id: str, run_name: str, params: dict[str, str], state: str, metrics: dict[str, float],
         history: tuple[Point, ...], layers: tuple[tuple[str, ...], tuple[float, ...]],
         curve: tuple[tuple[int, float], ...] = ()) -> Row:
    from resnet_core.spec import ModelSpec

    model = {key: _parse(params.get(f"model.{key}"), kind) for key, kind in (
        ("family", str), ("depth", int), ("n", int), ("shortcut", str), ("residual", bool), ("preact", bool),
        ("cardinality", int), ("width", int))}
    spec = ModelSpec(**{k: v for k, v in model.items() if v is not None})  # resolves the paper's defaults
    last = history[-1] if history else None
    cost = _cost(spec, params)
    return Row(
        run_id=run_id, run_name=run_name, arch=spec.name,
        family=spec.family, depth=spec.depth, n=spec.n, residual=spec.residual, shortcut=spec.shortcut,
        cardinality=spec.cardinality, width=spec.width, preact=spec.preact,
        seed=_parse(params.get("seed"), int) or 0, dataset=params.get("data.dataset", "cifar10"), state=state,
        train_error=metrics.get("train_error", last.train_error if last else None),
        test_error=metrics.get("test_error", last.test_error if last else None),
        top5_error=metrics.get(TOP5_METRIC), one_crop_error=metrics.get(ONE_CROP_METRIC),
        params=cost[0], macs=cost[1],
        iterations=_parse(params.get("optim.iterations"), int), iteration=last.iteration if last else None,
        history=history, curve=tuple(dict(curve).items()), layer_names=layers[0], layer_std=layers[1],
        subset=any(_parse(params.get(f"data.{k}"), int) for k in ("train_limit", "test_limit")))


# A trial's state from its MLflow run status, for a child run without a STATE tag (one this project did not write:
# a killed run of someone else's is taken as failed, not as stopped by the scheduler)
_RUN_STATUS = {"FINISHED": FINISHED, "FAILED": FAILED, "KILLED": FAILED, "RUNNING": RUNNING, "SCHEDULED": RUNNING}


def _cost(spec: Any, params: dict[str, str]) -> tuple[int | None, int | None]:
    """(params, multiply-adds) as the trial logged them; counted on the model (meta device for ImageNet sizes)
    when it did not."""
    logged = _parse(params.get(MODEL_PARAMS), int), _parse(params.get(MODEL_MACS), int)
    if None not in logged:
        return logged
    from resnet_core.accounting import input_size, model_cost
    from resnet_core.spec import DATASET_CLASSES

    dataset = params.get("data.dataset", "cifar10")
    classes = DATASET_CLASSES.get(dataset) or _parse(params.get("data.num_classes"), int) or 10
    cost = model_cost(spec, classes, input_size(dataset, _parse(params.get("data.image_size"), int)))
    return logged[0] or cost.params, logged[1] or cost.macs


def _history(client: Any, run_id: str) -> tuple[Point, ...]:
    """train_error and test_error by step (iteration), joined on the step."""
    series = {key: {m.step: m.value for m in client.get_metric_history(run_id, key)}
              for key in ("train_error", "test_error")}
    steps = sorted(set(series["train_error"]) | set(series["test_error"]))
    return tuple(Point(step, series["train_error"].get(step), series["test_error"].get(step)) for step in steps)


def _layer_responses(client: Any, run_id: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    text = _artifact_text(client, run_id, LAYER_RESPONSES)
    if text is None:
        return (), ()
    data = json.loads(text)
    return tuple(data.get("layers", ())), tuple(float(s) for s in data.get("std", ()))
