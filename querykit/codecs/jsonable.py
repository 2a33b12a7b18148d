"""The JSON form of every value querykit returns, for ``json.dumps`` and web frameworks.

``jsonable(rows)`` turns results into plain lists, dicts, strings, numbers,
booleans and ``None``, so the standard library (or any web framework) can send
them as they are::

    >>> json.dumps(jsonable(db.all(select(doc.c.id, doc.c.embedding, doc.c.cost))))
    '[[1, [0.5, 0.25, ...], "0.120000"]]'

The forms are those pydantic gives in JSON mode, so an endpoint answers the same
with or without a response model: a ``Decimal`` is a string (exact: a float would
round ``numeric(20,10)``), datetimes, dates and times ISO 8601, an interval an ISO
8601 duration, an enum its value, a UUID its text, ``bytea`` base64, a ``vector``
or ``halfvec`` a list of floats, a ``sparsevec`` ``{"dimensions", "indices",
"values"}``, a ``bit`` its text of 0s and 1s, a float NaN or infinity ``None``.
Rows (tuples and NamedTuples) become lists; dataclasses, TypedDicts, nested
results and pydantic models become objects.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pgvector import Bit, HalfVector, SparseVector, Vector

__all__ = ["iso_duration", "jsonable", "vector_json"]


def jsonable(value: Any) -> Any:
    """``value`` (rows, a row, nested results, a scalar) as plain JSON-ready Python."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if dump is not None and hasattr(type(value), "model_fields"):  # a pydantic model
        return dump(mode="json")
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.time):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text  # UTC as pydantic writes it
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Vector | HalfVector | SparseVector | Bit):
        return vector_json(value)
    raise TypeError(
        f"querykit.jsonable: no JSON form for a {type(value).__module__}.{type(value).__name__} "
        f"({value!r:.60}); convert it before sending it as JSON"
    )


def vector_json(value: Vector | HalfVector | SparseVector | Bit) -> Any:
    """The JSON form of a pgvector value (the rule pydantic's serializer uses too)."""
    if isinstance(value, SparseVector):
        return {
            "dimensions": value.dimensions(),
            "indices": value.indices(),
            "values": value.values(),
        }
    if isinstance(value, Bit):
        return value.to_text()
    return value.to_list()


def iso_duration(value: dt.timedelta) -> str:
    """An ISO 8601 duration, as pydantic writes one: ``P1DT2H3M4.5S``, ``-PT30S``."""
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P{value.days}D" if value.days else f"{sign}P"
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if seconds or value.microseconds or not (value.days or clock):
        fraction = f"{value.microseconds:06d}".rstrip("0")
        clock += f"{seconds}.{fraction}S" if fraction else f"{seconds}S"
    return f"{text}T{clock}" if clock else text
