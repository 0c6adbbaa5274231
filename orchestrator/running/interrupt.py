"""Ctrl-C on a sweep's driver: Tune stops gracefully, then the driver says so in one line (exit 130).

Tune's own SIGINT handler stops the experiment with its state saved for `resume` (the trials that were running
recorded as running), but tells its caller nothing, and the trials it stopped then look TERMINATED like finished
ones. `WatchInterrupt`, a Tune callback, wraps that handler when the experiment starts (Tune installs it just
before it sets up its callbacks) and notes the signal; the driver reads `requested()` once fit() returns. A
second Ctrl-C raises KeyboardInterrupt as usual (Tune's handler restores Python's).
"""
from __future__ import annotations

import signal
import threading
from typing import Any

from ray.tune import Callback

_REQUESTED = threading.Event()  # module-wide: a callback restored from Tune's pickle still sets it


def requested() -> bool:
    return _REQUESTED.is_set()


def reset() -> None:
    _REQUESTED.clear()


class WatchInterrupt(Callback):
    def setup(self, **info: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only, and Tune installed no handler either
        tune_handler = signal.getsignal(signal.SIGINT)

        def noted(signum: int, frame: Any) -> None:
            _REQUESTED.set()
            if callable(tune_handler):
                tune_handler(signum, frame)
            else:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, noted)
