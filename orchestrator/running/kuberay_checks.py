"""What `resnet-sweep kuberay` refuses before it writes a RayJob, with exit 2: a CliError that names the option, the
value and what was expected, or a SpecError that names the sweep file's key. A bad value would otherwise surface
only on the cluster, as a pod that never starts, a trial that waits for ever or a sweep that loses its state when
KubeRay retries it."""
from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlparse

from orchestrator.errors import CliError
from orchestrator.running.cluster import REMOTE_SCHEMES
from orchestrator.specs.sweep import SweepSpec
from resnet_core.specio import SpecError, to_dict

# An image reference as container runtimes parse it: an optional registry host[:port]/, lower-case path
# components, then a tag or a digest (both optional to Docker; required here).
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"^(?:(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?)/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
                    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
# Kubernetes quantities as the CRD's pattern for resource limits has them (32Gi, 500M, 1.5e9).
_QUANTITY = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_DNS_LABEL = re.compile(r"^[a-z](?:[-a-z0-9]*[a-z0-9])?$")  # DNS-1035, what KubeRay requires of a RayJob's name
_OBJECT_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$")  # DNS-1123
MAX_JOB_NAME = 47  # KubeRay: a RayCluster's name (the job's plus a suffix) stays within 53 characters
DOCKERFILE = "deploy/kuberay/Dockerfile"


def check_image(image: str) -> None:
    """An image that holds this project (so `resnet-sweep` is on its PATH), pinned by a tag or a digest."""
    parts = _IMAGE.match(image)
    if not parts:
        raise CliError(f"--image {image!r}: expected an image reference such as ghcr.io/your-org/resnet-sweeps:0.1.0 "
                       "(lower-case repository path, then :TAG or @sha256:DIGEST)")
    if not (parts["tag"] or parts["digest"]) or parts["tag"] == "latest" and not parts["digest"]:
        raise CliError(f"--image {image!r}: expected a fixed :TAG or @sha256:DIGEST: KubeRay must be told the "
                       "image's Ray version, and a moving tag can change it under a running cluster")
    registry, path = parts["registry"], parts["path"]
    if registry and not ("." in registry or ":" in registry or registry == "localhost"):
        # no registry after all (Docker's rule): the first path component, which must be lower case
        path = f"{registry}/{path}"
        if not re.fullmatch(_COMPONENT, path.split("/")[0]):
            raise CliError(f"--image {image!r}: expected a lower-case repository path, e.g. "
                           "ghcr.io/your-org/resnet-sweeps:0.1.0")
    if "rayproject" in path.split("/")[:-1]:
        raise CliError(f"--image {image!r}: Ray's own images lack this project (the entrypoint is `resnet-sweep "
                       f"run`); expected an image built from {DOCKERFILE} on them, e.g. "
                       "ghcr.io/your-org/resnet-sweeps:0.1.0")


def check_tracking_uri(uri: str) -> None:
    """A tracking server the head reaches over HTTP: a store on the head pod's disk would go with the pod."""
    if not uri.startswith(("http://", "https://")) or not urlparse(uri).hostname:
        raise CliError(f"--tracking-uri {uri!r}: expected an MLflow tracking server's URL, e.g. http://mlflow:5000 "
                       "(deploy/kuberay/mlflow.yaml); a SQLite or file store would live on the head pod and be "
                       "lost with it")


def parse_volume(volume: str | None) -> tuple[str, str] | None:
    """--volume CLAIM:MOUNT as (claim, mount path), or None."""
    if volume is None:
        return None
    claim, _, mount = volume.partition(":")
    if not _OBJECT_NAME.match(claim) or not mount.startswith("/") or mount == "/":
        raise CliError(f"--volume {volume!r}: expected CLAIM:MOUNT, a ReadWriteMany PersistentVolumeClaim's name "
                       "and an absolute path to mount it at on every pod, e.g. resnet-sweeps-shared:/mnt/shared")
    return claim, mount.rstrip("/")


