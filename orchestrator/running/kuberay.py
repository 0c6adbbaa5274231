"""A sweep as a KubeRay RayJob: the manifests `resnet-sweep kuberay` writes, so nobody edits YAML to launch one.

Two documents: a ConfigMap holding the resolved sweep (with --set applied), and a RayJob whose entrypoint is the
`resnet-sweep run` a user would type, run on a CPU head (it drives the sweep and logs every trial to MLflow, so
only the head reaches the tracking server) beside an autoscaling group of GPU workers that starts at zero. KubeRay
retries a failed job (`backoffLimit`) by running the same entrypoint on a new cluster whose head has an empty
disk: the launch continues from what lives on the sweep's storage, which is why storage must be shared (a bucket,
or a ReadWriteMany volume every pod mounts) and never the head's own disk. The cluster is deleted a while after
the job ends; the results stay in MLflow and on the storage.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib.metadata import version

import yaml

from orchestrator.running.kuberay_checks import (check_backoff_limit, check_image, check_object_name,
                                                 check_resources, check_storage, check_tracking_uri, job_name,
                                                 parse_volume)
from orchestrator.specs.sweep import SweepSpec
from resnet_core import yaml12

SWEEP_DIR = "/etc/resnet-sweeps"  # where the head mounts the ConfigMap that holds the sweep file
HEAD_CPU, HEAD_MEMORY = "4", "16Gi"  # the driver, Ray's GCS and dashboard, the autoscaler: no trials
IDLE_WORKER_S = 600  # a GPU node idle this long is given back (as deploy/aws-gpu.yaml's idle_timeout_minutes)
KEEP_CLUSTER_S = 600  # after the job ends, time to read its logs and dashboard before the cluster is deleted
GPU = "nvidia.com/gpu"  # the resource NVIDIA's device plugin gives pods; KubeRay turns it into Ray's GPUs


def ray_version() -> str:
    """The installed Ray's version (ray.__version__, read without importing Ray): the version the project pins,
    which KubeRay must be told the image runs."""
    return version("ray")


@dataclass(frozen=True)
class KubeRayOptions:
    """Where a sweep runs on Kubernetes. `volume` is CLAIM:MOUNT, a ReadWriteMany PersistentVolumeClaim mounted
    at MOUNT on the head and every worker (for storage or data under MOUNT); `tracking_secret` names a Secret
    whose keys `username` and `password` the head passes to MLflow; `service_account` is the pods' identity (how
    they reach a bucket without keys in any manifest)."""

    image: str
    storage: str
    tracking_uri: str
    name: str | None = None
    volume: str | None = None
    service_account: str | None = None
    tracking_secret: str | None = None
    max_workers: int = 8
    gpus_per_worker: int = 1
    worker_cpus: int = 8
    worker_memory: str = "32Gi"
    backoff_limit: int = 2


def manifests(sweep: SweepSpec, sweep_file: str, options: KubeRayOptions) -> list[dict]:
    """The ConfigMap with the sweep (read from `sweep_file`) and the RayJob that runs it; raises CliError or
    SpecError (exit 2) on options or resources that cannot work, before anything is written."""
    check_image(options.image)
    check_tracking_uri(options.tracking_uri)
    check_storage(options.storage, parse_volume(options.volume))
    check_resources(sweep, sweep_file, options.max_workers, options.gpus_per_worker, options.worker_cpus,
                    options.worker_memory)
    check_backoff_limit(options.backoff_limit)
    check_object_name("--service-account", options.service_account)
    check_object_name("--tracking-secret", options.tracking_secret)
    name = job_name(sweep.name, options.name)
    mounted = f"{sweep.name}.yaml"  # the resolved sweep, --set applied, as `run` reads it on the head
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"{name}-sweep", "labels": _labels()},
                  "data": {mounted: yaml12.dump(sweep.to_dict())}}
    return [config_map, rayjob(name, f"{SWEEP_DIR}/{mounted}", options)]


def entrypoint(sweep_path: str, options: KubeRayOptions) -> str:
    """The command a user would type on the head; KubeRay runs it again, unchanged, for each retry."""
    return shlex.join(["resnet-sweep", "run", sweep_path, "--tracking-uri", options.tracking_uri,
                       "--storage", options.storage])


def rayjob(name: str, sweep_path: str, options: KubeRayOptions) -> dict:
    volume = parse_volume(options.volume)
    return {
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": name, "labels": _labels()},
        "spec": {
            "entrypoint": entrypoint(sweep_path, options),
            # The driver's environment; MLflow's own default, for any MLflow call that is not given the URI.
            "runtimeEnvYAML": yaml.safe_dump({"env_vars": {"MLFLOW_TRACKING_URI": options.tracking_uri}}),
            "backoffLimit": options.backoff_limit,  # each retry continues the launch from the storage
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": KEEP_CLUSTER_S,
            "rayClusterSpec": {
                "rayVersion": ray_version(),
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"upscalingMode": "Default", "idleTimeoutSeconds": IDLE_WORKER_S},
                # Ray's token authentication: the dashboard accepts jobs, i.e. runs code, only with the token
                # KubeRay generates into a Secret and hands to the head, the workers and the job submitter.
                "authOptions": {"mode": "token"},
                "headGroupSpec": {"rayStartParams": {"num-cpus": "0"},  # no trial on the head
                                  "template": _head_pod(name, options, volume)},
                "workerGroupSpecs": [{
                    "groupName": "gpu", "replicas": 0, "minReplicas": 0, "maxReplicas": options.max_workers,
                    "rayStartParams": {}, "template": _worker_pod(options, volume)}],
            },
        },
    }


def _head_pod(name: str, options: KubeRayOptions, volume: tuple[str, str] | None) -> dict:
    container = {
        "name": "ray-head", "image": options.image,
        "ports": [{"containerPort": 6379, "name": "gcs"}, {"containerPort": 8265, "name": "dashboard"},
                  {"containerPort": 10001, "name": "client"}],
        "resources": {"limits": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY},
                      "requests": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY}},
        "volumeMounts": [{"name": "sweep", "mountPath": SWEEP_DIR, "readOnly": True}] + _mounts(volume),
    }
    if options.tracking_secret:  # MLflow reads these two variables; the password stays in the Secret
        container["env"] = [{"name": f"MLFLOW_TRACKING_{key.upper()}", "valueFrom": {
            "secretKeyRef": {"name": options.tracking_secret, "key": key}}} for key in ("username", "password")]
    volumes = [{"name": "sweep", "configMap": {"name": f"{name}-sweep"}}] + _volumes(volume)
    return {"spec": {**_identity(options), "containers": [container], "volumes": volumes}}


def _worker_pod(options: KubeRayOptions, volume: tuple[str, str] | None) -> dict:
    size = {"cpu": str(options.worker_cpus), "memory": options.worker_memory}
    container = {"name": "ray-worker", "image": options.image,
                 "resources": {"limits": {**size, GPU: str(options.gpus_per_worker)}, "requests": size}}
    if volume:
        container["volumeMounts"] = _mounts(volume)
    spec = {**_identity(options), "containers": [container],
            # GPU node pools are commonly tainted so that only pods asking for GPUs land there
            "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]}
    if volume:
        spec["volumes"] = _volumes(volume)
    return {"spec": spec}


def _identity(options: KubeRayOptions) -> dict:
    return {"serviceAccountName": options.service_account} if options.service_account else {}


def _mounts(volume: tuple[str, str] | None) -> list[dict]:
    return [{"name": "shared", "mountPath": volume[1]}] if volume else []


def _volumes(volume: tuple[str, str] | None) -> list[dict]:
    return [{"name": "shared", "persistentVolumeClaim": {"claimName": volume[0]}}] if volume else []


def _labels() -> dict:
    return {"app.kubernetes.io/part-of": "resnet-sweeps"}


class _ManifestDumper(yaml.SafeDumper):
    """Block style, and multi-line strings (the sweep file, runtimeEnvYAML) as literal blocks people can read."""


_ManifestDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def to_yaml(documents: list[dict], header: str) -> str:
    """The documents as one multi-document YAML file, `header` as its opening comment."""
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comment + yaml.dump_all(documents, Dumper=_ManifestDumper, sort_keys=False, width=120)
