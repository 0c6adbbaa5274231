"""Storage faults at checkpoint time: a full disk, a file-size limit, a read-only or unwritable
directory. Each gives a CheckpointWriteError (an OSError: a machine failure, exit 1, not bad input) naming the
file and the system's reason; the previous checkpoint is intact, still loads, and no temporary file is left.

The faults are real, made in a child process so they cannot touch the test runner: RLIMIT_FSIZE (any user: a
write past the limit fails with EFBIG), a 64 KiB tmpfs (ENOSPC) and a read-only remount (EROFS) in a private
mount namespace (root only: CI runs as root, where chmod does not stop writes), chmod 0500 (EACCES, non-root
only). Each child prints one JSON line the test checks.
"""
from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import RESNET_SWEEP
from resnet_core.checkpoint import FILENAME, CheckpointWriteError, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0

# The child: write a small checkpoint, inject the fault, try a big one, report what it saw.
CHILD = textwrap.dedent("""
    import errno, json, os, resource, signal, subprocess, sys
    import torch
    from resnet_core.checkpoint import CheckpointWriteError, load_checkpoint, save_checkpoint

    fault, directory = sys.argv[1], sys.argv[2]
    if fault == "full":  # a 64 KiB file system: the small checkpoint fits, the big one does not
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", directory], check=True)
    previous = {"iteration": 8, "w": torch.arange(16.0)}
    save_checkpoint(directory, previous)
    if fault == "fsize":  # writes past 32 KiB fail with EFBIG (SIGXFSZ ignored, else it kills us)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, resource.RLIM_INFINITY))
    elif fault == "readonly":
        subprocess.run(["mount", "--bind", directory, directory], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", directory], check=True)
    elif fault == "chmod":
        os.chmod(directory, 0o500)
    out = {}
    try:
        save_checkpoint(directory, {"iteration": 16, "w": torch.zeros(256 * 1024)})  # 1 MiB of floats
        out["raised"] = None
    except CheckpointWriteError as err:
        out.update(raised=type(err).__name__, message=str(err), errno=errno.errorcode.get(err.errno),
                   is_oserror=isinstance(err, OSError))
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    out["files"] = sorted(os.listdir(directory))
    back = load_checkpoint(directory)
    out["previous_intact"] = back["iteration"] == 8 and torch.equal(back["w"], previous["w"])
    print(json.dumps(out))
""")


def _child(fault: str, directory: Path, in_namespace: bool = False) -> dict:
    command = [sys.executable, "-c", CHILD, fault, str(directory)]
    if in_namespace:  # private mounts: gone when the child exits, invisible to everything else
        command = ["unshare", "--mount", "--propagation", "private", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _can_mount() -> bool:
    if not IS_ROOT or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "-o",
                            "size=4k", "tmpfs", "/mnt"], capture_output=True)
    return probe.returncode == 0


def _check(seen: dict, directory: Path, code: str) -> None:
    assert seen["raised"] == "CheckpointWriteError" and seen["is_oserror"], seen
    assert seen["errno"] == code, seen
    assert str(directory) in seen["message"], seen["message"]  # names where
    assert os.strerror(getattr(__import__("errno"), code)) in seen["message"]  # and what went wrong
    assert seen["files"] == [FILENAME], seen  # no temporary file left beside it
    assert seen["previous_intact"], seen


def test_file_size_limit_keeps_the_previous_checkpoint(tmp_path):
    """RLIMIT_FSIZE (works as root and not): EFBIG mid-write, the earlier checkpoint untouched."""
    _check(_child("fsize", tmp_path / "ckpt"), tmp_path / "ckpt", "EFBIG")


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare to mount a tmpfs privately")
def test_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """A real ENOSPC from a 64 KiB tmpfs."""
    _check(_child("full", tmp_path / "ckpt", in_namespace=True), tmp_path / "ckpt", "ENOSPC")


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare for a read-only bind mount")
def test_read_only_storage_keeps_the_previous_checkpoint(tmp_path):
    _check(_child("readonly", tmp_path / "ckpt", in_namespace=True), tmp_path / "ckpt", "EROFS")


