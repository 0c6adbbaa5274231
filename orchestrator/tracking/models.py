"""A finished trial's network as an MLflow LoggedModel of its run (the Models tab; `mlflow.pytorch.load_model`).

Logged from the trial's checkpoint by the driver's sync (tracking/writer.py), never by the trial: training does
not wait for it. Once per trial and kind (`final`, `best`), named TRIAL-KIND for the Models tab's list (MLflow
allows no `.` there: resnet20-A-lr0_1-seed0-final): a model of that name READY on the run is the one; a PENDING
one (an attempt cut short) is completed rather than a second one made. A name or value MLflow refuses is named in
the run's MODEL_ERROR tag instead of holding the sync up.

Format: MLflow's `pt2` (torch.export) with an example batch of 2, which exports the batch dimension as dynamic (a
batch of 1, the obvious example, specialises the graph to batch size 1). A pt2 model loads without this project's
code and without unpickling anything. Its input is the trial's normalised images [N, 3, H, W] float32, as the
trial evaluated them (data.normalize: the training set's per-pixel mean subtracted, divided by 255), and its
output the class logits. The final metrics at the model's step are linked to it, with the data set each measures.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.contract import BEST_DIR, MODEL_ERROR, MODEL_KINDS, MODEL_MACS, MODEL_PARAMS, MODEL_TAG, TRIAL_ID
from orchestrator.tracking.datasets import dataset_of
from resnet_core.specio import flatten

SERIALIZATION = "pt2"
EXAMPLE_BATCH = 2  # torch.export keeps a size-1 dimension static; 2 makes the batch dimension dynamic
MODEL_TYPE = "resnet"


class ExportError(Exception):
    """The checkpoint could not be turned into a model (not an MLflow error: trying again would not help)."""


def log_trial_models(client: Any, experiment_id: str, wanted: str, run_id: str, run_tags: dict[str, str],
                     trial: dict[str, Any], trial_dir: Path, metrics: list[Any], inputs: list[Any]) -> dict[str, str]:
    """A finished trial's models as `tracking.models` (`wanted`) asks, from its checkpoints in `trial_dir` where
    this machine sees them (on object storage it does not: no model), each unless `run_tags` names it already;
    `metrics`: the run's, those at a model's step are linked to it. Returns the run's tags to set: each model's
    id, or MODEL_ERROR naming a checkpoint that could not be exported."""
    from mlflow.exceptions import MlflowException

    folders = {"final": "latest", "best": BEST_DIR} if wanted == "best" else {"final": "latest"}
    by_step: dict[int, list[Any]] = {}
    for m in metrics:
        by_step.setdefault(m.step, []).append(m)
    tags = {}
    for kind, folder in folders.items() if wanted in MODEL_KINDS else ():
        checkpoint = trial_dir / folder / "checkpoint.pt"
        if run_tags.get(MODEL_TAG + kind) or not checkpoint.is_file():
            continue
        try:
            tags[MODEL_TAG + kind] = log_model(client, experiment_id, run_id, trial, kind, checkpoint, by_step,
                                               inputs, {k: str(v) for k, v in network_size(trial["spec"]).items()})
        except (ExportError, MlflowException) as err:  # a refusal that would not change: said, not retried
            if isinstance(err, MlflowException) and err.error_code != "INVALID_PARAMETER_VALUE":
                raise
            tags[MODEL_ERROR] = f"{kind}: {err}"[-4000:]
    return tags


def network_size(spec: dict[str, Any]) -> dict[str, int]:
    """A trial's network size, counted on the built model: params and multiply-adds for one image."""
    from resnet_core.accounting import trial_cost
    from resnet_core.spec import TrialSpec

    cost = trial_cost(TrialSpec.from_dict(spec))
    return {MODEL_PARAMS: cost.params, MODEL_MACS: cost.macs}


