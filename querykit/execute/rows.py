"""Rows: the row factories that decode values, and the one ``as_=`` mapper.

:func:`row_mapper` turns a row's values into an ``as_=`` class (a dataclass, a NamedTuple,
a TypedDict or a pydantic model, read through :mod:`querykit.build.rowclass`). It serves
every result: flat ones (builders and raw SQL, through :func:`mapped_factory`) and each
level of a nested one (:mod:`querykit.execute.nested_rows`). It is built once per
(field names, class) and checked when built, so a wrong class fails before any row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg.rows import tuple_row

from .. import codecs
from ..build.rowclass import require_row_fields
from ..codegen import generate
from ..errors import MappingError

__all__ = [
    "RowFactory",
    "RowMaker",
    "decoding_factory",
    "mapped_factory",
    "row_mapper",
    "scalar_factory",
]

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
        to_row = row_mapper(columns, cls)
        decode = _decoding_maker(decoders) if any(decoders) else None
        if decode is None:
            return lambda cursor: to_row
        return lambda cursor: lambda values: to_row(decode(values))

    def from_description(cursor: Any) -> RowMaker:  # raw(): names come with the result
        names = tuple(c.name for c in cursor.description or ())
        try:
            return row_mapper(names, cls)
        except MappingError as exc:
            # psycopg also calls this for the previous result when the factory is set;
            # the error is for the rows of this result, when there are any.
            error = exc

            def fail(values: Sequence[Any]) -> Any:
                raise error

            return fail

    return from_description


_MAPPERS: dict[tuple[tuple[str, ...], type], RowMaker] = {}


def row_mapper(names: tuple[str, ...], cls: type) -> RowMaker:
    """The converter from a row's values (in ``names`` order) to ``cls``, checked now.

    A ``MappingError`` says which columns have no field and which required fields no
    column; made once per (names, class). Flat results and each nested level use it.
    """
    found = _MAPPERS.get((names, cls))
    if found is None:
        found = _MAPPERS[(names, cls)] = _build_mapper(names, cls)
    return found


def _build_mapper(names: tuple[str, ...], cls: type) -> RowMaker:
    fields = require_row_fields(cls)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise MappingError(
            f"cannot map rows to {cls.__name__}: the query returns column {', '.join(dupes)} "
            "more than once; give the columns distinct names with .label('...')"
        )
    unknown = [n for n in names if n not in fields.names]
    missing = [f for f in fields.required if f not in names]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"no field for column {', '.join(unknown)}")
        if missing:
            problems.append(f"no column for field {', '.join(missing)}")
        raise MappingError(
            f"cannot map rows to {cls.__name__}: {'; '.join(problems)}. "
            f"Columns: {', '.join(names) or '(none)'}; fields: {', '.join(fields.names)}. "
            "Rename columns with .label('field') or change the class"
        )
    if fields.kind == "dict":
        return lambda values: dict(zip(names, values, strict=True))
    if fields.kind == "model":
        return _model_maker(names, cls)
    if names == fields.names[: len(names)]:  # same order: positional is fastest
        return lambda values: cls(*values)
    return lambda values: cls(**dict(zip(names, values, strict=True)))


def _model_maker(names: tuple[str, ...], cls: type) -> RowMaker:
    """Rows as a pydantic model, validated as pydantic validates keyword arguments."""

    def make(values: Sequence[Any]) -> Any:
        try:
            return cls(**dict(zip(names, values, strict=True)))
        except ValueError as exc:  # pydantic's ValidationError, without importing pydantic
            raise MappingError(f"a row does not fit {cls.__name__}: {exc}") from exc

    return make
