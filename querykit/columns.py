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
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import threading
import time
from functools import lru_cache
from typing import Any, Generic, TypeVar

from pgvector import Bit, HalfVector, SparseVector, Vector
from pgvector import sqlalchemy as pgvector_sa
from sqlalchemy.dialects.postgresql import BIT, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, UserDefinedType

from . import codecs

__all__ = [
    "JSONBPayload",
    "VectorType",
    "as_vector_type",
    "bit",
    "cuid",
    "halfvec",
    "jsonb",
    "sparsevec",
    "vector",
]

T = TypeVar("T")
V = TypeVar("V", Vector, HalfVector, SparseVector, Bit)


class JSONBPayload(TypeDecorator[T]):
    """JSONB holding values of one Python type. Build it with :func:`jsonb`."""

    impl = JSONB
    cache_ok = True

    def __init__(self, payload_type: type[T] | None = None) -> None:
        super().__init__()
        self.payload_type = payload_type

    # The two hooks below serve code that runs these tables through SQLAlchemy
    # itself; querykit's executor uses querykit.codecs, which applies the same rules.
    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        payload: Any = self.payload_type
        if (
            isinstance(value, dict)
            and isinstance(payload, type)
            and dataclasses.is_dataclass(payload)
        ):
            return payload(**value)
        return value


def jsonb(payload_type: type[T]) -> JSONBPayload[T]:
    """A JSONB type whose values are ``payload_type``: ``Column(jsonb(RunMetadata))``."""
    return JSONBPayload(payload_type)


class VectorType(UserDefinedType[V], Generic[V]):
    """A pgvector type (``vector``, ``halfvec``, ``sparsevec`` or ``bit``) of fixed size."""

    cache_ok = True

    def __init__(self, kind: str, dim: int | None) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown pgvector type {kind!r}; use one of {sorted(_KINDS)}")
        if dim is not None and dim < 1:
            raise ValueError(f"{kind} needs at least 1 dimension, got {dim}")
        super().__init__()
        self.kind = kind
        self.dim = dim

    @property
    def python_type(self) -> type:
        cls: type = _KINDS[self.kind]
        return cls

    def get_col_spec(self, **kw: Any) -> str:
        return self.kind if self.dim is None else f"{self.kind}({self.dim})"

    def adapt_value(self, value: Any) -> Any:
        """Check ``value`` against this column and return the pgvector object psycopg sends."""
        return codecs.vector_adapter(self.kind, self.dim)(value)

    def decode_value(self, value: Any) -> Any:
        """What psycopg loaded (a pgvector object, or text without the adapters) → the value.

        A sparsevec's components are float32: read from text as floats, they are
        rounded to float32 again, so they come back as the values the server holds.
        """
        if isinstance(value, str):
            value = _KINDS[self.kind].from_text(value)
        if self.kind == "sparsevec" and isinstance(value, SparseVector):
            return codecs.sparsevec_exact(value)
        return value

    def bind_processor(self, dialect: Dialect) -> Any:
        return lambda value: None if value is None else self.adapt_value(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        return lambda value: None if value is None else self.decode_value(value)


_KINDS: dict[str, Any] = {
    "vector": Vector,
    "halfvec": HalfVector,
    "sparsevec": SparseVector,
    "bit": Bit,
}


def as_vector_type(type_: Any) -> VectorType[Any] | None:
    """querykit's pgvector type for a column type, or None if it is not a pgvector type.

    Tables declared with pgvector-python's own SQLAlchemy types
    (``pgvector.sqlalchemy.Vector(8)`` / ``VECTOR``, ``HALFVEC``, ``SPARSEVEC``,
    ``BIT``) or with SQLAlchemy's ``postgresql.BIT(n)`` get the same rules as
    ``vector(8)``...: one place decides, so distance operators, ``nearest()``, the
    index helpers, COPY, decoding and literals all accept them.
    """
    if isinstance(type_, VectorType):
        return type_
    if isinstance(type_, _FOREIGN):
        return _foreign_vector_type(type_)
    return None


_FOREIGN = (pgvector_sa.VECTOR, pgvector_sa.HALFVEC, pgvector_sa.SPARSEVEC, pgvector_sa.BIT, BIT)


@lru_cache(maxsize=1024)
def _foreign_vector_type(type_: Any) -> VectorType[Any] | None:
    if isinstance(type_, pgvector_sa.BIT):
        type_ = type_.impl_instance  # a TypeDecorator over postgresql.BIT
    if isinstance(type_, BIT):
        return None if type_.varying else VectorType("bit", type_.length)
    kind = {
        pgvector_sa.VECTOR: "vector",
        pgvector_sa.HALFVEC: "halfvec",
        pgvector_sa.SPARSEVEC: "sparsevec",
    }[type(type_)]
    return VectorType(kind, type_.dim)


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
