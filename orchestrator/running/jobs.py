"""Sweeps as Ray Jobs on a cluster: stage the code and the resolved sweep, submit, follow, remember.

The job's entrypoint is `python -m orchestrator.cli run sweep.yaml ...` inside a working_dir Ray uploads, so the
cluster runs exactly the code and sweep submitted (the working_dir comes first on the job's Python path), and the
driver runs on the head, where it logs every trial to MLflow: worker nodes never need to reach the tracking server.
"""
from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import orchestrator
import resnet_core
from orchestrator.contract import SWEEP
from orchestrator.records import state
from orchestrator.specs.sweep import SweepSpec
from resnet_core import yaml12

_PACKAGES = (Path(resnet_core.__file__).parent, Path(orchestrator.__file__).parent)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class Submission:
    """What `status` needs to find a submitted sweep again."""

    sweep: str
    job_id: str
    address: str
    tracking_uri: str
    storage: str | None
    submitted: str


def stage(sweep: SweepSpec, into: Path) -> Path:
    """A working_dir holding the two packages and the resolved sweep (with --set applied) as sweep.yaml."""
    for package in _PACKAGES:
        shutil.copytree(package, into / package.name, ignore=_IGNORE)
    (into / "sweep.yaml").write_text(yaml12.dump(sweep.to_dict()))
    return into


def entrypoint(tracking_uri: str, storage: str | None, new_launch: bool = False) -> str:
    words = ["python", "-m", "orchestrator.cli", "run", "sweep.yaml", "--tracking-uri", tracking_uri]
    if storage:
        words += ["--storage", storage]
    if new_launch:
        words.append("--new-launch")
    return shlex.join(words)


def submit(sweep: SweepSpec, address: str, tracking_uri: str, storage: str | None,
           new_launch: bool = False) -> Submission:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    job_id = f"{sweep.name}-{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"  # unique, sorts by time
    with tempfile.TemporaryDirectory(prefix="resnet-sweep-job-") as tmp:
        client.submit_job(entrypoint=entrypoint(tracking_uri, storage, new_launch), submission_id=job_id,
                          runtime_env={"working_dir": str(stage(sweep, Path(tmp)))},
                          metadata={SWEEP: sweep.name})
    submission = Submission(sweep.name, job_id, address, tracking_uri, storage,
                            datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _record(submission)
    return submission


def follow(address: str, job_id: str) -> str:
    """Stream the job's logs to stdout until it ends; returns its final status (SUCCEEDED, FAILED, STOPPED)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    asyncio.run(tail())
    return str(client.get_job_status(job_id).value)


def job_status(submission: Submission) -> str:
    """The job's state as Ray reports it, or why it cannot be read right now."""
    from ray.job_submission import JobSubmissionClient

    try:
        return str(JobSubmissionClient(submission.address).get_job_status(submission.job_id).value)
    except Exception as err:  # an unreachable cluster is a status to show, not a crash of `status`
        return f"unknown ({type(err).__name__}: cluster not reachable at {submission.address})"


def job_error(submission: Submission) -> str | None:
    """Why a FAILED job failed, in one line: the last line of its logs (the driver ends with its error message,
    e.g. `resnet-sweep run: error: ...` when the data is missing on the cluster); None when it did not fail or the
    cluster cannot be reached."""
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(submission.address)
        if str(client.get_job_status(submission.job_id).value) != "FAILED":
            return None
        logs = client.get_job_logs(submission.job_id)
    except Exception:  # noqa: BLE001  an unreachable cluster: job_status already says so
        return None
    from orchestrator.running.progress import last_line

    return last_line(logs)


def submissions() -> list[Submission]:
    folder = state.home() / "submissions"
    return [Submission(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def _record(submission: Submission) -> None:
    folder = state.home() / "submissions"
    folder.mkdir(parents=True, exist_ok=True)
    state.atomic_write(folder / f"{submission.job_id}.json", json.dumps(asdict(submission), indent=2))
