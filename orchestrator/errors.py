"""Errors every layer may raise: a command's bad input that is not a spec error (exit code 2)."""
from __future__ import annotations


class CliError(Exception):
    """Bad command-line input that is not a spec error (a missing file, an unknown sweep); exit code 2."""
