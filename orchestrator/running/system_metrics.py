"""What a trial's process uses of the machine over time: a background thread samples it every few seconds, and
the trainable hands the samples taken during each epoch to that epoch's record line, which the MLflow sync logs
under `system/` (the run's System metrics tab).

The process's own figures, not the machine's: several trials share one machine, and each run should show what
its trial used. CPU as a percentage of one core (200: two cores busy), resident memory in MB, and on a GPU what
torch sees of this process's device: utilisation (through NVML, when torch can reach it) and memory in MB.
Standard library and torch only: the same code runs on a laptop, a CPU node and a GPU node.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

INTERVAL_S = 5.0  # between samples: a few points per epoch of a real trial, a negligible cost to training
MAX_SAMPLES = 10_000  # kept between two epochs; a longer epoch keeps its latest (about 14 hours at 5 s)


def rss_megabytes() -> float | None:
    """The process's resident memory now (Linux /proc), else its peak (getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return None


def gpu_figures() -> dict[str, float]:
    """This process's current CUDA device, when torch has one: utilisation (%) and memory (MB) in use."""
    import sys

    torch = sys.modules.get("torch")  # never the first to import torch: the trial has, if it uses a GPU
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {}
    out = {"gpu_memory_usage_megabytes": torch.cuda.memory_reserved() / 2**20}
    try:
        out["gpu_utilization_percentage"] = float(torch.cuda.utilization())
    except Exception:  # noqa: BLE001  no NVML on this machine: memory alone
        pass
    return out


class Sampler:
    """Samples the process every `interval_s` seconds on a daemon thread until `stop()`; `take()` samples once
    more and hands over the samples since the last take, oldest first (so every epoch has one, however short)."""

    def __init__(self, interval_s: float = INTERVAL_S):
        self.interval_s = interval_s
        self._samples: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last = (time.monotonic(), time.process_time())
        self._thread = threading.Thread(target=self._run, name="system-metrics", daemon=True)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            samples, self._samples = [*self._samples, self._sample()], []
        return samples

    def _sample(self) -> dict[str, Any]:
        """One sample now (the lock held): CPU use since the previous sample, memory and GPU figures now."""
        wall, cpu = time.monotonic(), time.process_time()
        busy = 100.0 * (cpu - self._last[1]) / max(wall - self._last[0], 1e-6)
        self._last = (wall, cpu)
        out: dict[str, Any] = {"time_ms": int(time.time() * 1000), "process_cpu_utilization_percentage": busy}
        memory = rss_megabytes()
        if memory is not None:
            out["process_memory_usage_megabytes"] = memory
        return {**out, **gpu_figures()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                self._samples = [*self._samples[-(MAX_SAMPLES - 1):], self._sample()]
