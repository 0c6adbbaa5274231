"""The tracking URI as users give it and see it: the default store, passwords hidden, how to browse the runs."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse


def default_tracking_uri() -> str:
    """A SQLite store in the working directory: `mlflow ui --backend-store-uri sqlite:///mlruns.db` shows it."""
    return f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def redact_uri(uri: str) -> str:
    """The URI with any password in it replaced by ***, for everything printed (http://u:TOKEN@host -> u:***)."""
    parts = urlparse(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def ui_command(tracking_uri: str) -> str:
    shown = redact_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {shown} in a browser"
    return f"mlflow ui --backend-store-uri {shown}"
