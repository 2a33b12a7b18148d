"""pgvector's types and value rules: ``vector``, ``halfvec``, ``sparsevec`` and ``bit``.

``VectorType`` is the column type (``columns.vector(n)`` makes one); the functions check a
Python value (list, tuple, numpy array, pgvector object) against a ``kind(dim)`` column and
give what psycopg sends, as pgvector objects or their binary COPY form.
"""

from __future__ import annotations

import math
import numbers
import struct
import sys
from array import array
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Generic, TypeVar

from pgvector import Bit, HalfVector, SparseVector, Vector
from pgvector import sqlalchemy as pgvector_sa
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.engine import Dialect
from sqlalchemy.types import UserDefinedType

from ..arguments import count_argument
from ..errors import ColumnTypeError
from .base import FLOAT4_MAX, Adapter, ValueRejected, describe_value, float4_exact
from .pydantic_schemas import attach_core_schemas

V = TypeVar("V", Vector, HalfVector, SparseVector, Bit)


class VectorType(UserDefinedType[V], Generic[V]):
    """A pgvector type (``vector``, ``halfvec``, ``sparsevec`` or ``bit``) of fixed size."""

    cache_ok = True

    def __init__(self, kind: str, dim: int | None) -> None:
        if kind not in _KINDS:
            raise ColumnTypeError(
                f"unknown pgvector type {kind!r}; use one of {', '.join(sorted(_KINDS))}"
            )
        if dim is not None:
            hint = f"; give the length of the vectors the column holds, e.g. {kind}(384)"
            count_argument(dim, f"{kind}(n): the dimension", ColumnTypeError, minimum=1, hint=hint)
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
        return vector_adapter(self.kind, self.dim)(value)

    def decode_value(self, value: Any) -> Any:
        """What psycopg loaded (a pgvector object, or text without the adapters) → the value.

        A sparsevec's components are float32: read from text as floats, they are
        rounded to float32 again, so they come back as the values the server holds.
        """
        if isinstance(value, str):
            value = _KINDS[self.kind].from_text(value)
        if self.kind == "sparsevec" and isinstance(value, SparseVector):
            return sparsevec_exact(value)
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


def vector_adapter(kind: str, dim: int | None) -> Adapter:
    """The check of values for a pgvector ``kind(dim)`` column, giving what psycopg sends."""
    if kind == "sparsevec":
        return lambda value: to_sparsevec(value, dim)
    if kind == "bit":
        return lambda value: to_bit(value, dim)
    return lambda value: to_vector(value, dim, kind)


def to_vector(value: Any, dim: int | None, kind: str = "vector") -> Vector | HalfVector:
    """A pgvector value from a list, tuple, numpy array or pgvector value, checked."""
    cls = HalfVector if kind == "halfvec" else Vector
    items: Sequence[float]
    if type(value) in _ARRAY_TYPES or _is_array(value):  # numpy, without importing it
        if value.ndim != 1:
            raise ValueRejected(f"expected a 1-d array for {kind}, got {value.ndim} dimensions")
        # Numeric arrays are checked in C. Floats no wider than the type convert exactly,
        # and then need only be finite: checked on the float32 bytes for vector, and by a
        # float8 sum (which cannot overflow) for halfvec. Wider floats and ints are
        # range-checked first (NaN fails the comparison; numpy would warn on an
        # overflowing cast). Anything else goes through the item checks, which say what
        # is wrong.
        n = len(value)
        if n and (dim is None or n == dim):
            dtype = value.dtype
            if dtype.char in _EXACT_FLOATS[kind]:
                if cls is Vector:
                    checked = CheckedVector.from_array(value)
                    data = checked.to_binary()
                    if _well_within_float32(data) or _finite_vector(data, None):
                        return checked
                else:
                    converted = cls(value)
                    if math.isfinite(sum(converted.to_list())):
                        return converted
            elif dtype.kind in "fiu" and abs(value).max() <= _COMPONENT_LIMIT[kind]:
                return cls(value)
        items = value.tolist()
    elif isinstance(value, list | tuple):
        items = value
        # Plain floats and ints (the usual case) convert in C, then are checked on the
        # float32 bytes. Anything unusual, or a component near the float32 limit (where
        # rounding could hide that it is out of range), gets the item checks below.
        n = len(value)
        plain = kind == "vector" and n and (dim is None or n == dim)
        if plain and _PLAIN_NUMBERS.issuperset(map(type, value)):
            try:
                checked = CheckedVector(value if type(value) is list else list(value))
            except (ValueError, OverflowError):  # an int beyond even a float8
                pass
            else:
                if _well_within_float32(checked.to_binary()):
                    return checked
    elif isinstance(value, Vector | HalfVector):
        if cls is Vector and isinstance(value, Vector) and _finite_vector(value.to_binary(), dim):
            return value  # float32 already: finite and of the right size is all there is to check
        items = value.to_list()
    else:
        raise ValueRejected(f"expected a list of floats for {kind}, got {describe_value(value)}")
    _check_components(items, dim, kind)
    return value if isinstance(value, cls) else cls(list(items))


