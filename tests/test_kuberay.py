"""Kubernetes through KubeRay: deploy/kuberay's manifests and the RayJob `resnet-sweep kuberay` writes.

No Kubernetes here: every key of the RayJob is checked against the fields KubeRay's ray.io/v1 schema defines
(transcribed in kuberay_rayjob_schema.yaml, with their types), and what KubeRay would do with the job is checked
through the project's own readers: the entrypoint through the CLI's argparse parser, the mounted sweep through
the sweep reader, runtimeEnvYAML through a YAML parser. (A killed and retried entrypoint on a real cluster is the
retry-safe launch's own test.)
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import build_parser, main
from orchestrator.running.kuberay import KubeRayOptions, manifests
from orchestrator.specs.reading import load_sweep, sweep_from_dict
from resnet_core import yaml12

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kuberay"
SCHEMA = yaml.safe_load((Path(__file__).with_name("kuberay_rayjob_schema.yaml")).read_text())
SWEEP_FILE = "sweeps/table6_cifar10.yaml"
SAMPLE = DEPLOY / "rayjob-table6-cifar10.yaml"
IMAGE, BUCKET, MLFLOW = "ghcr.io/your-org/resnet-sweeps:0.1.0", "s3://your-bucket/ray-results", "http://mlflow:5000"
# The arguments that wrote the sample, and a second set that uses every option that adds fields
SAMPLE_ARGS = [SWEEP_FILE, "--image", IMAGE, "--storage", BUCKET, "--tracking-uri", MLFLOW,
               "--service-account", "resnet-sweeps"]
EVERY_OPTION = KubeRayOptions(image=IMAGE, storage="/mnt/shared/ray-results", tracking_uri=MLFLOW,
                              volume="resnet-sweeps-shared:/mnt/shared", service_account="resnet-sweeps",
                              tracking_secret="mlflow-login", max_workers=4, gpus_per_worker=8, worker_cpus=96,
                              worker_memory="1000Gi", backoff_limit=5, name="table6")
TYPES = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}


def schema_errors(value, schema, path: str = "") -> list[str]:
    """Where `value` leaves the schema tree: a key it does not define, or a value of another type."""
    if isinstance(schema, str):
        if schema == "int-or-string":
            ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
        else:
            ok = isinstance(value, TYPES[schema]) and not (schema != "boolean" and isinstance(value, bool))
        return [] if ok else [f"{path}: {value!r} is not {schema}"]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not an array"]
        return [e for i, item in enumerate(value) for e in schema_errors(item, schema[0], f"{path}[{i}]")]
    if "one of" in schema:
        return [] if value in schema["one of"] else [f"{path}: {value!r} is not one of {schema['one of']}"]
    if not isinstance(value, dict):
        return [f"{path}: {value!r} is not an object"]
    if "*" in schema:
        return [e for key, item in value.items() for e in schema_errors(item, schema["*"], f"{path}.{key}")]
    return [e for key, item in value.items()
            for e in (schema_errors(item, schema[key], f"{path}.{key}".lstrip(".")) if key in schema
                      else [f"{path}.{key}".lstrip(".") + ": not a field of KubeRay's ray.io/v1 RayJob"])]


def written(options: KubeRayOptions = EVERY_OPTION) -> tuple[dict, dict]:
    config_map, job = manifests(load_sweep(ROOT / SWEEP_FILE), SWEEP_FILE, options)
    return config_map, job


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_parses_as_kubernetes_objects(path):
    docs = documents(path)
    assert docs
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys() and doc["metadata"]["name"]


@pytest.mark.parametrize("job", [pytest.param(lambda: documents(SAMPLE)[-1], id="sample"),
                                 pytest.param(lambda: written()[1], id="every-option")])
def test_each_field_of_the_rayjob_is_one_kuberays_schema_defines(job):
    assert schema_errors(job(), SCHEMA) == []


def test_the_schema_check_refuses_unknown_keys_and_wrong_types():
    job = written()[1]
    cluster = job["spec"]["rayClusterSpec"]
    job["spec"]["backOffLimit"] = 2  # a capital O: KubeRay would drop it silently and never retry
    cluster["headGroupSpec"]["rayStartParam"] = {}
    cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resource"] = {}
    cluster["enableInTreeAutoscaling"] = "true"
    cluster["autoscalerOptions"]["upscalingMode"] = "Fast"
    cluster["workerGroupSpecs"][0]["maxReplicas"] = 8.5
    assert sorted(schema_errors(job, SCHEMA)) == sorted([
        "spec.backOffLimit: not a field of KubeRay's ray.io/v1 RayJob",
        "spec.rayClusterSpec.headGroupSpec.rayStartParam: not a field of KubeRay's ray.io/v1 RayJob",
        "spec.rayClusterSpec.workerGroupSpecs[0].template.spec.containers[0].resource: not a field of KubeRay's "
        "ray.io/v1 RayJob",
        "spec.rayClusterSpec.enableInTreeAutoscaling: 'true' is not boolean",
        "spec.rayClusterSpec.autoscalerOptions.upscalingMode: 'Fast' is not one of ['Default', 'Aggressive', "
        "'Conservative']",
        "spec.rayClusterSpec.workerGroupSpecs[0].maxReplicas: 8.5 is not integer"])


def test_the_sample_is_what_the_command_writes(tmp_path, capsys):
    out = tmp_path / "job.yaml"
    assert main(["kuberay", *SAMPLE_ARGS, "--out", str(out)]) == 0
    assert "kubectl apply -f" in capsys.readouterr().out
    (config_map, job), (sample_map, sample_job) = documents(out), documents(SAMPLE)
    assert job == sample_job, (
        f"regenerate the sample: .venv/bin/resnet-sweep kuberay {shlex.join(SAMPLE_ARGS)} --out {SAMPLE}")
    [(key, text)] = sample_map["data"].items()  # the sample's sweep, which later spec fields leave the same sweep
    assert sweep_from_dict(yaml12.load(text)) == sweep_from_dict(yaml12.load(config_map["data"][key]))
    header = SAMPLE.read_text().split("\napiVersion:", 1)[0]
    assert "resnet-sweep kuberay " + shlex.join(SAMPLE_ARGS) in header  # says how it was written


def test_the_job_runs_the_mounted_sweep_with_the_clis_own_run_command():
    config_map, job = written()
    args = shlex.split(job["spec"]["entrypoint"])
    assert args[0] == "resnet-sweep"
    parsed = build_parser().parse_args(args[1:])
    assert (parsed.command, parsed.tracking_uri, parsed.storage) == ("run", MLFLOW, EVERY_OPTION.storage)
    assert not getattr(parsed, "new_launch", False)  # a retry must continue the launch, not start another
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mount = next(m for m in head["containers"][0]["volumeMounts"] if m["name"] == "sweep")
    volume = next(v for v in head["volumes"] if v["name"] == "sweep")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    mounted = Path(parsed.sweep)
    assert str(mounted.parent) == mount["mountPath"] and mounted.name in config_map["data"]
    # the mounted copy is the sweep the user's file describes
    assert sweep_from_dict(yaml12.load(config_map["data"][mounted.name])) == load_sweep(ROOT / SWEEP_FILE)


def test_the_cluster_is_the_one_a_sweep_needs():
    import ray

    _, job = written()
    spec = job["spec"]
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__  # the version the project pins, as installed
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG RAY_VERSION=(\S+)$", dockerfile, re.M)[1] == ray.__version__
    assert "FROM rayproject/ray:${RAY_VERSION}-" in dockerfile
    assert spec["backoffLimit"] >= 1 and spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"env_vars": {"MLFLOW_TRACKING_URI": MLFLOW}}
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # the head drives the sweep; trials go to the GPU workers
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    [gpu] = cluster["workerGroupSpecs"]
    assert cluster["enableInTreeAutoscaling"] is True and gpu["minReplicas"] == 0 == gpu["replicas"]
    assert gpu["maxReplicas"] == 4
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    # checkpoints on the shared volume, which every pod mounts where --storage points
    for pod in (head["template"]["spec"], gpu["template"]["spec"]):
        assert {"name": "shared", "persistentVolumeClaim": {"claimName": "resnet-sweeps-shared"}} in pod["volumes"]
        assert {"name": "shared", "mountPath": "/mnt/shared"} in pod["containers"][0]["volumeMounts"]
        assert pod["serviceAccountName"] == "resnet-sweeps"
        assert pod["containers"][0]["image"] == IMAGE


def test_no_secret_in_what_the_command_writes(capsys):
    """The RayJob and the ConfigMap are readable by anyone who can read the namespace: the tracking server's
    password comes from a Secret by reference, and credentials in a URI are refused with exit 2."""
    _, job = written()
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["env"] == [{"name": f"MLFLOW_TRACKING_{k.upper()}", "valueFrom": {
        "secretKeyRef": {"name": "mlflow-login", "key": k}}} for k in ("username", "password")]
    for flag, value in (("--tracking-uri", "https://alice:s3cr3t@mlflow.example.org"),
                        ("--storage", "s3://AKIAKEY:s3cr3t@your-bucket/ray")):
        args = [*SAMPLE_ARGS, flag, value]
        assert main(["kuberay", *args]) == 2
        out = capsys.readouterr()
        assert "s3cr3t" not in out.out + out.err and flag in out.err


@pytest.mark.parametrize("change, expected", [
    ({"sweep": "sweeps/no_such_sweep.yaml"}, "no_such_sweep.yaml"),
    ({"--image": "ghcr.io/your-org/resnet-sweeps"}, "expected a fixed :TAG or @sha256:DIGEST"),
    ({"--image": "ghcr.io/your-org/resnet-sweeps:latest"}, "expected a fixed :TAG"),
    ({"--image": "ghcr.io/Your-Org/resnet-sweeps:0.1.0"}, "expected an image reference"),
    ({"--image": "Your-Org/resnet-sweeps:0.1.0"}, "expected a lower-case repository path"),
    ({"--image": "rayproject/ray:2.60.0-py311-gpu"}, "Ray's own images lack this project"),
    ({"--storage": "/tmp/ray-results"}, "with no --volume is on each pod's own disk"),
    ({"--storage": "/data/ray", "--volume": "shared:/mnt/shared"}, "not under --volume's mount /mnt/shared"),
    ({"--storage": "s3://"}, "expected a bucket after the scheme"),
    ({"--volume": "shared"}, "expected CLAIM:MOUNT"),
    ({"--tracking-uri": "sqlite:///mlruns.db"}, "lost with it"),
    ({"--gpus-per-worker": "0"}, "--gpus-per-worker 0: expected a whole number >= 1"),
    ({"--set": "resources={workers: 4, gpu_per_worker: 1}", "--max-workers": "2"}, "a trial asks for 4 workers"),
    ({"--set": "resources.cpu=16"}, "at most what one worker pod has"),
    ({"--set": "resources={cpu: 1}"}, "resources.gpu: got None, expected a number of GPUs per trial"),
    ({"--worker-memory": "lots"}, "expected a Kubernetes quantity"),
    ({"--backoff-limit": "0"}, "--backoff-limit 0: expected >= 1"),
    ({"--name": "Table_6"}, "--name 'Table_6': expected a Kubernetes name"),
    ({"--service-account": "Bad Name"}, "--service-account 'Bad Name'"),
])
def test_bad_input_exits_2_naming_the_value_and_writing_nothing(change, expected, tmp_path, capsys):
    args = list(SAMPLE_ARGS)
    for flag, value in change.items():
        if flag == "sweep":
            args[0] = value
        elif flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    out = tmp_path / "job.yaml"
    assert main(["kuberay", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("resnet-sweep kuberay: error: ") and expected in err, err
    assert not out.exists()


def test_the_tracking_server_is_reached_from_the_ray_heads_only():
    from importlib.metadata import version

    kinds = {d["kind"]: d for d in documents(DEPLOY / "mlflow.yaml")}
    assert set(kinds) == {"PersistentVolumeClaim", "Deployment", "Service", "NetworkPolicy"}
    service, policy, deployment = kinds["Service"], kinds["NetworkPolicy"], kinds["Deployment"]
    assert service["spec"]["type"] == "ClusterIP"  # no LoadBalancer, no node port
    port = service["spec"]["ports"][0]["port"]
    assert MLFLOW == f"http://{service['metadata']['name']}:{port}"  # the URI the README and samples pass
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"ray.io/node-type": "head"}}}]
    assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    assert server["image"].endswith(f":v{version('mlflow')}")  # the release the project is tested against
    hosts = next(a for a in server["args"] if a.startswith("--allowed-hosts="))
    assert f"{service['metadata']['name']}:{port}" in hosts.split("=", 1)[1].split(",")
