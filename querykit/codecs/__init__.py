"""The Python ↔ PostgreSQL value rules, in one place.

Three views of one rule set, chosen by the SQLAlchemy type of a column or
parameter:

- ``adapter_for(type_)``: checks a Python value bound for that type and turns
  it into what psycopg sends (``Jsonb`` for JSONB, ``Vector`` for vector(n),
  an enum's label...). A value that does not fit raises ``ValueRejected``;
  callers turn that into a ``ValidationError`` naming the column.
- ``decoder_for(type_)``: finishes a value psycopg has loaded (an enum label
  back to its ``Enum`` member, a JSON object to its dataclass...). Most types
  need nothing: psycopg already gives ``datetime``, ``Decimal``, ``UUID``...
- ``literal(type_, value)``: the value as SQL text that pastes into psql,
  quoted and cast, for ``to_sql().inline()``.

The executor, the nested-result decoder and the inline renderer all come here,
so "how a timestamptz looks" is written once.

The adapters are where every value is checked, once, for every path (builder
values, placeholders, COPY, the INSERT fallback, upsert): a value the server
would refuse without naming a column (varchar(n) too long, numeric(p, s) or
float4 overflow) or would change without a word (a naive datetime for
timestamptz, a datetime for a date) is refused; a float for numeric is sent as
its shortest exact form. The README's value table states each rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import numbers
import types
import typing
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
import sqlalchemy as sa
from pgvector import Bit, HalfVector, SparseVector, Vector
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.types.json import Json, Jsonb
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

from ..codegen import generate
from ..errors import CompileError, DecodeError
from .base import F32, FLOAT4_MAX, Adapter, Decoder, ValueRejected, describe_value, float4_exact
from .dialect import DIALECT
from .json_loads import use_fast_loads
from .jsonb import JSONBPayload
from .pgvector import (
    CheckedVector,
    VectorType,
    as_vector_type,
    sparsevec_exact,
    to_bit,
    to_sparsevec,
    to_vector,
    to_vector_binary,
    vector_adapter,
    vector_binary_adapter,
)

__all__ = [
    "DIALECT",
    "Adapter",
    "CheckedVector",
    "Decoder",
    "JSONBPayload",
    "ValueRejected",
    "VectorType",
    "adapter_for",
    "as_vector_type",
    "decoder_for",
    "json_copy_adapter",
    "literal",
    "result_decoder",
    "sparsevec_exact",
    "sql_type_name",
    "to_bit",
    "to_sparsevec",
    "to_vector",
    "to_vector_binary",
    "vector_adapter",
    "vector_binary_adapter",
]


_INT_RANGES = {
    sa.SmallInteger: (-(2**15), 2**15 - 1),
    sa.BigInteger: (-(2**63), 2**63 - 1),
    sa.Integer: (-(2**31), 2**31 - 1),
}


def _identity(value: Any) -> Any:
    return value


# -- adapters: Python value -> what psycopg sends ------------------------------


def adapter_for(type_: TypeEngine[Any]) -> Adapter | None:
    """The checking adapter for values of ``type_``, or None when any value passes as is."""
    return _adapter_cached(type_)


@lru_cache(maxsize=4096)
def _adapter_cached(type_: TypeEngine[Any]) -> Adapter | None:

    if isinstance(type_, JSONBPayload):
        return _json_adapter(Jsonb, type_.payload_type)
    if (pgvector := as_vector_type(type_)) is not None:
        return vector_adapter(pgvector.kind, pgvector.dim)
    if isinstance(type_, sa.Interval):  # a TypeDecorator in SQLAlchemy, native here
        return _checker(dt.timedelta, "a timedelta")
    if isinstance(type_, sa.TypeDecorator):
        inner = _adapter_cached(type_.impl_instance)
        if not _overrides(type_, "process_bind_param"):
            return inner
        process = type_.process_bind_param

        def decorated(value: Any) -> Any:
            value = process(value, DIALECT)
            return value if inner is None or value is None else inner(value)

        return decorated
    if isinstance(type_, sa.Enum):
        return _enum_adapter(type_)
    if isinstance(type_, sa.ARRAY):
        return _array_adapter(type_)
    if isinstance(type_, postgresql.JSONB):
        return _json_adapter(Jsonb, None)
    if isinstance(type_, sa.JSON):
        return _json_adapter(Json, None)
    if isinstance(type_, sa.Boolean):
        return _bool
    if isinstance(type_, sa.Integer):
        low, high = next(r for cls, r in _INT_RANGES.items() if isinstance(type_, cls))
        return _int_adapter(low, high, type(type_).__name__.lower())
    if isinstance(type_, sa.Float):
        return _float4 if is_float4(type_) else _float
    if isinstance(type_, sa.Numeric):
        return _numeric if type_.precision is None else _numeric_adapter(type_)
    if isinstance(type_, sa.String):
        length = type_.length
        return _text if length is None else _text_adapter(length, sql_type_name(type_))
    if isinstance(type_, sa.DateTime):
        return _timestamptz if type_.timezone else _timestamp
    if isinstance(type_, sa.Date):
        return _date
    if isinstance(type_, sa.Time):
        return _timetz if type_.timezone else _time
    if isinstance(type_, sa.Uuid):
        return _uuid
    if isinstance(type_, sa.LargeBinary):
        return _bytes
    return None


def _overrides(type_: sa.TypeDecorator[Any], method: str) -> bool:
    return getattr(type(type_), method) is not getattr(sa.TypeDecorator, method)


# When the generated parameter functions (compile.params_function, the prepared filler)
# may skip calling an adapter: a Python expression of the value ``{v}``, true only when
# the adapter would return the value unchanged.
_UNCHANGED: weakref.WeakKeyDictionary[Adapter, str] = weakref.WeakKeyDictionary()


def unchanged_when(adapter: Adapter) -> str | None:
    """The expression (of ``{v}``) under which ``adapter`` returns a value as it is, if known.

    It may name the classes in :data:`UNCHANGED_GLOBALS`: put them in the namespace
    of the generated function.
    """
    return _UNCHANGED.get(adapter)


class InlineAdapt(typing.NamedTuple):
    """How a generated parameter function adapts an adapter's usual value without a call.

    ``test`` and ``result`` are Python expressions of ``{v}`` (the value, never None) and
    ``{t}`` (a temporary name that ``test`` may bind and ``result`` read). When ``test`` is
    true, ``result`` is what the adapter returns; otherwise the adapter is called. The
    expressions name the objects of ``names`` as ``{name}``: the generator binds each under
    a name of its own. A ``TypeError`` raised by ``test`` means "call the adapter".
    """

    test: str
    result: str
    names: Mapping[str, Any]


# Adapters whose usual value the generated parameter functions adapt inline (an enum
# member to its label, a list of plain text for text[]).
_INLINE: weakref.WeakKeyDictionary[Adapter, InlineAdapt] = weakref.WeakKeyDictionary()


def adapted_when(adapter: Adapter) -> InlineAdapt | None:
    """How to adapt the usual value of ``adapter`` inline, when known (see :class:`InlineAdapt`)."""
    return _INLINE.get(adapter)


UNCHANGED_GLOBALS: Mapping[str, Any] = {
    "_Decimal": Decimal,
    "_datetime": dt.datetime,
    "_date": dt.date,
}


def _checker(cls: type, expected: str) -> Adapter:
    def check(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        raise ValueRejected(f"expected {expected}, got {describe_value(value)}")

    return check


def _bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise ValueRejected(f"expected a bool, got {describe_value(value)}")


def _int_adapter(low: int, high: int, sql_name: str) -> Adapter:
    def check(value: Any) -> Any:
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueRejected(f"expected an int, got {describe_value(value)}")
            value = int(value)
        if low <= value <= high:
            return value
        raise ValueRejected(f"{value} is out of range for {sql_name} ({low} to {high})")

    _UNCHANGED[check] = f"type({{v}}) is int and {low} <= {{v}} <= {high}"
    return check


def is_float4(type_: TypeEngine[Any]) -> bool:
    """Whether a float type is PostgreSQL's ``real`` (float4): REAL, or FLOAT(p) with p <= 24."""
    if isinstance(type_, sa.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, sa.REAL):
        return True
    precision = getattr(type_, "precision", None)
    return not isinstance(type_, sa.Double) and precision is not None and precision <= 24


