"""Facts about the Ray cluster a sweep runs on, checked before any trial starts.

Since Ray 2.7 the head no longer syncs trial checkpoints from worker nodes: Tune's storage must be a path every
node sees (a shared file system) or a URI (s3://, gs://). A sweep on several nodes with storage only the driver's
node sees would fail much later, when a trial is restored elsewhere, so it is refused here, up front, by asking
every node whether it sees a marker file the driver just wrote.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from orchestrator.errors import CliError

# Storage schemes pyarrow's file systems reach from every node by design.
REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "abfs://", "hdfs://")
VISIBILITY_TIMEOUT_S = 60


def alive_nodes() -> list[dict]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def on_each_node(task: Any, nodes: list[dict], *args: Any) -> list[Any]:
    """Start the Ray task `task` (a @ray.remote function) once on each of `nodes`, pinned there; its refs."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(*args)
            for n in nodes]


def check_shared_storage(storage: str) -> None:
    """Raise CliError (exit 2) when the cluster has several nodes and some cannot see `storage`."""
    import ray

    nodes = alive_nodes()
    if len(nodes) <= 1 or storage.startswith(REMOTE_SCHEMES):
        return
    root = Path(storage.removeprefix("file://")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    marker = root / f".visible-from-every-node-{uuid.uuid4().hex}"
    marker.write_text("written by the sweep driver; removed once every node has looked for it\n")

    @ray.remote(num_cpus=0)
    def sees(path: str) -> bool:
        return os.path.exists(path)

    try:
        seen = _answers(on_each_node(sees, nodes, str(marker)), nodes)
    finally:
        marker.unlink(missing_ok=True)
    blind = [n["NodeManagerAddress"] + f" (node {n['NodeID'][:8]})" for n, ok in zip(nodes, seen) if ok is False]
    if blind:
        raise CliError(
            f"--storage {storage}: not visible from {len(blind)} of the cluster's {len(nodes)} nodes "
            f"({', '.join(blind)}). Since Ray 2.7 the head does not sync trial checkpoints from workers; pass "
            f"--storage with a path every node mounts (NFS, EFS, ...) or a URI such as s3://BUCKET/ray-results.")


def _answers(refs: list[Any], nodes: list[dict]) -> list[bool | None]:
    """Each node's answer; None for a node that left the cluster while it was asked (a preempted spot node): it
    runs no trial, so what it sees does not matter. Any other error is raised."""
    import time

    import ray

    deadline = time.monotonic() + VISIBILITY_TIMEOUT_S
    answers: list[bool | None] = []
    for ref, node in zip(refs, nodes):
        try:
            answers.append(ray.get(ref, timeout=max(0.1, deadline - time.monotonic())))
        except ray.exceptions.RayError:
            if any(n["NodeID"] == node["NodeID"] for n in alive_nodes()):
                raise
            answers.append(None)
    return answers