def check_storage(storage: str, volume: tuple[str, str] | None) -> None:
    """Storage every pod sees and that outlives the cluster: a bucket, or a path on the shared volume."""
    if storage.startswith(REMOTE_SCHEMES):
        parts = urlparse(storage)
        if not parts.hostname:
            raise CliError(f"--storage {storage!r}: expected a bucket after the scheme, e.g. s3://your-bucket/ray")
        if parts.password is not None or parts.username is not None:
            raise CliError(f"--storage {parts.scheme}://***@{parts.hostname}{parts.path}: credentials in the URI "
                           "would be stored in the RayJob, which anyone who can read the namespace reads; give the "
                           "pods an identity that may use the bucket instead (--service-account)")
        return
    path = PurePosixPath(storage.removeprefix("file://"))
    if volume and path.is_absolute() and path.is_relative_to(volume[1]):
        return
    where = f"not under --volume's mount {volume[1]}" if volume else "with no --volume"
    raise CliError(f"--storage {storage!r}: a path {where} is on each pod's own disk: workers would not see the "
                   "checkpoints and a retried job's new head would start without them; expected "
                   f"{', '.join(s + '...' for s in REMOTE_SCHEMES[:2])} or a path under --volume CLAIM:MOUNT (a "
                   "ReadWriteMany PersistentVolumeClaim)")


def check_resources(sweep: SweepSpec, sweep_file: str, max_workers: int, gpus_per_worker: int, cpus: int,
                    memory: str) -> None:
    """Worker pods that can hold the sweep's trials: a trial that fits no pod would wait for ever."""
    for flag, value in (("--max-workers", max_workers), ("--gpus-per-worker", gpus_per_worker),
                        ("--worker-cpus", cpus)):
        if value < 1:
            raise CliError(f"{flag} {value}: expected a whole number >= 1")
    if not _QUANTITY.match(memory):
        raise CliError(f"--worker-memory {memory!r}: expected a Kubernetes quantity such as 32Gi or 64G")
    asks = sweep.resources
    gpu = asks.worker_gpu
    if gpu is None:  # "1 where the cluster has GPUs": this one starts with none, so its trials would get none
        raise SpecError("resources.gpu", gpu, "a number of GPUs per trial (e.g. --set resources.gpu=1, or 0 for "
                        "CPU trials): the GPU workers start at zero, and a sweep that leaves it to the cluster "
                        "would run every trial on the CPU", sweep_file)
    if gpu > gpus_per_worker or asks.cpu > cpus:
        raise SpecError("resources", to_dict(asks), f"at most what one worker pod has (--worker-cpus {cpus}, "
                        f"--gpus-per-worker {gpus_per_worker}): a trial's worker asks for {asks.cpu:g} CPUs and "
                        f"{gpu:g} GPUs", sweep_file)
    if asks.workers * gpu > max_workers * gpus_per_worker:
        raise SpecError("resources", to_dict(asks), f"at most the GPUs of --max-workers {max_workers} pods of "
                        f"--gpus-per-worker {gpus_per_worker}: a trial asks for {asks.workers} workers of {gpu:g} "
                        "GPUs", sweep_file)


def check_object_name(flag: str, name: str | None) -> None:
    """The name of a Kubernetes object the pods refer to (a Secret, a service account)."""
    if name is not None and not _OBJECT_NAME.match(name):
        raise CliError(f"{flag} {name!r}: expected the name of a Kubernetes object in the RayJob's namespace: "
                       "lower-case letters, digits, '-' and '.'")


def check_backoff_limit(limit: int) -> None:
    if limit < 1:
        raise CliError(f"--backoff-limit {limit}: expected >= 1: a retry continues the launch from its storage, so "
                       "a lost head or node costs minutes, not the sweep")


def job_name(sweep_name: str, given: str | None) -> str:
    """The RayJob's name: `given`, else the sweep's name made a Kubernetes name (table6_CIFAR -> table6-cifar)."""
    name = given if given is not None else re.sub(r"[^a-z0-9-]", "-", sweep_name.lower()).strip("-")
    if not _DNS_LABEL.match(name) or len(name) > MAX_JOB_NAME:
        source = f"--name {given!r}" if given is not None else f"sweep name {sweep_name!r} (as {name!r})"
        raise CliError(f"{source}: expected a Kubernetes name for the RayJob: lower-case letters, digits and '-', "
                       f"starting with a letter, at most {MAX_JOB_NAME} characters; pass --name")
    return name
