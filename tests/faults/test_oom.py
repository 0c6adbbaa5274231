"""Out of memory: a trial whose batch does not fit fails with a message naming the trial and its batch
size. Simulated on the CPU by an address-space cap on a real training process; CUDA's OutOfMemoryError takes the
same path (train() catches both)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import resource
    import torch
    from orchestrator.running.trainable import run_trial

    spec = {"model": {"family": "cifar", "depth": 8},
            "data": {"dataset": "synthetic", "synthetic_train": 4096, "synthetic_test": 64, "augment": False},
            "optim": {"batch_size": 4096, "iterations": 2}, "runtime": {"device": "cpu"}}
    config = {"trial": {"id": "0123abcd", "name": "resnet8-A-seed0", "spec": spec}, "state_dir": None}
    with open("/proc/self/status") as f:
        used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    cap = used + 1536 * 2**20  # 1.5 GiB more than now: a batch of 4096 needs about 6 GiB of activations
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        run_trial(config, lambda result, checkpoint: None, None, leader=True)
    except Exception as err:
        print(f"{type(err).__name__}: {err}")
''')


def test_out_of_memory_says_which_trial_and_batch_size():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    message = done.stdout.strip().splitlines()[-1]
    assert message.startswith("OutOfMemoryError: trial resnet8-A-seed0: out of memory on the CPU"), message
    assert "resnet8 at batch size 4096" in message and "lower optim.batch_size" in message