def logged_model(client: Any, experiment_id: str, run_id: str, name: str) -> Any | None:
    """The run's LoggedModel named `name`: a READY one first, else a PENDING one; None when it has none."""
    from mlflow.entities import LoggedModelStatus

    found = client.search_logged_models([experiment_id], max_results=20,
                                        filter_string=f"source_run_id = '{run_id}' AND name = '{name}'")
    ranked = sorted((m for m in found if m.status in (LoggedModelStatus.READY, LoggedModelStatus.PENDING)),
                    key=lambda m: (m.status != LoggedModelStatus.READY, m.creation_timestamp))
    return ranked[0] if ranked else None


def log_model(client: Any, experiment_id: str, run_id: str, trial: dict[str, Any], kind: str, checkpoint: Path,
              metrics: dict[int, list[Any]], inputs: list[Any], params: dict[str, str]) -> str:
    """The model id of the run's `kind` model, logging it from `checkpoint` first when the run has none ready.
    `metrics`: the run's metrics by step (those at the checkpoint's step are linked to the model); `params`: the
    run's size params. Raises ExportError when the checkpoint cannot be exported, MLflow's errors as they come."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric

    name = re.sub(r"[/:.%\"']", "_", f"{trial['name']}-{kind}")  # what MLflow allows in a model's name
    found = logged_model(client, experiment_id, run_id, name)
    if found is not None and found.status == LoggedModelStatus.READY:
        return found.model_id
    with tempfile.TemporaryDirectory() as tmp:
        step, spec = export(checkpoint, Path(tmp) / "model")
        model = found or client.create_logged_model(
            experiment_id, name=name, source_run_id=run_id, model_type=MODEL_TYPE, tags={TRIAL_ID: trial["id"]},
            params={**{k: str(v) for k, v in flatten({"model": spec["model"]}).items()},
                    **{k: params[k] for k in (MODEL_PARAMS, MODEL_MACS) if k in params},
                    "data.dataset": spec["data"]["dataset"], "seed": str(spec["seed"]), "iteration": str(step)})
        _stamp(Path(tmp) / "model", model.model_id, run_id)
        client.log_model_artifacts(model.model_id, str(Path(tmp) / "model"))
    outputs = client.get_run(run_id).outputs if found is not None else None
    if outputs is None or all(o.model_id != model.model_id for o in outputs.model_outputs):
        # A driver killed after this, before the model was READY, left it linked: MLflow refuses a second link.
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    linked = []
    for m in metrics.get(step, []):
        dataset = dataset_of(inputs, m.key) or (None, None)
        linked.append(Metric(m.key, m.value, m.timestamp, m.step, model_id=model.model_id, dataset_name=dataset[0],
                             dataset_digest=dataset[1]))
    if linked:
        client.log_batch(run_id, metrics=linked)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def export(checkpoint: Path, path: Path) -> tuple[int, dict[str, Any]]:
    """Save the checkpoint's network as an MLflow pytorch model at `path`; (its iteration, its trial spec)."""
    try:
        import mlflow.pytorch
        import numpy as np
        import torch

        from resnet_core.accounting import input_size
        from resnet_core.checkpoint import load_checkpoint
        from resnet_core.layout import net_layout
        from resnet_core.model import build_model
        from resnet_core.spec import TrialSpec

        state = load_checkpoint(checkpoint)
        spec = TrialSpec.from_dict(state["spec"])
        net = build_model(spec.model, spec.data.classes)
        net.load_state_dict(state["model"])
        net.eval()
        size = input_size(spec.data.dataset, spec.data.image_size) or net_layout(spec.model).image_size
        example = np.zeros((EXAMPLE_BATCH, 3, size, size), dtype=np.float32)
        mlflow.pytorch.save_model(net, str(path), serialization_format=SERIALIZATION, input_example=example,
                                  pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                                                    f"mlflow=={mlflow.__version__}"])
    except Exception as err:  # noqa: BLE001  any failure here is the checkpoint's or torch.export's
        raise ExportError(f"{checkpoint}: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:500]}") from err
    return int(state["iteration"]), state["spec"]


def _stamp(path: Path, model_id: str, run_id: str) -> None:
    """The MLmodel file names the LoggedModel and run it belongs to, as MLflow's own log_model writes it."""
    from mlflow.models import Model

    meta = Model.load(str(path / "MLmodel"))
    meta.model_id, meta.run_id = model_id, run_id
    meta.save(str(path / "MLmodel"))
