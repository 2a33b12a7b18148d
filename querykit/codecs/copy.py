"""Binary COPY forms: the type name and converter each column type's values go in.

``insert_many()`` streams rows with binary COPY. For each column this module says which
type name to give ``Copy.set_types`` and how a value (already checked by the adapters in
:mod:`querykit.codecs`) becomes what psycopg writes. It is one more view of the same
value rules, kept here so a type's COPY form sits beside its other forms.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from . import is_float4
from .pgvector import VectorType, as_vector_type

__all__ = ["Converter", "copy_form"]

Converter = Callable[[Any], Any]
"""Turns a checked value into what binary COPY writes for its column."""

_JSON_DUMPS = json.dumps


def _impl(type_: Any) -> Any:
    # sa.Interval is a TypeDecorator over DateTime for other databases; native here.
    while isinstance(type_, sa.TypeDecorator) and not isinstance(type_, sa.Interval):
        type_ = type_.impl_instance
    return type_


def copy_form(type_: Any, *, item: bool = False) -> tuple[str | None, Converter | None]:
    """The type name for ``Copy.set_types`` and a converter, or (None, None).

    Binary COPY sends each value in its column type's binary format, and sends
    no type oids: the server reads each field with the column's own input
    function. Values arrive checked by codecs, which already refused what the
    server would convert (a naive datetime for timestamptz...) and made floats
    for numeric Decimals; what is left is an int or Decimal for a float column,
    made a float. pgvector and JSON values are sent as their binary form
    already made (declared ``bytea``: bytes as they are), which spares
    psycopg's Python-level dumpers. Array elements are the exception: an
    array's header names its element type.
    """
    t = as_vector_type(type_) or _impl(type_)
    if isinstance(t, sa.ARRAY):
        element = as_vector_type(t.item_type) or _impl(t.item_type)
        if item or isinstance(element, sa.Enum | VectorType | sa.ARRAY):
            return None, None  # the array's binary header names the element type's oid
        name, each = copy_form(element, item=True)
        if name is None:
            return None, None
        if each is None:
            return f"{name}[]", None
        convert_item = each

        def array_converter(v: Any) -> Any:
            return [None if x is None else convert_item(x) for x in v]

        return f"{name}[]", array_converter
    if isinstance(t, sa.Enum):
        # An enum's binary input is its label's bytes: exactly text's binary form.
        return "text", None
    if isinstance(t, VectorType):
        return (None, None) if item else ("bytea", _pgvector_binary)
    if isinstance(t, sa.JSON):
        binary = isinstance(t, postgresql.JSONB)
        if item:
            return ("jsonb" if binary else "json"), None
        return "bytea", _jsonb_binary if binary else _json_binary
    if isinstance(t, sa.Boolean):
        return "bool", None
    if isinstance(t, sa.Integer):
        name = (
            "int8"
            if isinstance(t, sa.BigInteger)
            else "int2"
            if isinstance(t, sa.SmallInteger)
            else "int4"
        )
        return name, None
    if isinstance(t, sa.Float):
        return ("float4" if is_float4(t) else "float8"), _to_float
    if isinstance(t, sa.Numeric):
        return "numeric", None  # codecs sent floats as Decimal already
    if isinstance(t, sa.String):
        return "text", None
    # codecs refuses what the server would convert (a naive datetime for timestamptz,
    # an aware one for timestamp, a datetime for a date): the values go as they are.
    if isinstance(t, sa.DateTime):
        return ("timestamptz" if t.timezone else "timestamp"), None
    if isinstance(t, sa.Date):
        return "date", None
    if isinstance(t, sa.Time):
        return ("timetz" if t.timezone else "time"), None
    if isinstance(t, sa.Interval | postgresql.INTERVAL):
        return "interval", None
    if isinstance(t, sa.Uuid):
        return "uuid", None
    if isinstance(t, sa.LargeBinary):
        return "bytea", None
    return None, None


def _pgvector_binary(value: Any) -> bytes:
    """A checked pgvector value (``Vector``, ``HalfVector``...) in its binary input format."""
    data: bytes = value.to_binary()
    return data


def _json_text(value: Any) -> str:
    """The JSON text of a ``Json``/``Jsonb`` wrapper (codecs serialised it already)."""
    dumps = value.dumps or _JSON_DUMPS
    text: str = dumps(value.obj)
    return text


def _jsonb_binary(value: Any) -> bytes:
    return b"\x01" + _json_text(value).encode()  # jsonb's binary format: version 1, then text


def _json_binary(value: Any) -> bytes:
    return _json_text(value).encode()


def _to_float(v: Any) -> float:
    return v if type(v) is float else float(v)
