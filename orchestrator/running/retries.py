"""A crashed trial is one line for the person watching the sweep, its traceback a block in the launch's log file.

Tune retries a trial whose process or node died (FailureConfig.max_failures), and by default prints each
failure's whole traceback into the driver's output: a Ray ActorDiedError of thirty lines for a fault the sweep
handles by design. The launch turns that printing off (Tune's TUNE_PRINT_ALL_TRIAL_ERRORS) and this callback says
instead which trial, why, which retry of how many, and from which iteration it goes on; the traceback Tune keeps
in the trial's error file is appended to the log file the line names.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from ray.tune import Callback

from orchestrator.records import trial_record

# The sentence of a Ray actor error that says why the actor died (its process, its node).
_WHY = re.compile(r"^\s*(The actor (?:is dead|died) because [^.\n]*)", re.MULTILINE)
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Interrupt)): ?(.*)$", re.MULTILINE)


def quiet_tune_tracebacks() -> None:
    """Tune reads this when its controller starts: set before the Tuner runs."""
    import os

    os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "0"


class RetryLines(Callback):
    def __init__(self, records_root: str, max_failures: int, log_path: Path):
        self.records_root, self.max_failures, self.log_path = records_root, max_failures, log_path

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        cause = self._log_traceback(trial)
        info = trial.config["trial"]
        at = trial_record.read(trial_record.record_path(self.records_root, info)).last_iteration
        print(f"retrying {info['name']}: {cause} (retry {trial.num_failures} of {self.max_failures}); it goes "
              f"on from {f'its checkpoint at iteration {at}' if at else 'the start'} (traceback: {self.log_path})",
              flush=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        cause = self._log_traceback(trial)
        print(f"gave up on {trial.config['trial']['name']} after {trial.num_failures} failures: {cause} "
              f"(traceback: {self.log_path})", flush=True)

    def _log_traceback(self, trial: Any) -> str:
        """Append the trial's newest failure, as Tune recorded it, to the log file; its cause in a few words."""
        failure = _newest_failure(trial)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            log.write(f"--- {datetime.now().isoformat(timespec='seconds')} {trial.config['trial']['name']}, "
                      f"failure {trial.num_failures}\n{failure}\n")
        return cause_of(failure)


def cause_of(traceback_text: str) -> str:
    """Why the trial's process ended, in one sentence: for a Ray actor the sentence that says why it died (`the
    actor died because its node has died`), else the last exception line, else the last line."""
    why = _WHY.search(traceback_text)
    if why:
        return why.group(1)[0].lower() + why.group(1)[1:]
    exceptions = _EXCEPTION.findall(traceback_text)
    if exceptions:
        name, message = exceptions[-1]
        return f"{name}: {message}"[:200]
    lines = [line.strip() for line in traceback_text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no error text"


def _newest_failure(trial: Any) -> str:
    """The last `Failure # n` block of the trial's error file (Tune appends one per failure)."""
    try:
        text = Path(trial.error_file).read_text() if trial.error_file else ""
    except OSError:
        return "no error file"
    return text[text.rfind("Failure # "):] if "Failure # " in text else text
