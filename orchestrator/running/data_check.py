"""Every trial's data set, checked before a sweep starts anything (Ray trials, MLflow runs, state records).

A sweep whose data is missing must stop with one clear error (exit 2) that names the sweep file and the key that
set `data.root`, not start trials that each fail. Each distinct (dataset, root, download) is looked at once:
here for a local Ray, or on every node that can run the trials when the driver joined a cluster (the data must
be where the trials run). `data.download: true` downloads there, once, instead of once per trial.
"""
from __future__ import annotations

from pathlib import Path

from orchestrator.specs.expansion import origin_of
from orchestrator.specs.sweep import SweepSpec, Trial
from resnet_core.specio import DatasetError, SpecError, to_dict

NODE_CHECK_TIMEOUT_S = 600  # a download on a node may take minutes; a plain look takes milliseconds


def check_sweep_data(sweep: SweepSpec, trials: list[Trial], sweep_file: str, on_cluster: bool) -> None:
    """Raise SpecError when some trial's data set cannot be read (or downloaded, where the trial allows it)."""
    distinct: dict[tuple[str, str, bool], Trial] = {}
    for trial in trials:
        data = trial.spec.data
        if data.dataset != "synthetic":
            distinct.setdefault((data.dataset, data.root, data.download), trial)
    for trial in distinct.values():
        try:
            if on_cluster:
                _check_on_nodes(trial, sweep)
            else:
                from resnet_core.data_check import ensure_dataset

                ensure_dataset(trial.spec.data)
        except DatasetError as err:
            root = trial.spec.data.root
            shown = root if str(Path(root).expanduser()) == err.value else f"{root} (= {err.value})"
            raise SpecError(origin_of(sweep, trial, "data.root"), shown, err.expected, sweep_file) from None


def _check_on_nodes(trial: Trial, sweep: SweepSpec) -> None:
    """ensure_dataset on every alive node that has the resources a trial asks for; the first node's error is
    raised as the DatasetError it is (Ray sends it back pickled). Nodes that join later (an autoscaler's GPU
    nodes) are not checked: a trial there that lacks the data fails once, with this same message."""
    import ray
    from ray.exceptions import RayTaskError

    from orchestrator.running.cluster import alive_nodes, on_each_node

    needs_gpu = bool(sweep.resources.worker_gpu)
    nodes = [n for n in alive_nodes() if n["Resources"].get("CPU", 0) > 0
             and (not needs_gpu or n["Resources"].get("GPU", 0) > 0)]

    @ray.remote(num_cpus=0)
    def look(spec_dict: dict) -> None:
        from resnet_core.data_check import ensure_dataset
        from resnet_core.spec import DataSpec
        from resnet_core.specio import from_dict

        ensure_dataset(from_dict(DataSpec, spec_dict))

    spec = to_dict(trial.spec.data)
    refs = on_each_node(look, nodes, spec)
    errors = []
    for node, ref in zip(nodes, refs):  # every answer is collected: Ray reports errors nobody read at exit
        try:
            ray.get(ref, timeout=NODE_CHECK_TIMEOUT_S)
        except RayTaskError as err:
            errors.append((node, err))
    for node, err in errors:
        if isinstance(err.cause, DatasetError):
            err.cause.expected = f"{err.cause.expected} on node {node['NodeManagerAddress']}"
            raise err.cause from None
    if errors:
        raise errors[0][1]