class CheckedVector(Vector):
    """A ``Vector`` that keeps the binary form :func:`to_vector` checked it in.

    psycopg's binary dumper asks for that form again to send the value; this saves
    making it twice. Made from a numpy array, it holds only that form (the array
    converts to it in one step), and its components are read from it when first
    asked for. Otherwise it is a plain ``Vector``; connections register pgvector's
    dumpers for it too.
    """

    __slots__ = ("_binary", "_components")

    def __init__(self, value: Any) -> None:
        self._components: array[float] | None = None
        Vector.__init__(self, value)
        self._binary: bytes = Vector.to_binary(self)

    @classmethod
    def from_array(cls, value: Any) -> CheckedVector:
        """From a 1-d numpy array of floats that float32 holds exactly (float16, float32)."""
        if not _LAZY_COMPONENTS:
            return cls(value)
        big_endian = _BIG_ENDIAN_FLOAT32.get(type(value))
        if big_endian is None:  # the dtype object: numpy parses no string on each call
            big_endian = _BIG_ENDIAN_FLOAT32[type(value)] = value.astype(">f4").dtype
        vector = cls.__new__(cls)
        vector._components = None
        vector._binary = _HEADER.pack(len(value), 0) + value.astype(big_endian).tobytes()
        return vector

    @property  # pgvector's own methods read the components from _value
    def _value(self) -> array[float]:  # pyright: ignore[reportIncompatibleVariableOverride]
        components = self._components
        if components is None:
            components = array("f")
            components.frombytes(memoryview(self._binary)[4:])
            if sys.byteorder == "little":
                components.byteswap()
            self._components = components
        return components

    @_value.setter
    def _value(self, components: array[float]) -> None:  # pyright: ignore[reportIncompatibleVariableOverride]
        self._components = components

    def to_binary(self) -> bytes:
        """pgvector's binary input format of this vector, as it was checked."""
        return self._binary


_HEADER = struct.Struct(">HH")  # pgvector's binary form: dimensions, unused; float32s follow
_BIG_ENDIAN_FLOAT32: dict[type, Any] = {}  # numpy's ">f4" dtype, per array type
# pgvector keeps a Vector's components in _value (an array of float32), and only there.
_LAZY_COMPONENTS = set(vars(Vector([1.0]))) == {"_value"}


_ARRAY_TYPES: set[type] = set()
"""numpy's ndarray (and look-alikes), once seen."""
# numpy type codes of the floats each kind stores exactly: float16 and float32 ("e", "f").
_EXACT_FLOATS = {"vector": "ef", "sparsevec": "ef", "halfvec": "e"}


def _is_array(value: Any) -> bool:
    """Whether ``value`` is a numpy array or a look-alike (``tolist`` and ``ndim``)."""
    if not (hasattr(value, "tolist") and hasattr(value, "ndim")):
        return False
    cls = type(value)
    if hasattr(cls, "tolist") and hasattr(cls, "ndim"):
        _ARRAY_TYPES.add(cls)
    return True


_PLAIN_NUMBERS = frozenset((float, int))
# The largest magnitude a component can have: float4 for vector and sparsevec, half for halfvec.
_COMPONENT_LIMIT = {"vector": FLOAT4_MAX, "sparsevec": FLOAT4_MAX, "halfvec": 65504.0}


# A float32 NaN or infinity has all eight exponent bits set: in big-endian bytes, the
# low seven bits of its first byte and the high bit of its second.
_EXPONENT_HIGH = bytes(1 if b & 0x7F == 0x7F else 0 for b in range(256))
_EXPONENT_LOW = bytes(1 if b & 0x80 else 0 for b in range(256))


def _well_within_float32(data: bytes) -> bool:
    """Whether every component of a ``Vector.to_binary()`` is below 2**127 in magnitude.

    That is, none has its top seven exponent bits set: then all are finite, and a
    component converted from a float8 was no larger than the float32 limit either (just
    beyond it, a float8 rounds to the largest float32 instead of to infinity).
    """
    first = data[4::4]
    return 0x7F not in first and 0xFF not in first  # an int operand: a memchr each


def _finite_vector(data: bytes, dim: int | None) -> bool:
    """Whether a ``Vector.to_binary()`` has ``dim`` components (if given), all finite.

    Checked on the bytes, without a Python float per component (bulk writes).
    """
    size = (len(data) - 4) // 4  # a 4-byte header, then big-endian float32s
    if size == 0 or (dim is not None and size != dim):
        return False
    if _well_within_float32(data):
        return True  # the usual, quick answer
    high = int.from_bytes(data[4::4].translate(_EXPONENT_HIGH), "big")
    low = int.from_bytes(data[5::4].translate(_EXPONENT_LOW), "big")
    return not high & low


