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
- ids: ``uuid7()`` (RFC 9562 UUIDv7, for ``uuid`` columns; or PostgreSQL 18's
  ``server_default=func.uuidv7()``), ``cuid2()`` (a 24-character text id that
  reveals nothing) and ``cuid()`` (cuid v1, kept for existing data: its authors
  deprecated it because it leaks its creation time and host and can be guessed).
- ``columns_of(table, "id", "name")``: columns picked by name at run time, each
  name checked against the table.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import threading
import time
import uuid
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
    "cuid2",
    "halfvec",
    "jsonb",
    "sparsevec",
    "uuid7",
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


def cuid() -> str:
    """A 25-character cuid v1: ``c`` + time + counter + process fingerprint + randomness.

    Deprecated by its authors, kept for tables that already hold such ids: it shows
    when (to the millisecond) and roughly where it was made, and the next one can be
    guessed from the last. Prefer :func:`uuid7` for new ``uuid`` columns, or
    :func:`cuid2` for text ids.

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


def _reset_after_fork() -> None:
    _reset_fingerprint()
    _uuid7_state.last_ms = -1  # the child draws a fresh random counter


# -- cuid2 -----------------------------------------------------------------------


def cuid2(length: int = 24) -> str:
    """A cuid2-style text id: a letter, then base36 of a SHA3-512 hash of time, a
    counter, a per-process fingerprint and 256 random bits.

    Unlike :func:`cuid`, nothing in it can be read back (time, host, order) or
    guessed from other ids, and every character is a letter or digit, so it is safe
    in URLs and as an HTML id. Not time-ordered: inserts land all over a B-tree,
    as a random UUID's do; see :func:`uuid7` where that matters.

        >>> len(cuid2()), cuid2()[0].isalpha()
        (24, True)
    """
    if not 2 <= length <= 32:
        raise ValueError(f"cuid2 length must be between 2 and 32, got {length}")
    with _lock:
        _state.counter = count = (_state.counter + 1) % 36**4
        fingerprint = _state.fingerprint
    material = f"{time.time_ns()}:{count}:{fingerprint}:{secrets.token_hex(32)}".encode()
    digest = int.from_bytes(hashlib.sha3_512(material).digest(), "big")
    first = _BASE36[10 + secrets.randbelow(26)]
    return first + _base36(digest, length - 1)


# -- UUIDv7 ----------------------------------------------------------------------


class _Uuid7State:
    last_ms = -1
    counter = 0


_uuid7_state = _Uuid7State()
_COUNTER_BITS = 42  # 12 bits of rand_a and the top 30 of rand_b: RFC 9562 method 1
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1


def uuid7() -> uuid.UUID:
    """An RFC 9562 UUIDv7: 48 bits of Unix milliseconds, a 42-bit counter, 32 random bits.

    Time-ordered, so B-tree inserts stay at the right edge of the index, like a
    bigserial's, yet unguessable enough for public ids (the counter starts at a
    random value each millisecond). Ids made by one process are strictly
    increasing, even within a millisecond. The standard library has ``uuid7`` only
    from Python 3.14; PostgreSQL 18 has ``uuidv7()`` for server-side defaults.

        >>> uuid7().version
        7
    """
    ms = time.time_ns() // 1_000_000
    with _lock:
        state = _uuid7_state
        if ms > state.last_ms:
            state.last_ms, state.counter = ms, secrets.randbits(_COUNTER_BITS - 1)
        else:  # the same millisecond (or the clock went back): count on from the last id
            state.counter += 1
            if state.counter > _COUNTER_MAX:  # 2^41 ids in one millisecond: borrow the next
                state.last_ms, state.counter = state.last_ms + 1, 0
        ms, counter = state.last_ms, state.counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76 | (counter >> 30) << 64  # version, then the counter's top 12 bits
    value |= 0b10 << 62 | (counter & 0x3FFF_FFFF) << 32 | secrets.randbits(32)  # variant
    return uuid.UUID(int=value)


os.register_at_fork(after_in_child=_reset_after_fork)  # a forked worker is a new source


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
                f"{getattr(table, 'name', table)} has no column {name!r}; "
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
