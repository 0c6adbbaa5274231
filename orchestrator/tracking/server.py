"""The tracking server's answers: how long the driver waits for one, and what a failure means (retry later, or a
refusal that will not change). A local SQLite store always answers."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlparse

from orchestrator.tracking.uris import redact_uri

# MLflow's HTTP client retries a failed request 7 times with exponential backoff (about 4 minutes) and waits up
# to 120 s for each answer: right for a script, wrong for a driver that should notice a dead server and try again
# later from the records (or end a sweep in seconds). Inside `quick_requests` a request gives up at once when
# refused and after 5 s without an answer (a log_batch takes ~10-100 ms on a busy 2-core machine). No retries by
# MLflow: it retries POSTs too after a read timeout, and a create_run the server did receive would make a second
# run (our next sync looks for the run first). A value the user set for one of these variables is kept.
QUICK_REQUESTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",             # seconds per connect and per read
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",  # a 503 with Retry-After: 600 must not stall the sweep
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",   # no "View run at" line per trial inside the live table
}


@contextmanager
def quick_requests() -> Iterator[None]:
    """MLflow HTTP requests made inside give up within seconds (see QUICK_REQUESTS); MLflow reads these variables
    on every request, so the settings end with the block. Used where the driver must not wait on the server."""
    added = {k: v for k, v in QUICK_REQUESTS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def unreachable(err: BaseException) -> bool:
    """True when `err` says the tracking server did not answer (refused, timed out, 5xx after retries): worth
    trying again later. False for answers that will not change (a 4xx such as a bad parameter or no permission)."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(err, RestException):
        return err.get_http_status_code() >= 500
    if isinstance(err, MlflowException):  # rest_utils wraps connection errors and exhausted retries this way
        return str(err.message).startswith("API request to")
    return isinstance(err, (requests.exceptions.RequestException, ConnectionError, TimeoutError))


class TrackingUnreachable(RuntimeError):
    """The tracking server did not answer; the message names the (redacted) URI and the cause."""


def check_reachable(tracking_uri: str) -> None:
    """Raise TrackingUnreachable within seconds when an http(s) tracking server does not answer (a local SQLite
    store is created on first use and needs no check)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    from mlflow import MlflowClient

    try:
        with quick_requests():
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001  any failure here means no sweep can be recorded
        verb = "cannot reach" if unreachable(err) else "cannot use"  # e.g. a 403 for a wrong token
        raise TrackingUnreachable(f"{verb} the MLflow tracking server at {redact_uri(tracking_uri)}"
                                  f": {why_unreachable(err, tracking_uri)}") from err


def why_unreachable(err: BaseException, tracking_uri: str) -> str:
    """A short cause for a message ("[Errno 111] Connection refused", "timed out"), the URI's password never in it:
    MLflow's own message repeats the full request URL and urllib3's retry chatter."""
    import re

    text = str(getattr(err, "message", None) or err)
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno:
        text = errno.group(0)
    elif "timed out" in text.lower() or "timeout" in text.lower():
        limit = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", QUICK_REQUESTS["MLFLOW_HTTP_REQUEST_TIMEOUT"])
        text = f"no answer within {limit} s"
    else:
        text = (text.strip().splitlines() or [type(err).__name__])[0][:300]
    password = urlparse(tracking_uri).password
    return text.replace(password, "***") if password else text
