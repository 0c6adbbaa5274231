"""Exceptions that cross process boundaries intact.

Ray hands a trial's exception from its worker to the driver by pickling it. Python pickles an exception as
`cls(*err.args)`, which breaks for every exception whose constructor takes other arguments than its message
(SpecError's key path, value and expected; DatasetError's root, problem and remedy): the driver then gets a
TypeError instead of the error. `Picklable` rebuilds the instance from its message and attributes instead,
without calling the constructor, so the driver sees the same type with the same message and fields.
"""
from __future__ import annotations

from typing import Any


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], attributes: dict[str, Any]) -> BaseException:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(attributes)
    return err


class Picklable:
    """Mixin for exception classes with their own constructor: pickling keeps type, message and attributes."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, dict(self.__dict__))  # type: ignore[attr-defined]
