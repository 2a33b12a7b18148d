"""What an ``as_=`` class is made of: its fields, the ones a row must give, how one is built.

Rows map by name onto a dataclass, a NamedTuple, a TypedDict (``typing``'s or
``typing_extensions``') or a pydantic model, for flat and nested results alike. Two
places read a class, and both read it here so they cannot disagree about it: the nested
spec checks a class against its levels when it is built (``find_many(as_=...)``), and
the one row mapper (:func:`querykit.execute.rows.row_mapper`) builds the instances.
The field *types* are :mod:`querykit.build.rowtype`'s business.

    >>> row_fields(RunCost)
    RowFields(names=('name', 'cost'), required=('name', 'cost'), kind='object')
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, Literal

import typing_extensions

from ..codecs.pydantic_schemas import model_annotations, model_fields
from ..errors import MappingError

__all__ = ["RowFields", "element_class", "field_hints", "require_row_fields", "row_fields"]


@dataclasses.dataclass(frozen=True, slots=True)
class RowFields:
    """The fields of an ``as_=`` class, as a row mapper needs them."""

    names: tuple[str, ...]
    """Every field a row may fill, in declaration order."""
    required: tuple[str, ...]
    """The fields without a default: a row must give them."""
    kind: Literal["object", "dict", "model"]
    """How an instance is built: ``object`` (a dataclass or NamedTuple: by position or
    keyword), ``dict`` (a TypedDict: the row is a dict), ``model`` (pydantic: keywords,
    validated)."""


def row_fields(cls: Any) -> RowFields | None:
    """The fields of ``cls``, or None when it is not a class rows can map onto."""
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        fs = [f for f in dataclasses.fields(cls) if f.init]
        required = tuple(
            f.name
            for f in fs
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        return RowFields(tuple(f.name for f in fs), required, "object")
    tuple_fields = getattr(cls, "_fields", None) if _is_tuple_class(cls) else None
    if tuple_fields is not None:  # a NamedTuple
        defaults = getattr(cls, "_field_defaults", {})
        names = tuple(tuple_fields)
        return RowFields(names, tuple(n for n in names if n not in defaults), "object")
    if typing_extensions.is_typeddict(cls) or _annotated_dict(cls):
        # typing's and typing_extensions' TypedDict (on 3.11 they differ), or a dict
        # subclass with annotations: rows stay dicts
        hints = tuple(typing.get_type_hints(cls))
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset(hints))
        return RowFields(hints, tuple(h for h in hints if h in required_keys), "dict")
    pydantic_fields = model_fields(cls)
    if pydantic_fields is not None:
        required = tuple(k for k, req in pydantic_fields.items() if req)
        return RowFields(tuple(pydantic_fields), required, "model")
    return None


def _is_tuple_class(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple)


def _annotated_dict(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__annotations__")


def require_row_fields(cls: Any) -> RowFields:
    """:func:`row_fields`, or a ``MappingError`` that says which classes ``as_=`` takes."""
    found = row_fields(cls)
    if found is None:
        raise MappingError(
            f"as_={getattr(cls, '__name__', cls)!r}: expected a dataclass, a NamedTuple, "
            "a TypedDict or a pydantic model"
        )
    return found


def element_class(hint: Any) -> Any:
    """``StepRow`` from ``list[StepRow]``, ``StepRow | None`` or ``StepRow``; None for others.

    How a nested ``as_=`` class says which class the rows of a relation become.
    """
    if hint is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (list, Sequence, typing.Union) or str(origin) == "<class 'types.UnionType'>":
        for arg in typing.get_args(hint):
            found = element_class(arg)
            if found is not None:
                return found
        return None
    return hint if row_fields(hint) is not None else None


def field_hints(cls: Any) -> dict[str, Any]:
    """Field types: pydantic's resolved ones for a model, else the class's annotations."""
    resolved = model_annotations(cls)
    return typing.get_type_hints(cls) if resolved is None else resolved
