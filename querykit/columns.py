"""Typed column helpers for Core tables, where SQLAlchemy alone gives ``Any``.

Use them inside a ``TypedColumns`` class; the type checker then knows the
Python type of every column::

    class run_cols(TypedColumns):
        id = Column(Text, primary_key=True, default=cuid)        # Column[str]
        metadata = Column(jsonb(RunMetadata))                      # Column[RunMetadata]
        embedding = Column(vector(384), nullable=False)            # Column[Vector]

- ``jsonb(Payload)``: a JSONB column whose values are ``Payload`` (a TypedDict,
  a dataclass, ``dict[str, Any]``, ``list[str]``...). A dataclass is converted
  to a JSON object on the way in and back to the dataclass on the way out.
- ``vector(n)``, ``halfvec(n)``, ``sparsevec(n)``, ``bit(n)``: pgvector columns.
  They accept lists, tuples, numpy arrays and pgvector values, and check the
  dimension, emptiness and finiteness of every value before it is sent.
- ``cuid()``: a collision-resistant, roughly time-ordered text id, like
  Prisma's ``@default(cuid())``.
- ``columns_of(table, "id", "name")``: columns picked by name at run time, each
  name checked against the table.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
import warnings
from types import ModuleType
from typing import Any, TypeVar

from pgvector import Bit, HalfVector, SparseVector, Vector
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlalchemy.sql.selectable import FromClause

from .codecs.jsonb import JSONBPayload
from .codecs.pgvector import VectorType, as_vector_type
from .errors import SchemaError

__all__ = [
    "JSONBPayload",
    "VectorType",
    "as_vector_type",
    "bit",
    "columns_of",
    "cuid",
    "halfvec",
    "jsonb",
    "sparsevec",
    "vector",
]

T = TypeVar("T")
V = TypeVar("V", Vector, HalfVector, SparseVector, Bit)


def jsonb(payload_type: type[T]) -> JSONBPayload[T]:
    """A JSONB type whose values are ``payload_type``: ``Column(jsonb(RunMetadata))``."""
    return JSONBPayload(payload_type)


def vector(dim: int) -> VectorType[Vector]:
    """``vector(dim)``: single-precision embeddings; values come back as ``pgvector.Vector``."""
    return VectorType("vector", dim)


def halfvec(dim: int) -> VectorType[HalfVector]:
    """``halfvec(dim)``: half-precision embeddings (``pgvector.HalfVector``)."""
    return VectorType("halfvec", dim)


def sparsevec(dim: int) -> VectorType[SparseVector]:
    """``sparsevec(dim)``: sparse embeddings (``pgvector.SparseVector``, or a ``{index: value}``)."""
    return VectorType("sparsevec", dim)


def bit(dim: int) -> VectorType[Bit]:
    """``bit(dim)``: binary vectors for hamming/jaccard search (``pgvector.Bit``, or '0101')."""
    return VectorType("bit", dim)


# -- cuid ------------------------------------------------------------------------

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_lock = threading.Lock()


class _CuidState:
    counter = secrets.randbelow(36**4)
    fingerprint = ""


_state = _CuidState()


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 36)
        digits.append(_BASE36[rem])
    return "".join(reversed(digits))


def _reset_fingerprint() -> None:
    _state.fingerprint = _base36(secrets.randbelow(36**4) ^ os.getpid(), 4)


_reset_fingerprint()
os.register_at_fork(after_in_child=_reset_fingerprint)  # a forked worker is a new source


def cuid() -> str:
    """A 25-character id: ``c`` + time + counter + process fingerprint + randomness.

    Ids made later sort later (to the millisecond), which keeps B-tree inserts
    local, and ids from different processes do not collide.

        >>> len(cuid()), cuid()[0]
        (25, 'c')
    """
    with _lock:
        _state.counter = count = (_state.counter + 1) % 36**4
        fingerprint = _state.fingerprint
    return (
        "c"
        + _base36(int(time.time() * 1000), 8)
        + _base36(count, 4)
        + fingerprint
        + _base36(secrets.randbits(42), 8)
    )


# -- columns by name --------------------------------------------------------------


def columns_of(table: FromClause, *names: str) -> list[KeyedColumnElement[Any]]:
    """Columns of ``table`` by name, for selections chosen at run time.

    Every name is checked against the table, so a name from a request cannot
    reach the SQL text unless it is one of the table's columns::

        select(*columns_of(run, "id", "status"))   # SELECT pipeline_run.id, pipeline_run.status ...
    """
    out = []
    for name in names:
        if not isinstance(name, str) or name not in table.c:
            raise SchemaError(
                f"{table.name if hasattr(table, 'name') else table} has no column {name!r}; "
                f"valid columns: {', '.join(table.c.keys())}",
                column=str(name),
            )
        out.append(table.c[name])
    return out


class _CallableModule(ModuleType):
    """This module, still callable as the old ``querykit.columns(table, *names)`` for one release.

    The function used to shadow the module (``import querykit.columns as qc`` gave the
    function); now the name is the module, and calling it warns and runs :func:`columns_of`.
    """

    def __call__(self, table: FromClause, *names: str) -> list[KeyedColumnElement[Any]]:
        warnings.warn(
            "querykit.columns(table, *names) is deprecated and will be removed in the next "
            "release; use querykit.columns_of(table, *names)",
            DeprecationWarning,
            stacklevel=2,
        )
        return columns_of(table, *names)


sys.modules[__name__].__class__ = _CallableModule
