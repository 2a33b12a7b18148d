"""The one check of a numeric API argument: ``limit=``, ``depth=``, ``max_size=``, ``vector(n)``...

Every layer takes counts and durations from users, and each used to write its own
``isinstance(value, bool) or not isinstance(value, int) or value < 0``. They check the
same things (``True`` is not an int here; a float is not a count) and word the error the
same way, naming the argument: ``limit must be an int >= 0, got -1``. The caller picks
the error class, so each layer keeps its own place in the error tree.

This module imports only ``errors``: every layer may use it.
"""

from __future__ import annotations

from typing import Any

from .errors import QueryKitError

__all__ = ["count_argument", "seconds_argument"]


def count_argument(
    value: Any, what: str, error: type[QueryKitError], *, minimum: int = 0, hint: str = ""
) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``, else ``error``.

    ``what`` names the argument as the user wrote it (``"include(depth=...)"``,
    ``"connect(max_size=...)"``); ``hint`` adds what to do.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise error(f"{what} must be an int >= {minimum}, got {value!r}{hint}")
    return value


def seconds_argument(
    value: Any, what: str, error: type[QueryKitError], *, minimum: float = 0.0, strict: bool = False
) -> float:
    """``value`` if it is a number of seconds (int or float, not a bool) of at least
    ``minimum`` (above it, with ``strict``), else ``error``."""
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if bad or value < minimum or (strict and value == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise error(f"{what} must be a number of seconds {bound}, got {value!r}")
    return float(value)
