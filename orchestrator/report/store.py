"""Which MLflow store a report reads a sweep from: the one given, else the one `resnet-sweep run` recorded for it."""
from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import CliError
from orchestrator.records import state
from orchestrator.tracking.uris import default_tracking_uri


def sweep_store(name: str, tracking_uri: str | None = None) -> str:
    """The tracking URI to read sweep `name` from: `tracking_uri`; else the store its launch recorded (its state
    record); else MLFLOW_TRACKING_URI; else `run`'s own default, the SQLite store in the working directory.

    Raises CliError for a name that is not a sweep's (it names ./reports/NAME and goes into an MLflow filter) and
    for a SQLite store that does not exist (MLflow would create an empty one)."""
    state.check_name(name)
    if tracking_uri:
        uri = tracking_uri
    elif (record := state.find(name)) is not None:
        uri = record.tracking_uri
    else:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise CliError(f"no MLflow store at {uri} (no sweep has run here); pass --tracking-uri, or run report where "
                       "`resnet-sweep run` ran")
    return uri