def _float(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueRejected(f"expected a float, got {describe_value(value)}")
    if isinstance(value, float | int | Decimal):
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    raise ValueRejected(f"expected a float, got {describe_value(value)}")


_FLOAT4_MIN = 1.401298464324817e-45  # the smallest float4 above zero (a subnormal)


def _float4(value: Any) -> Any:
    """A float for ``real``: refused where the server's float8 -> float4 cast would fail.

    Beyond float4's range (about ±3.4e38) a value would overflow (the server's
    error 22003, and binary COPY would store Infinity); a value so small that it
    rounds to zero would underflow. NaN and the infinities are kept.
    """
    value = _float(value)
    number = float(value)
    if math.isfinite(number) and number != 0.0:
        try:
            single = F32.unpack(F32.pack(number))[0]
        except OverflowError:
            single = math.inf
        if math.isinf(single) or single == 0.0:
            raise ValueRejected(
                f"{describe_value(value)} is out of range for real (float4): from about ±{_FLOAT4_MIN:.1e} "
                f"to ±{FLOAT4_MAX:.7g}; use double precision for a wider range"
            )
    return value


def _numeric(value: Any) -> Any:
    if type(value) is Decimal:
        return value if value.is_finite() else _special_decimal(value)
    if isinstance(value, bool):
        raise ValueRejected(f"expected a Decimal, int or float, got {describe_value(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return float_to_numeric(value)
    if isinstance(value, Decimal):
        return _numeric(Decimal(value))
    if isinstance(value, numbers.Real):
        return Decimal(str(value))
    raise ValueRejected(f"expected a Decimal, int or float, got {describe_value(value)}")


def _special_decimal(value: Decimal) -> Decimal:
    """NaN and the infinities as PostgreSQL's numeric has them: one NaN, without a sign."""
    if value.is_snan():
        raise ValueRejected(
            "Decimal('sNaN') (a signalling NaN) has no numeric form; use Decimal('NaN')"
        )
    if value.is_nan():
        return _NAN  # Decimal('-NaN') too: numeric has one NaN
    return value


_NAN = Decimal("NaN")


def float_to_numeric(value: float) -> Decimal:
    """A float for a numeric column: its shortest exact form, ``Decimal(repr(value))``.

    ``0.1`` is sent as ``0.1``: the number the float was written as, not its
    binary expansion (0.1000000000000000055...) nor float8's 15 digits.
    """
    return Decimal(repr(value).replace("inf", "Infinity"))


_NUMERIC_CONTEXT = decimal.Context(prec=1000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _numeric_adapter(type_: sa.Numeric[Any]) -> Adapter:
    """``numeric(p, s)``: refuses a value whose integer part needs more than p - s digits.

    Like the server, the value is first rounded to ``s`` decimals (half away from
    zero), so 9.9999995 does not fit numeric(7, 6). Infinity has no place in a
    numeric with a precision; NaN has.
    """
    precision = type_.precision or 0
    scale = type_.scale or 0
    name = sql_type_name(type_)
    step = Decimal(1).scaleb(-scale)
    integer_digits = precision - scale
    # Values whose integer part has fewer digits than allowed fit even after rounding.
    safe = integer_digits - 1

    def check(value: Any) -> Any:
        value = _numeric(value)
        number = value if isinstance(value, Decimal) else Decimal(value)
        if number.is_finite() and number and number.adjusted() < safe:
            return value
        if number.is_nan():
            return value
        if number.is_infinite():
            raise ValueRejected(
                f"{value} does not fit {name}: infinity needs an unconstrained numeric"
            )
        rounded = number.quantize(step, rounding=decimal.ROUND_HALF_UP, context=_NUMERIC_CONTEXT)
        if rounded and rounded.adjusted() >= integer_digits:
            raise ValueRejected(
                f"{describe_value(value)} does not fit {name}: at most {integer_digits} digits "
                f"before the decimal point (after rounding to {scale} decimals)"
            )
        return value

    # ints below 10 ** (p - s) fit; so do Decimals with fewer integer digits than that
    bound = 10**integer_digits
    _UNCHANGED[check] = (
        f"(type({{v}}) is int and -{bound} < {{v}} < {bound}) or (type({{v}}) is _Decimal "
        f"and {{v}}.is_finite() and {{v}}.adjusted() < {safe})"
    )
    return check


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueRejected(f"expected a str, got {describe_value(value)}")
    if not value.isascii():
        check_unicode(value)
    elif "\x00" in value:
        raise ValueRejected("PostgreSQL text cannot contain NUL (\\x00) characters")
    return value


def check_unicode(text: str, what: str = "text") -> None:
    """Refuse what UTF-8 cannot carry (a lone surrogate such as ``"\\ud800"``) and NUL."""
    if "\x00" in text:
        raise ValueRejected(f"PostgreSQL {what} cannot contain NUL (\\x00) characters")
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise ValueRejected(
            f"{what} holds a lone surrogate {text[exc.start]!r} at index {exc.start}, which "
            "UTF-8 cannot encode; it often comes from decoding bytes with errors='surrogateescape'"
        ) from None


def checked_sql_text(text: str) -> str:
    """SQL text as it is, if UTF-8 can carry it; else a CompileError saying where it cannot.

    A lone surrogate in a ``raw()`` template, a ``sql()`` fragment or a label would
    otherwise fail inside psycopg as a bare ``UnicodeEncodeError``.
    """
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            context = text[max(0, exc.start - 30) : exc.start + 10]
            raise CompileError(
                f"the SQL text holds a lone surrogate {text[exc.start]!r}, which UTF-8 cannot "
                f"encode, at {context!r}; fix the raw()/sql() text or the label"
            ) from None
    return text


def _text_adapter(length: int, sql_name: str) -> Adapter:
    def check(value: Any) -> Any:
        value = _text(value)
        if len(value) > length:
            raise ValueRejected(
                f"{describe_value(value)} is {len(value)} characters long; {sql_name} holds at most "
                f"{length}"
            )
        return value

    _UNCHANGED[check] = (
        f"type({{v}}) is str and {{v}}.isascii() and len({{v}}) <= {length} "
        "and '\\x00' not in {v}"
    )
    return check


def _zoned(cls: type[dt.datetime] | type[dt.time], aware: bool, problem: str) -> Adapter:
    """The check of a ``datetime`` or ``time`` for a column with (``aware``) or without a zone.

    The server would convert a value of the other kind without a word (a naive
    datetime read in the session's time zone, an aware one stripped of its
    offset), so such a value is refused with ``problem`` and what to pass instead.
    """
    expected = f"a {cls.__name__}"

    def check(value: Any) -> Any:
        if isinstance(value, cls):
            if (value.utcoffset() is not None) if aware else value.tzinfo is None:
                return value
            raise ValueRejected(f"{describe_value(value)} {problem}")
        raise ValueRejected(f"expected {expected}, got {describe_value(value)}")

    return check


_timestamptz = _zoned(
    dt.datetime,
    True,
    "is a naive datetime for a timestamp with time zone; the server would read it in the "
    "session's time zone. Give it a tzinfo (datetime.now(UTC), value.replace(tzinfo=UTC))",
)
_timestamp = _zoned(
    dt.datetime,
    False,
    "has a time zone, and a timestamp without time zone would drop its offset; convert it "
    "first (value.astimezone(UTC).replace(tzinfo=None)) or make the column "
    "DateTime(timezone=True)",
)
_timetz = _zoned(
    dt.time,
    True,
    "is a naive time for a time with time zone; the server would give it the session's "
    "offset. Give it a tzinfo",
)
_time = _zoned(
    dt.time,
    False,
    "has a time zone, and a time without time zone would drop it; pass "
    "value.replace(tzinfo=None) or make the column Time(timezone=True)",
)


def _date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        raise ValueRejected(
            f"{describe_value(value)} is a datetime for a date column, which would drop its time; "
            "pass value.date()"
        )
    raise ValueRejected(f"expected a date, got {describe_value(value)}")


_UNCHANGED[_bool] = "type({v}) is bool"
_UNCHANGED[_float] = "type({v}) is float"
_UNCHANGED[_numeric] = "type({v}) is int or (type({v}) is _Decimal and {v}.is_finite())"
_UNCHANGED[_text] = "type({v}) is str and {v}.isascii() and '\\x00' not in {v}"
_UNCHANGED[_timestamptz] = "type({v}) is _datetime and {v}.tzinfo is not None"
_UNCHANGED[_timestamp] = "type({v}) is _datetime and {v}.tzinfo is None"
_UNCHANGED[_date] = "type({v}) is _date"


def _uuid(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ValueRejected(f"expected a UUID, got {describe_value(value)}") from None
    raise ValueRejected(f"expected a UUID, got {describe_value(value)}")


def _bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return value
    raise ValueRejected(f"expected bytes, got {describe_value(value)}")


def _json_encoder(*, ensure_ascii: bool) -> Callable[[Any], str]:
    """``JSONEncoder(allow_nan=False).encode``, with its C encoder made once, not per value.

    ``encode()`` builds a new C encoder for every call, which costs as much as
    encoding a small object: a bulk load of JSON rows paid it once a row. This
    one is built once. It keeps no ``markers`` dict (one shared between threads
    would see a false cycle when two threads encode the same object at once): a
    cycle ends in ``RecursionError``, as deep nesting already did, and the
    adapter reports both. The text is ``json.dumps(value, allow_nan=False)``'s.
    """
    encoder = json.JSONEncoder(allow_nan=False, ensure_ascii=ensure_ascii)
    # Not in typeshed: the stdlib's own encode() calls it, with these arguments (3.11-3.13).
    make: Callable[..., Callable[[Any, int], Iterable[str]]] | None = getattr(
        json.encoder, "c_make_encoder", None
    )
    if make is None:  # no C accelerator (another Python implementation)
        return encoder.encode
    strings = (
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    )
    parts = make(None, encoder.default, strings, None, ": ", ", ", False, False, False)

    def encode(value: Any) -> str:
        return "".join(parts(value, 0))

    return encode


_JSON = _json_encoder(ensure_ascii=True)
# The same, keeping non-ASCII text as it is: to find what UTF-8 cannot carry.
_JSON_UNICODE = _json_encoder(ensure_ascii=False)
_JSON_WRAPPERS = (Json, Jsonb)


def json_copy_adapter(type_: TypeEngine[Any]) -> Adapter | None:
    """For a json/jsonb column, the adapter that checks a value and returns its binary COPY
    bytes in one step (``insert_many``); None for other types.

    The same checks as :func:`adapter_for`'s, without the ``Jsonb`` wrapper in between:
    a bulk load pays for its JSON once, as a raw COPY does.
    """
    if isinstance(type_, JSONBPayload):
        return _json_adapter(Jsonb, type_.payload_type, copy=True)
    if isinstance(type_, sa.TypeDecorator) and not _overrides(type_, "process_bind_param"):
        return json_copy_adapter(type_.impl_instance)
    if isinstance(type_, postgresql.JSONB):
        return _json_adapter(Jsonb, None, copy=True)
    if isinstance(type_, sa.JSON):
        return _json_adapter(Json, None, copy=True)
    return None


def _json_adapter(
    wrapper: type[Json] | type[Jsonb], payload_type: type | None, copy: bool = False
) -> Adapter:
    shape = payload_shape(payload_type)
    prefix = b"\x01" if wrapper is Jsonb else b""  # jsonb's binary format: version 1, then text

    def adapt(value: Any) -> Any:
        if isinstance(value, _JSON_WRAPPERS):  # a tuple: cheaper than a union per call
            if copy:
                dumped = (value.dumps or json.dumps)(value.obj)
                return prefix + (dumped.encode() if isinstance(dumped, str) else bytes(dumped))
            return value
        if shape is not None:
            if isinstance(value, Mapping):
                problem = shape.problem(value)
                if problem is not None:
                    raise ValueRejected(f"the dict does not fit {shape.name}: {problem}")
            elif isinstance(value, shape.cls):
                value = dataclasses.asdict(value)
            else:
                raise ValueRejected(f"expected {shape.name}, got {describe_value(value)}")
        try:
            text = _JSON(value)
        except (TypeError, ValueError) as exc:
            raise ValueRejected(f"not JSON-serialisable: {exc}") from None
        except RecursionError:
            raise ValueRejected(
                "not JSON-serialisable: it refers to itself (a cycle), or nests deeper than "
                "Python's recursion limit"
            ) from None
        if "\\u0000" in text:
            raise ValueRejected("PostgreSQL jsonb cannot contain NUL (\\u0000) characters")
        if "\\ud" in text:  # a surrogate, or a character from U+D000 to U+D7FF
            check_unicode(_JSON_UNICODE(value), "JSON")
        if copy:
            return prefix + text.encode()
        return wrapper(text, dumps=_identity)  # serialised once, here

    return adapt


@dataclasses.dataclass(frozen=True)
class PayloadShape:
    """The fields of a dataclass payload (``jsonb(Info)``): what a dict for it must hold."""

    cls: Any  # a dataclass (mypy has no type for "any dataclass class")
    fields: frozenset[str]
    required: frozenset[str]
    floats: frozenset[str]
    """Fields declared ``float``: jsonb gives back an integral float (1.5e300) as an int."""

    @property
    def name(self) -> str:
        name: str = self.cls.__name__
        return name

    def problem(self, value: Mapping[Any, Any]) -> str | None:
        """What is wrong with ``value`` as this payload's fields, or None."""
        keys = value.keys()
        unknown = [k for k in keys if k not in self.fields]
        missing = sorted(self.required.difference(keys))
        if not unknown and not missing:
            return None
        problems = []
        if unknown:
            problems.append(f"unknown key {', '.join(map(repr, unknown))}")
        if missing:
            problems.append(f"missing field {', '.join(map(repr, missing))}")
        fields = ", ".join(sorted(self.fields))
        return f"{'; '.join(problems)} (the fields of {self.name}: {fields})"


@lru_cache(maxsize=256)
def payload_shape(payload_type: Any) -> PayloadShape | None:
    """The shape of a dataclass payload type, or None for other payloads."""
    if not (isinstance(payload_type, type) and dataclasses.is_dataclass(payload_type)):
        return None
    fields = [f for f in dataclasses.fields(payload_type) if f.init]
    required = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    return PayloadShape(
        payload_type,
        frozenset(f.name for f in fields),
        frozenset(required),
        _float_fields(payload_type),
    )


def _float_fields(payload_type: type) -> frozenset[str]:
    """The fields (or TypedDict keys) of ``payload_type`` declared ``float`` or ``float | None``."""
    try:
        hints = typing.get_type_hints(payload_type)
    except Exception:  # unresolvable forward references: no conversion
        return frozenset()
    return frozenset(
        name
        for name, hint in hints.items()
        if hint is float or (typing.get_origin(hint) in _UNIONS and float in typing.get_args(hint))
    )


_UNIONS = (typing.Union, types.UnionType)


def _enum_adapter(type_: sa.Enum) -> Adapter:
    labels = _enum_labels(type_)
    by_member = {member: label for label, member in labels.items() if member is not None}
    # A member's label by its identity: no call of Enum.__hash__ (Python code) for the
    # usual value. The members live as long as this closure, so no other object has their id.
    by_id = {id(member): label for member, label in by_member.items()}
    valid = ", ".join(labels)

    def adapt(value: Any) -> Any:
        label = by_id.get(id(value))
        if label is not None:
            return label
        if isinstance(value, enum.Enum):
            label = by_member.get(value)
            if label is not None:
                return label
        elif isinstance(value, str) and value in labels:
            return value
        raise ValueRejected(f"expected one of {valid}; got {describe_value(value)}")

    _INLINE[adapt] = InlineAdapt(
        "({t} := {label}(id({v}))) is not None", "{t}", {"label": by_id.get}
    )
    return adapt


def _enum_labels(type_: sa.Enum) -> dict[str, enum.Enum | None]:
    """Database label -> Enum member (None for string-only enums)."""
    if type_.enum_class is None:
        return dict.fromkeys(type_.enums)
    members = list(type_.enum_class)
    return dict(zip(type_.enums, members, strict=True))


def _array_adapter(type_: sa.ARRAY[Any]) -> Adapter:
    item = _adapter_cached(type_.item_type)
    uniform = _uniform_numbers(type_.item_type)
    passes = None if item is None or uniform is not None else _UNCHANGED.get(item)

    def adapt(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueRejected(f"expected a list, got {describe_value(value)}")
        if item is None:
            return list(value)
        try:
            items = [None if v is None else item(v) for v in value]
        except ValueRejected as exc:
            raise ValueRejected(f"array item: {exc}") from None
        return items if uniform is None else uniform(items)

    if passes is None:
        return adapt
    fast = _array_of_unchanged(passes, adapt)
    if item is _text:  # a list of plain ASCII str, without NUL: one join tests them all
        _INLINE[fast] = InlineAdapt(
            "type({v}) is list and ({t} := {join}({v})).isascii() and '\\x00' not in {t}",
            "{v}[:]",
            {"join": "".join},  # a TypeError for an item that is no str: the adapter's call
        )
    return fast


def _array_of_unchanged(passes: str, checked: Adapter) -> Adapter:
    """An array adapter for items whose adapter has an ``unchanged_when`` test: a list whose
    items all pass it is copied as it is, without a call per item (a list of ASCII str for
    ``text[]``). Anything else goes through ``checked``, the general adapter, whose errors
    say which item is wrong.
    """
    namespace: dict[str, Any] = {**UNCHANGED_GLOBALS, "checked": checked}
    source = (
        "def adapt(value):\n"
        "    if type(value) is list:\n"
        "        for v in value:\n"
        f"            if v is not None and not ({passes.format(v='v')}):\n"
        "                return checked(value)\n"
        "        return value[:]\n"
        "    return checked(value)"
    )
    generate("array adapter", source, namespace)  # the source holds only querykit's own tests
    adapt: Adapter = namespace["adapt"]
    return adapt


def _uniform_numbers(item_type: TypeEngine[Any]) -> Callable[[list[Any]], list[Any]] | None:
    """For number arrays: one Python type for all items, as psycopg dumps only such lists.

    A scalar column takes an int, a float or a Decimal as they are (the server casts);
    an array's items must agree, so ``[Decimal("1.5"), 2]`` becomes Decimals and
    ``[1.5, 2]`` for float8[] becomes floats.
    """
    if isinstance(item_type, sa.TypeDecorator):
        item_type = item_type.impl_instance
    if isinstance(item_type, sa.Float):
        return lambda items: [x if x is None or type(x) is float else float(x) for x in items]
    if isinstance(item_type, sa.Numeric):
        return _uniform_decimals
    return None


def _uniform_decimals(items: list[Any]) -> list[Any]:
    kinds = {type(x) for x in items if x is not None}
    if len(kinds) <= 1:
        return items  # one type already: sent as it is
    return [_as_decimal(x) for x in items]


def _as_decimal(x: Any) -> Any:
    if x is None or isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(int(x))  # exactly
    return float_to_numeric(float(x))


# -- vectors (pgvector) ----------------------------------------------------------


class _Float4Loader(Loader):
    """``real`` in text: the float32 value the server holds (see :func:`float4_exact`)."""

    def load(self, data: Buffer) -> float:
        number: float = F32.unpack(F32.pack(float(bytes(data))))[0]
        return number


def register_loaders(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """The loaders querykit needs on a connection, beyond psycopg's: float4 read exactly,
    JSON parsed by orjson when it is installed (:mod:`querykit.codecs.json_loads`)."""
    conn.adapters.register_loader("float4", _Float4Loader)
    use_fast_loads(conn)


def result_decoder(
    type_: TypeEngine[Any], column: str | None = None, *, computed: bool = False
) -> Decoder | None:
    """:func:`decoder_for` a result column; ``computed`` when it is an expression, not a column.

    An integer-typed expression may come back as numeric: PostgreSQL's ``sum()`` of a
    bigint is numeric, while SQLAlchemy declares it of the argument's type. Such a value
    is made the ``int`` the declared type promises.
    """
    decoder = decoder_for(type_, column)
    if decoder is None and computed and isinstance(type_, sa.Integer):
        return _exact_int
    return decoder


def _exact_int(value: Any) -> Any:
    return int(value) if value is not None and not isinstance(value, int) else value


def decoder_for(type_: TypeEngine[Any], column: str | None = None) -> Decoder | None:
    """A function that finishes a loaded value of ``type_``, or None if psycopg's value is final.

    ``column`` names the result column in the ``DecodeError`` of a value that has
    no Python form (a stored payload that does not fit its dataclass...).
    """
    return _decoder_cached(type_, column)


@lru_cache(maxsize=4096)
def _decoder_cached(type_: TypeEngine[Any], column: str | None = None) -> Decoder | None:

    if isinstance(type_, JSONBPayload):
        return _payload_decoder(type_.payload_type, column)
    if (pgvector := as_vector_type(type_)) is not None:
        return pgvector.decode_value
    if isinstance(type_, sa.Interval):
        return None
    if isinstance(type_, sa.TypeDecorator):
        inner = _decoder_cached(type_.impl_instance, column)
        if not _overrides(type_, "process_result_value"):
            return inner
        process = type_.process_result_value

        def decorated(value: Any) -> Any:
            return process(value if inner is None else inner(value), DIALECT)

        return decorated
    if isinstance(type_, sa.Enum) and type_.enum_class is not None:
        return _enum_decoder(type_, type_.enum_class, column)
    if isinstance(type_, sa.ARRAY):
        item = _decoder_cached(type_.item_type, column)
        if item is None:
            return None
        # psycopg cannot know arrays of user types (enums) and gives their text form
        return lambda v: [
            None if x is None else item(x)
            for x in (parse_text_array(v) if isinstance(v, str) else v)
        ]
    if isinstance(type_, sa.Float) and not isinstance(type_, sa.Double | sa.REAL):
        return None  # a float4 is exact already: see register_loaders()
    if isinstance(type_, sa.Numeric) and not type_.asdecimal:
        return lambda v: float(v) if isinstance(v, Decimal) else v
    return None


def _payload_decoder(payload: Any, column: str | None) -> Decoder | None:
    """Stored JSON -> the payload: a dataclass made from its object; declared floats as float."""
    shape = payload_shape(payload)
    floats = shape.floats if shape is not None else _typed_dict_floats(payload)
    if shape is None:
        if not floats:
            return None
        return lambda v: _with_floats(v, floats) if isinstance(v, dict) else v
    cls = shape.cls
    where = f"{column}: " if column else ""

    def decode(value: Any) -> Any:
        problem = shape.problem(value) if isinstance(value, dict) else "not a JSON object"
        if problem is None:
            try:
                return cls(**(_with_floats(value, floats) if floats else value))
            except (TypeError, ValueError) as exc:  # the dataclass's own __post_init__ checks
                problem = str(exc)
        raise DecodeError(
            f"{where}the stored jsonb {describe_value(value)} does not fit {shape.name}: {problem}. "
            f"Fix the stored rows, or change {shape.name} (a field with a default may be left out)"
        )

    return decode


def _typed_dict_floats(payload: Any) -> frozenset[str]:
    if isinstance(payload, type) and typing.is_typeddict(payload):
        return _float_fields(payload)
    return frozenset()


def _with_floats(value: dict[str, Any], floats: frozenset[str]) -> dict[str, Any]:
    """``value`` with the ints of fields declared float made floats (jsonb keeps no 1.0 vs 1)."""
    if not any(type(value.get(name)) is int for name in floats):
        return value
    return {k: float(v) if k in floats and type(v) is int else v for k, v in value.items()}


def _enum_decoder(
    type_: sa.Enum, enum_class: type[enum.Enum], column: str | None = None
) -> Decoder:
    members = _enum_labels(type_)
    where = f"{column}: " if column else ""

    def decode(label: Any) -> Any:
        try:
            return members[label]
        except KeyError:
            known = ", ".join(members)
            sql_name = f"enum type {type_.name!r}" if type_.name else "the enum"
            raise DecodeError(
                f"{where}the database returned {label!r} for {sql_name}, but {enum_class.__name__} "
                f"has no such member (it has {known}); add the label to "
                f"{enum_class.__name__} in the schema, or update the rows"
            ) from None

    return decode


def parse_text_array(text: str) -> list[str | None]:
    """The elements of a one-dimensional PostgreSQL array literal: ``{a,"b,c",NULL}``."""
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not an array literal: {text[:40]!r}")
    items: list[str | None] = []
    body, i, n = text[1:-1], 0, len(text) - 2
    while i < n:
        if body[i] == '"':
            i += 1
            chars = []
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 1
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            token = body[i:end]
            items.append(None if token == "NULL" else token)
            i = end
        if i < n and body[i] == ",":
            i += 1
    return items


# -- nested values: JSON from the server -> the Python value --------------------------


def json_expr(column: Any, type_: TypeEngine[Any]) -> Any:
    """The SQL expression that carries a column inside ``json_build_array`` losslessly.

    JSON numbers would pass through a float, so numeric values travel as text;
    so do floats, whose negative zero a JSON number loses (``-0`` reads as the
    int 0). Everything else has an exact JSON or text form already.
    """
    impl = type_.dialect_impl(DIALECT) if isinstance(type_, sa.TypeDecorator) else type_
    if isinstance(impl, sa.Numeric | sa.Float):  # SQLAlchemy 2.1: Float is not a Numeric
        return sa.cast(column, sa.Text)
    if isinstance(impl, sa.Interval | postgresql.INTERVAL):
        # its text depends on the server's IntervalStyle: send the three fields instead
        months = sa.extract("year", column) * 12 + sa.extract("month", column)
        time_part = sa.extract("epoch", column - sa.func.date_trunc("day", column))
        fields = sa.func.json_build_array(
            sa.cast(months, sa.Integer), sa.cast(sa.extract("day", column), sa.Integer),
            sa.cast(time_part, sa.Text),
        )  # fmt: skip
        return sa.case((column.is_(None), None), else_=fields)
    if isinstance(impl, sa.ARRAY) and isinstance(impl.item_type, sa.Numeric | sa.Float):
        return sa.cast(column, sa.ARRAY(sa.Text))
    return column


def json_decoder_for(type_: TypeEngine[Any], column: str | None = None) -> Decoder | None:
    """Turns a value read from ``json_build_array`` into what the top level returns for ``type_``.

    The result equals what psycopg plus ``decoder_for`` give for the same column
    outside JSON: aware datetimes, ``Decimal``, exact big ints, ``bytes``,
    ``UUID``, enum members, pgvector values, dataclass payloads...
    """
    return _json_decoder_cached(type_, column)


@lru_cache(maxsize=4096)
def _json_decoder_cached(type_: TypeEngine[Any], column: str | None = None) -> Decoder | None:

    final = _decoder_cached(type_, column)  # the same finishing step as the top level
    impl = type_.dialect_impl(DIALECT) if isinstance(type_, sa.TypeDecorator) else type_
    if (pgvector := as_vector_type(type_)) is not None:
        return pgvector.decode_value
    if isinstance(type_, JSONBPayload | sa.JSON) or isinstance(impl, sa.JSON):
        return final  # JSON arrives as JSON
    if isinstance(impl, sa.ARRAY):
        item = _json_decoder_cached(impl.item_type, column)
        if item is None:
            return None
        return lambda v: [None if x is None else item(x) for x in v]
    if isinstance(impl, sa.Enum):
        return final
    base: Decoder | None = None
    if isinstance(impl, sa.Float):
        base = _json_float4 if is_float4(impl) else _json_float
    elif isinstance(impl, sa.Numeric):
        base = Decimal if impl.asdecimal else _json_float
    elif isinstance(impl, sa.DateTime):
        base = _json_datetime
    elif isinstance(impl, sa.Date):
        base = dt.date.fromisoformat
    elif isinstance(impl, sa.Time):
        base = dt.time.fromisoformat
    elif isinstance(impl, sa.Interval | postgresql.INTERVAL):
        base = _json_interval
    elif isinstance(impl, sa.Uuid):
        base = uuid.UUID if getattr(impl, "as_uuid", True) else None
    elif isinstance(impl, sa.LargeBinary):
        base = _json_bytes
    if base is None:
        return final
    if final is None or isinstance(impl, sa.Numeric):
        return base
    first = base
    return lambda v: final(first(v))


def _json_float4(value: Any) -> float:
    number: float = float4_exact(_json_float(value))
    return number


def _json_float(value: Any) -> float:
    if isinstance(value, str):  # 'NaN', 'Infinity', '-Infinity'
        return float(value.replace("Infinity", "inf"))
    return float(value)


def _json_interval(value: list[Any]) -> dt.timedelta:
    """(months, days, seconds) as psycopg reads an interval: a year is 365 days, a month 30."""
    months, days, seconds = value
    years = int(months / 12)  # toward zero, as PostgreSQL prints "-1 years -2 mons"
    months -= years * 12
    micros = int(Decimal(seconds) * 1_000_000)
    return dt.timedelta(days=days + 30 * months + 365 * years, microseconds=micros)


def _json_datetime(value: str) -> dt.datetime:
    if value in ("infinity", "-infinity"):
        raise ValueError(f"timestamp {value} has no Python datetime")
    return dt.datetime.fromisoformat(value)


def _json_bytes(value: str) -> bytes:
    if not value.startswith("\\x"):
        raise ValueError("expected bytea in hex format")
    return bytes.fromhex(value[2:])


# -- JSON for tools: a parameter as plain JSON data -------------------------------------


def json_safe(value: Any) -> Any:
    """A parameter as JSON data, for ``--json`` output: text for what JSON has no type for."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Json | Jsonb):
        return json.loads(value.obj) if isinstance(value.obj, str) else value.obj
    if isinstance(value, Vector | HalfVector):
        return value.to_list()
    if isinstance(value, SparseVector | Bit):
        return value.to_text()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# -- literals: Python value -> SQL text ---------------------------------------------


@lru_cache(maxsize=4096)
def sql_type_name(type_: TypeEngine[Any]) -> str:
    """The type as PostgreSQL spells it in a cast: ``integer``, ``jsonb``, ``vector(3)``..."""
    return type_.compile(dialect=DIALECT)


def quote_text(text: str) -> str:
    """A standard-conforming SQL string literal: quotes doubled, backslashes literal."""
    if "\x00" in text:
        raise CompileError("PostgreSQL text cannot contain NUL (\\x00) characters")
    return "'" + text.replace("'", "''") + "'"


def literal(type_: TypeEngine[Any] | None, value: Any) -> str:
    """``value`` as a SQL literal of ``type_``, with a cast where the type is not implied."""
    if value is None:
        return "NULL"
    if type_ is not None and not isinstance(type_, sa.types.NullType):
        adapter = adapter_for(type_)
        if adapter is not None:
            try:
                value = adapter(value)
            except ValueRejected as exc:
                raise CompileError(str(exc)) from None
        return _typed_literal(type_, value)
    return _untyped_literal(value)


def _typed_literal(type_: TypeEngine[Any], value: Any) -> str:
    if isinstance(type_, sa.TypeDecorator):
        type_ = type_.dialect_impl(DIALECT)
    name = sql_type_name(type_)
    if isinstance(type_, sa.ARRAY):
        if not value:
            return f"'{{}}'::{name}"
        items = ", ".join(literal(type_.item_type, v) for v in value)
        return f"ARRAY[{items}]::{name}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(type_, sa.Integer) and isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_literal(value, name)
    if isinstance(value, Decimal | int):
        return _numeric_literal(value, name)
    if isinstance(value, str) and isinstance(type_, sa.String) and not isinstance(type_, sa.Enum):
        return quote_text(value)
    return f"{quote_text(_text_form(value))}::{name}"


def _float_literal(value: float, name: str) -> str:
    if math.isnan(value):
        return f"'NaN'::{name}"
    if math.isinf(value):
        return f"'{'-' if value < 0 else ''}Infinity'::{name}"
    return f"{value!r}::{name}"


def _numeric_literal(value: Decimal | int, name: str) -> str:
    if isinstance(value, Decimal) and not value.is_finite():
        text = "NaN" if value.is_nan() else ("-Infinity" if value < 0 else "Infinity")
        return f"'{text}'::{name}"
    return f"{value}::{name}"


def _untyped_literal(value: Any) -> str:
    """A literal for a value with no known column type, cast by its Python type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_literal(value, "double precision")
    if isinstance(value, Decimal):
        return _numeric_literal(value, "numeric")
    if isinstance(value, str):
        return quote_text(value)
    if isinstance(value, list | tuple):
        if not value:
            raise CompileError("cannot render an empty array without its type; give the column")
        return "ARRAY[" + ", ".join(_untyped_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        value = Jsonb(value)
    return f"{quote_text(_text_form(value))}::{_python_cast(value)}"


def _python_cast(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    if isinstance(value, dt.time):
        return "timetz" if value.tzinfo is not None else "time"
    if isinstance(value, Bit):
        return f"bit({len(value.to_text())})"
    for cls, cast in _PYTHON_CASTS:
        if isinstance(value, cls):
            return cast
    raise CompileError(f"cannot render {describe_value(value)} as a SQL literal")


_PYTHON_CASTS: tuple[tuple[Any, str], ...] = (
    (dt.date, "date"),
    (dt.timedelta, "interval"),
    (uuid.UUID, "uuid"),
    ((bytes, bytearray, memoryview), "bytea"),
    (Jsonb, "jsonb"),
    (Json, "json"),
    (enum.Enum, "text"),
    (Vector, "vector"),
    (HalfVector, "halfvec"),
    (SparseVector, "sparsevec"),
)


def _text_form(value: Any) -> str:
    """PostgreSQL's input text for ``value`` (to be quoted and cast)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, Json | Jsonb):
        return value.obj if isinstance(value.obj, str) else json.dumps(value.obj)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Vector | HalfVector | SparseVector | Bit):
        return str(value.to_text())
    if isinstance(value, uuid.UUID | Decimal | int | float):
        return str(value)
    raise CompileError(f"cannot render {describe_value(value)} as a SQL literal")
