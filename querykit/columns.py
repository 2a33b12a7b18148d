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

import dataclasses
import os
import secrets
import sys
import threading
import time
import warnings
from functools import lru_cache
from types import ModuleType
from typing import Any, Generic, TypeVar

from pgvector import Bit, HalfVector, SparseVector, Vector
from pgvector import sqlalchemy as pgvector_sa
from sqlalchemy.dialects.postgresql import BIT, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.types import TypeDecorator, UserDefinedType

from . import codecs
from .errors import ColumnTypeError, SchemaError

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
        """A dataclass goes in as a JSON object; other values as they are."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """A JSON object comes back as the payload dataclass when it is one."""
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
            raise ColumnTypeError(
                f"unknown pgvector type {kind!r}; use one of {', '.join(sorted(_KINDS))}"
            )
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ColumnTypeError(
                f"{kind}({dim!r}): the dimension must be an int of at least 1; give the "
                f"length of the vectors the column holds, e.g. {kind}(384)"
            )
        super().__init__()
        self.kind = kind
        self.dim = dim

    @property
    def python_type(self) -> type:
        """The pgvector class of the values: ``Vector``, ``HalfVector``, ``SparseVector`` or ``Bit``."""
        cls: type = _KINDS[self.kind]
        return cls

    def get_col_spec(self, **kw: Any) -> str:
        """The DDL type: ``vector(384)``, or ``vector`` when the size is open."""
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
        """Every bound value is checked (dimension, finiteness) before psycopg sends it."""
        return lambda value: None if value is None else self.adapt_value(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """Values read come back as pgvector objects."""
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
