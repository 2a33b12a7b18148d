"""Rows: the row factories that decode values and map them to ``as_=`` classes.

One mapper serves every flat result (builders and raw SQL); it is built once per
(column names, class) and checked when built, so a wrong class fails before any row.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from typing import Any

import typing_extensions
from psycopg.rows import tuple_row

from .. import codecs
from ..codecs.pydantic_schemas import model_fields
from ..codegen import generate
from ..errors import (
    MappingError,
)

RowMaker = Callable[[Sequence[Any]], Any]
RowFactory = Callable[[Any], RowMaker]


def decoding_factory(decoders: Sequence[codecs.Decoder | None]) -> RowFactory:
    """Plain tuples when psycopg's values are final, else a maker that finishes them."""
    if all(d is None for d in decoders):
        return tuple_row
    make = _decoding_maker(decoders)
    return lambda cursor: make


def _decoding_maker(decoders: Sequence[codecs.Decoder | None]) -> RowMaker:
    # A small generated function per shape: one line per column, no loop, no lookups.
    # Only indices go into the source; decoders are passed in as names d0, d1...
    lines = [
        f"def make(values):\n    ({', '.join(f'v{i}' for i in range(len(decoders)))},) = values"
    ]
    items = []
    for i, d in enumerate(decoders):
        items.append(f"v{i}" if d is None else f"(None if v{i} is None else d{i}(v{i}))")
    lines.append(f"    return ({', '.join(items)},)")
    namespace: dict[str, Any] = {f"d{i}": d for i, d in enumerate(decoders) if d is not None}
    generate("row decoder", lines, namespace)
    maker: RowMaker = namespace["make"]
    return maker


def scalar_factory(decoder: codecs.Decoder | None) -> RowFactory:
    """The row factory of ``scalar()``/``scalars()``: the first column, decoded."""
    if decoder is None:
        return lambda cursor: _first
    return lambda cursor: lambda values: None if values[0] is None else decoder(values[0])


def _first(values: Sequence[Any]) -> Any:
    return values[0]


def mapped_factory(
    columns: tuple[str, ...], decoders: tuple[codecs.Decoder | None, ...], cls: type
) -> RowFactory:
    """The row factory for an ``as_=`` class, checked against the columns when made."""
    if columns:  # a builder: names known now, checked now
        to_row = _mapper(columns, cls)
        decode = _decoding_maker(decoders) if any(decoders) else None
        if decode is None:
            return lambda cursor: to_row
        return lambda cursor: lambda values: to_row(decode(values))

    def from_description(cursor: Any) -> RowMaker:  # raw(): names come with the result
        names = tuple(c.name for c in cursor.description or ())
        try:
            return _mapper(names, cls)
        except MappingError as exc:
            # psycopg also calls this for the previous result when the factory is set;
            # the error is for the rows of this result, when there are any.
            error = exc

            def fail(values: Sequence[Any]) -> Any:
                raise error

            return fail

    return from_description


_MAPPERS: dict[tuple[tuple[str, ...], type], RowMaker] = {}


def _mapper(names: tuple[str, ...], cls: type) -> RowMaker:
    found = _MAPPERS.get((names, cls))
    if found is None:
        found = _MAPPERS[(names, cls)] = _build_mapper(names, cls)
    return found


def _build_mapper(names: tuple[str, ...], cls: type) -> RowMaker:
    fields, required, kind = _fields_of(cls)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise MappingError(
            f"cannot map rows to {cls.__name__}: the query returns column {', '.join(dupes)} "
            "more than once; give the columns distinct names with .label('...')"
        )
    unknown = [n for n in names if n not in fields]
    missing = [f for f in required if f not in names]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"no field for column {', '.join(unknown)}")
        if missing:
            problems.append(f"no column for field {', '.join(missing)}")
        raise MappingError(
            f"cannot map rows to {cls.__name__}: {'; '.join(problems)}. "
            f"Columns: {', '.join(names) or '(none)'}; fields: {', '.join(fields)}. "
            "Rename columns with .label('field') or change the class"
        )
    if kind == "dict":
        return lambda values: dict(zip(names, values, strict=True))
    if kind == "model":
        return _model_maker(names, cls)
    if list(names) == list(fields[: len(names)]):  # same order: positional is fastest
        return lambda values: cls(*values)
    return lambda values: cls(**dict(zip(names, values, strict=True)))


def _fields_of(cls: type) -> tuple[list[str], list[str], str]:
    """(field names in order, required field names, "dict" | "object") of an as_= class."""
    if dataclasses.is_dataclass(cls):
        fs = [f for f in dataclasses.fields(cls) if f.init]
        required = [
            f.name
            for f in fs
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        return [f.name for f in fs], required, "object"
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        defaults = getattr(cls, "_field_defaults", {})
        names = list(cls._fields)
        return names, [n for n in names if n not in defaults], "object"
    if typing_extensions.is_typeddict(cls):  # typing's and typing_extensions' (on 3.11)
        hints = list(typing.get_type_hints(cls))
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset(hints))
        return hints, [h for h in hints if h in required_keys], "dict"
    pydantic_fields = model_fields(cls)
    if pydantic_fields is not None:
        return list(pydantic_fields), [k for k, req in pydantic_fields.items() if req], "model"
    raise MappingError(
        f"as_={getattr(cls, '__name__', cls)!r}: expected a dataclass, a NamedTuple, "
        "a TypedDict or a pydantic model"
    )


def _model_maker(names: tuple[str, ...], cls: type) -> RowMaker:
    """Rows as a pydantic model, validated as pydantic validates keyword arguments."""

    def make(values: Sequence[Any]) -> Any:
        try:
            return cls(**dict(zip(names, values, strict=True)))
        except ValueError as exc:  # pydantic's ValidationError, without importing pydantic
            raise MappingError(f"a row does not fit {cls.__name__}: {exc}") from exc

    return make
