"""A real two-node Ray cluster and an MLflow server on one machine, inside a network namespace of their own.

The namespace has only a loopback interface, so Ray's nodes find no routable address and use 127.0.0.1, and
nothing these tests start is reachable from, or reaches, any other address. Each node is a separate `ray start`
(its own raylet, object store and resources); every process is killed when the context ends, even on failure.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

BIN = Path(sys.executable).parent
RAY_PORT, DASHBOARD_PORT, MLFLOW_PORT = 6379, 8265, 5000


def can_make_namespaces() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


# The GCS pings each raylet every 500 ms and declares it dead after 3 misses (milliseconds; Ray's defaults are
# 3000 ms x 5 with a 10 s timeout, half a minute before a dead machine's trials are retried).
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "1000",
                   "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "1000"}


@dataclass
class LoopbackCluster:
    namespace: str
    root: Path  # scratch space: ray temp dir, MLflow store, shared Tune storage
    env: dict[str, str]
    cpus_per_node: int = 1

    @property
    def shared_dir(self) -> Path:
        """Seen alike by both nodes."""
        return self.root / "shared"

    @property
    def head_only_dir(self) -> Path:
        """The worker node sees an empty tmpfs here (a private mount): storage only the head sees."""
        return self.root / "head-only"

    @property
    def jobs_address(self) -> str:
        return f"http://127.0.0.1:{DASHBOARD_PORT}"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{MLFLOW_PORT}"

    @property
    def backend_store(self) -> str:
        return f"sqlite:///{self.root}/mlflow.db"

    def command(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *args]

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def start(self, *args: str, log: str, append: bool = False) -> subprocess.Popen:
        with open(self.root / log, "a" if append else "w") as out:
            return subprocess.Popen(self.command(*args), env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start_worker_node(self) -> None:
        """`ray start` a worker node in a mount namespace of its own, with a tmpfs over head_only_dir."""
        worker = shlex.join(["ray", "start", f"--address=127.0.0.1:{RAY_PORT}", f"--num-cpus={self.cpus_per_node}",
                             "--disable-usage-stats"])
        self.run("unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f"mount -t tmpfs tmpfs {shlex.quote(str(self.head_only_dir))} && {worker}")

    def worker_node_pids(self) -> dict[int, str]:
        """pid -> process title of every process of the worker node: those of the namespace that see the worker's
        private tmpfs over head_only_dir (its raylet, agents and Ray workers; the head and MLflow do not)."""
        mount_point = f" {self.head_only_dir} "
        found = {}
        for pid in _namespace_pids(self.namespace):
            try:
                if mount_point in Path(f"/proc/{pid}/mountinfo").read_text():
                    found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:  # exited meanwhile
                continue
        return found

    def start_mlflow(self) -> None:
        """Start the tracking server (on the same store and artifacts as before, after a kill) and wait until it
        answers an API call."""
        self.start("env", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",  # no job-runner processes (GenAI jobs)
                   "mlflow", "server", "--host", "127.0.0.1", "--port", str(MLFLOW_PORT),
                   "--backend-store-uri", self.backend_store, "--artifacts-destination",
                   str(self.root / "artifacts"), "--workers", "1", log="mlflow.log", append=True)
        _wait_for_port(self, MLFLOW_PORT, timeout=60)
        _wait_for_tracking_api(self, timeout=90)

    def mlflow_pids(self) -> dict[int, str]:
        """pid -> command line of the tracking server's processes (the `mlflow server` and the web server it runs)."""
        found = {}
        for pid in _namespace_pids(self.namespace):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [w.decode(errors="replace") for w in argv[:4]]
            if any(w.rsplit("/", 1)[-1] in ("mlflow", "uvicorn", "gunicorn") or w.startswith("mlflow.server")
                   for w in words):
                found[pid] = " ".join(words)
        return found

    def kill_mlflow(self, timeout: float = 10) -> dict[int, str]:
        """SIGKILL every process of the tracking server, as a redeployed or crashed server pod."""
        return _kill_until_gone(self.mlflow_pids, timeout)

    def kill_worker_node(self, timeout: float = 10) -> dict[int, str]:
        """SIGKILL the whole worker node at once, as a machine that loses power: returns what was killed.
        Repeats until none of its processes is left (a raylet may fork a worker while it is being killed)."""
        return _kill_until_gone(self.worker_node_pids, timeout)


@contextmanager
def loopback_cluster(cpus_per_node: int = 1, ray_env: Mapping[str, str] | None = None) -> Iterator[LoopbackCluster]:
    """ray_env: extra environment for every process started (e.g. RAY_health_check_* for the GCS: how soon a
    dead node is declared dead)."""
    namespace = f"rsweep-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="rsw-"))  # short: Ray's socket paths must fit in 107 characters
    # Ray 2.5x enables token authentication on `ray start --head`; every client here uses the same token file.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "RESNET_SWEEPS_HOME": str(root / "home")}
    env.pop("RAY_ADDRESS", None)
    env.update(ray_env or {})
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    cluster = LoopbackCluster(namespace, root, env, cpus_per_node)
    try:
        cluster.run("ip", "link", "set", "lo", "up")
        cluster.run("ray", "start", "--head", f"--port={RAY_PORT}", f"--num-cpus={cpus_per_node}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD_PORT}", f"--temp-dir={root}/ray",
                    "--disable-usage-stats")
        cluster.head_only_dir.mkdir()
        cluster.shared_dir.mkdir()
        cluster.start_worker_node()
        cluster.start_mlflow()
        yield cluster
    finally:
        _kill_namespace(namespace)
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(cluster: LoopbackCluster, port: int, timeout: float) -> None:
    probe = (f"import socket,sys; s=socket.socket(); s.settimeout(1); "
             f"sys.exit(s.connect_ex(('127.0.0.1', {port})))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.run(sys.executable, "-c", probe, check=False).returncode == 0:
            return
        time.sleep(0.5)
    log = (cluster.root / "mlflow.log").read_text() if (cluster.root / "mlflow.log").exists() else ""
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} in {cluster.namespace} after {timeout}s\n{log}")


def _wait_for_tracking_api(cluster: LoopbackCluster, timeout: float) -> None:
    """Wait until the MLflow server answers an API call, not just accepts connections: its first request creates
    and migrates the SQLite store (many seconds on a busy machine), longer than `run` waits for the server."""
    probe = ("import urllib.request; urllib.request.urlopen("
             f"'{cluster.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1', timeout=30).read()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.run(sys.executable, "-c", probe, timeout=60, check=False).returncode == 0:
            return
        time.sleep(0.5)
    log = (cluster.root / "mlflow.log").read_text() if (cluster.root / "mlflow.log").exists() else ""
    raise TimeoutError(f"the MLflow server in {cluster.namespace} answered no API call in {timeout}s\n{log}")


def _kill_until_gone(pids_of: Callable[[], dict[int, str]], timeout: float) -> dict[int, str]:
    """SIGKILL what `pids_of()` lists until it lists nothing (a parent may fork while it is being killed)."""
    killed: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while pids := pids_of():
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes still alive after {timeout}s: {pids}")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed.update(pids)
        time.sleep(0.2)
    return killed


def _namespace_pids(namespace: str) -> list[int]:
    listed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in listed]


def _kill_namespace(namespace: str) -> None:
    for sig in ("-TERM", "-KILL"):
        pids = [str(pid) for pid in _namespace_pids(namespace)]
        if pids:
            subprocess.run(["kill", sig, *pids], capture_output=True)
            time.sleep(2 if sig == "-TERM" else 0.5)
    subprocess.run(["ip", "netns", "del", namespace], capture_output=True)

