"""Shared test helpers."""
import subprocess
import sys
from pathlib import Path

# The console script installed beside this interpreter: tests run the CLI exactly as a user does.
RESNET_SWEEP = str(Path(sys.executable).with_name("resnet-sweep"))


def resnet_sweep(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run `resnet-sweep ARGS` in a subprocess, capturing text output."""
    return subprocess.run([RESNET_SWEEP, *args], capture_output=True, text=True, timeout=timeout, **kwargs)
