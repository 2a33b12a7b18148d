"""What every value rule shares: the adapter and decoder types, the refusal, float4's limits.

The bottom of the codecs package: ``scalars`` (in ``__init__``), ``json`` and ``pgvector``
all build on it, so none of them imports another sideways.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

__all__ = [
    "F32",
    "FLOAT4_MAX",
    "Adapter",
    "Decoder",
    "ValueRejected",
    "describe_value",
    "float4_exact",
]

Adapter = Callable[[Any], Any]
"""Checks a Python value bound for one SQL type and returns what psycopg sends."""
Decoder = Callable[[Any], Any]
"""Finishes a value psycopg loaded for one SQL type."""


class ValueRejected(ValueError):
    """A value that does not fit its SQL type. The message says what was expected."""


def describe_value(value: Any) -> str:
    """A value as a short ``repr`` with its type, for error messages (cut at 60 characters)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


F32 = struct.Struct("f")
FLOAT4_MAX = 3.4028234663852886e38
"""The largest finite float4 (real)."""


def float4_exact(value: Any) -> Any:
    """A float4 read back as the float32 value it holds (see the README's value table).

    The server writes a real as the shortest text that reads back as the same
    float32 (``93037408`` as ``9.303741e+07``); read as a float8, that text is
    another number (93037410.0). Rounding it to float32 again gives the stored value.
    """
    if type(value) is not float:
        return value
    return F32.unpack(F32.pack(value))[0]
