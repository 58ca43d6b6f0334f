"""`bound(var, value)`: a context variable set for one block, and reset however the block ends."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


@contextmanager
def bound(var: ContextVar[Any], value: T) -> Generator[T]:
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)