@pytest.mark.skipif(IS_ROOT, reason="root writes into a chmod 0500 directory; the read-only mount covers root")
def test_unwritable_directory_keeps_the_previous_checkpoint(tmp_path):
    try:
        _check(_child("chmod", tmp_path / "ckpt"), tmp_path / "ckpt", "EACCES")
    finally:
        (tmp_path / "ckpt").chmod(0o700)


def test_directory_that_cannot_be_made_is_named(tmp_path):
    """A file where the directory should be (ENOTDIR/EEXIST, any user): the error names that path."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(CheckpointWriteError) as caught:
        save_checkpoint(blocker / "ckpt", {"iteration": 1})
    assert str(blocker) in str(caught.value) and caught.value.errno is not None
    assert sorted(os.listdir(tmp_path)) == ["not-a-dir"]


def test_error_survives_pickling(tmp_path):
    """Ray ships a trial's exception to the driver by pickling it: type, errno, path and message survive."""
    err = CheckpointWriteError(28, "No space left on device", str(tmp_path / FILENAME))
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is CheckpointWriteError and back.errno == 28 and back.filename == err.filename
    assert str(back) == str(err) and "ENOSPC" in str(back) and str(tmp_path) in str(back)


# A trial whose disk fills after its first epoch: train() raises, and resuming from the checkpoint left behind
# (once there is room) finishes the trial.
TRAIN_CHILD = textwrap.dedent("""
    import json, resource, signal, sys
    from resnet_core.checkpoint import CheckpointWriteError
    from resnet_core.spec import TrialSpec
    from resnet_core.train import train

    spec = TrialSpec.from_dict({"model": {"depth": 8}, "data": {"dataset": "synthetic", "synthetic_train": 32,
                                "synthetic_test": 16, "augment": False},
                                "optim": {"lr": 0.05, "batch_size": 16, "iterations": 6, "milestones": [4]},
                                "runtime": {"device": "cpu", "eval_batch_size": 16}})
    directory = sys.argv[1]
    out = {"epochs": []}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        for metrics in train(spec, checkpoint_dir=directory):
            out["epochs"].append(metrics["epoch"])
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))  # the disk fills up
    except CheckpointWriteError as err:
        out["error"] = str(err)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # room again
    out["resumed"] = [m["epoch"] for m in train(spec, checkpoint_dir=directory, resume_from=directory)]
    print(json.dumps(out))
""")


def test_training_stops_with_the_path_and_resumes_from_the_last_good_checkpoint(tmp_path):
    directory = tmp_path / "trial"
    done = subprocess.run([sys.executable, "-c", TRAIN_CHILD, str(directory)], capture_output=True, text=True,
                          timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["epochs"] == [1], seen  # the second epoch's checkpoint failed before its metrics were yielded
    assert str(directory / FILENAME) in seen["error"] and "EFBIG" in seen["error"], seen
    assert seen["resumed"] == [2, 3], seen  # picks up after epoch 1: the checkpoint left behind was good
    assert sorted(os.listdir(directory)) == [FILENAME]
    assert load_checkpoint(directory)["iteration"] == 6


def test_successful_save_leaves_only_the_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "a" / "b", {"iteration": 3, "w": torch.ones(3)})
    assert path == tmp_path / "a" / "b" / FILENAME and os.listdir(path.parent) == [FILENAME]
    assert load_checkpoint(path.parent)["iteration"] == 3


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child, before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def test_cli_train_reports_the_path_and_exits_1(tmp_path):
    """`resnet-sweep train --checkpoint-dir DIR` on storage that refuses the file: one line naming the file and
    the reason, exit 1 (a run-time failure, not bad input), no traceback, nothing half-written left."""
    directory = tmp_path / "ckpt"
    done = subprocess.run([RESNET_SWEEP, "train", "--set", "model.depth=8", "--set", "data.dataset=synthetic",
                           "--set", "data.synthetic_train=32", "--set", "data.synthetic_test=16", "--set",
                           "optim.batch_size=16", "--set", "optim.iterations=4", "--set", "runtime.device=cpu",
                           "--checkpoint-dir", str(directory)], capture_output=True, text=True, timeout=180,
                          preexec_fn=_file_size_limit(64 * 1024))  # ResNet-8's checkpoint: hundreds of KiB
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"resnet-sweep train: cannot write the checkpoint {directory / FILENAME}: File too large (EFBIG)" \
        in done.stderr, done.stderr
    assert os.listdir(directory) == []