def vector_binary_adapter(dim: int | None, kind: str) -> Callable[[Any], bytes]:
    """``to_vector_binary(value, dim, kind)`` made for one column (a bulk load's encoder).

    A ``Vector`` of the right size whose components are all well within float32 (the
    usual case) costs its ``to_binary()`` and a length and byte test; anything else
    takes :func:`to_vector_binary`'s full path, with its precise error.
    """
    if kind != "vector" or dim is None:
        return lambda value: to_vector_binary(value, dim, kind)
    size = 4 + 4 * dim

    def adapt(value: Any) -> bytes:
        if type(value) is Vector:
            data: bytes = value.to_binary()
            if len(data) == size and _well_within_float32(data):
                return data
        return to_vector_binary(value, dim, kind)

    return adapt


def to_vector_binary(value: Any, dim: int | None, kind: str = "vector") -> bytes:
    """``to_vector(value, dim, kind)`` in pgvector's binary format: what binary COPY sends."""
    if kind == "vector" and isinstance(value, Vector):
        data: bytes = value.to_binary()
        if _finite_vector(data, dim):
            return data
    binary: bytes = to_vector(value, dim, kind).to_binary()
    return binary


def _check_components(items: Sequence[Any], dim: int | None, kind: str) -> None:
    if len(items) == 0:
        raise ValueRejected(f"an empty {kind} is not allowed")
    if dim is not None and len(items) != dim:
        raise ValueRejected(f"expected {dim} dimensions for {kind}({dim}), got {len(items)}")
    limit = _COMPONENT_LIMIT.get(kind, FLOAT4_MAX)
    # Fast path, all in C: plain floats and ints in range and finite (the common case).
    # The range test comes first: isfinite() of a huge int overflows, and max() can miss a NaN.
    if (
        _PLAIN_NUMBERS.issuperset(map(type, items))
        and max(map(abs, items)) <= limit
        and all(map(math.isfinite, items))
    ):
        return
    for i, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueRejected(f"{kind} component {i} is not a number: {describe_value(v)}")
        if not isinstance(v, numbers.Integral) and not math.isfinite(v):
            raise ValueRejected(f"{kind} component {i} is {v}; NaN and infinity are not allowed")
        magnitude = abs(int(v)) if isinstance(v, numbers.Integral) else abs(float(v))
        if magnitude > limit:
            raise ValueRejected(
                f"{kind} component {i} is {describe_value(v)}, outside the range of {kind} (±{limit:g})"
            )


def to_sparsevec(value: Any, dim: int | None) -> SparseVector:
    """A checked ``SparseVector`` from one, or from a ``{index: value}`` dict (needs ``dim``)."""
    if isinstance(value, SparseVector):
        vec = value
    elif isinstance(value, Mapping):
        if dim is None:
            raise ValueRejected("a dict for sparsevec needs the column's dimensions")
        for k, v in value.items():
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < dim:
                raise ValueRejected(f"sparsevec index {k!r} is outside 0..{dim - 1}")
            _check_components([v], None, "sparsevec")
        vec = SparseVector(dict(value), dim)
    else:
        dense = to_vector(value, dim, "sparsevec")
        vec = SparseVector(dense.to_list())
    if dim is not None and vec.dimensions() != dim:
        raise ValueRejected(
            f"expected {dim} dimensions for sparsevec({dim}), got {vec.dimensions()}"
        )
    if vec.dimensions() == 0:
        raise ValueRejected("an empty sparsevec is not allowed")
    _check_components(vec.values(), None, "sparsevec")
    return vec


def sparsevec_exact(value: SparseVector) -> SparseVector:
    """A sparsevec read from text, with its components as the float32 values they are."""
    components = value.values()
    exact = [float4_exact(float(v)) for v in components]
    if exact == components:
        return value
    return SparseVector(dict(zip(value.indices(), exact, strict=True)), value.dimensions())


def to_bit(value: Any, dim: int | None) -> Bit:
    """A checked ``Bit`` from one, or from a string of 0s and 1s, or a sequence of bools."""
    if isinstance(value, Bit):
        bits = value
    elif isinstance(value, str):
        if not value or set(value) - {"0", "1"}:
            raise ValueRejected(
                f"expected a string of 0 and 1 for bit, got {describe_value(value)}"
            )
        bits = Bit(value)
    elif isinstance(value, list | tuple) and all(isinstance(v, bool) for v in value):
        if not value:
            raise ValueRejected("an empty bit string is not allowed")
        bits = Bit(list(value))
    else:
        raise ValueRejected(
            f"expected a bit string or a list of bools, got {describe_value(value)}"
        )
    if dim is not None and len(bits.to_text()) != dim:
        raise ValueRejected(f"expected {dim} bits, got {len(bits.to_text())}")
    return bits


# -- decoders: what psycopg loaded -> the Python value -----------------------------


attach_core_schemas()  # pydantic models and FastAPI accept these types (pydantic optional)
