"""Do a row class's field types agree with a query's column types?

``as_=`` classes (dataclass, NamedTuple, TypedDict) are written by hand, so
they can lie: a field typed ``float`` for a ``Column[Decimal]`` type-checks
and still receives a ``Decimal``. The executor and the nested loader call
:func:`check_row_class` when they first meet a class for a query, and
``querykit check`` uses :func:`problem` to compare a query's promises with
what the database describes. Names are checked elsewhere (the mappers); this
module only judges types, and says nothing when it cannot know.

    >>> problem(float, Decimal, may_be_null=False)
    'float, but the column gives Decimal'
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.types import TypeEngine

from ..errors import MappingError

__all__ = [
    "check_row_class",
    "field_types",
    "problem",
    "python_type_of",
    "type_name",
]


def python_type_of(type_: TypeEngine[Any] | None) -> Any:
    """The Python type querykit hands back for a column of ``type_``; None when unknown.

    It follows querykit's decoders: a ``jsonb(Payload)`` gives ``Payload``, an
    ``Enum(Status)`` gives ``Status``, a ``Numeric(asdecimal=False)`` a float.
    """
    if type_ is None:
        return None
    payload = getattr(type_, "payload_type", None)
    if payload is not None:
        return payload
    enum_class = getattr(type_, "enum_class", None)
    if isinstance(enum_class, type):
        return enum_class
    try:
        found = type_.python_type
    except NotImplementedError:
        return None
    return None if found is object else found


def field_types(cls: type) -> dict[str, Any]:
    """The annotated type of each field of a dataclass, NamedTuple or TypedDict."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: nothing to compare
        return {}
    if dataclasses.is_dataclass(cls):
        return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name in hints}
    return dict(hints)


def type_name(tp: Any) -> str:
    """``Decimal``, ``str | None``, ``list[int]``: a type as a reader writes it."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("decimal.", "").replace("datetime.", "")


def problem(annotation: Any, actual: Any, *, may_be_null: bool | None) -> str | None:
    """Why a field typed ``annotation`` cannot hold values of type ``actual``, else None.

    ``actual`` None means unknown (no verdict on the type); ``may_be_null`` None
    means unknown (no verdict on nullability).
    """
    if annotation is Any or annotation is object or isinstance(annotation, typing.TypeVar):
        return None
    members = _members(annotation)
    optional = type(None) in members
    members = [m for m in members if m is not type(None)]
    if may_be_null and not optional:
        return f"{type_name(annotation)}, but the column can be NULL (make it {type_name(annotation)} | None)"
    if actual is None or not members:
        return None
    if any(_accepts(m, actual) for m in members):
        return None
    return f"{type_name(annotation)}, but the column gives {type_name(actual)}"


def _members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if annotation is None:
        return [type(None)]
    return [annotation]


def _accepts(member: Any, actual: Any) -> bool:
    if member is Any or member is object or isinstance(member, typing.TypeVar):
        return True
    origin = typing.get_origin(member)
    if origin is typing.Literal:
        return True
    if typing.is_typeddict(member) or typing.is_typeddict(actual):
        # a JSON object either way: its keys are the payload's business, not the column's
        return _is_mapping(member) and _is_mapping(actual)
    target = origin if isinstance(origin, type) else member
    if not isinstance(target, type) or not isinstance(actual, type):
        return True  # a form this check does not judge (a Protocol, a NewType...)
    if target is float and actual is int:  # PEP 484's numeric tower
        return True
    if target is complex and actual in (int, float):
        return True
    if isinstance(actual, enum.EnumMeta) and target is str and issubclass(actual, str):
        return True
    try:
        return issubclass(actual, target)
    except TypeError:
        return True


def _is_mapping(tp: Any) -> bool:
    if typing.is_typeddict(tp):
        return True
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, Mapping)


def check_row_class(
    cls: type,
    columns: Sequence[str],
    types_: Sequence[Any],
    nullable: Sequence[bool | None] | None = None,
) -> None:
    """Raise ``MappingError`` when a field's type cannot hold its column's values.

    ``types_`` are Python types (None: unknown); ``nullable`` says, per column,
    whether it may be NULL (None: unknown). The executor and the nested loader
    pass no nullability: only the database knows whether a filter or a join
    makes a column NULL-free or NULL-able, so that is ``querykit check``'s job,
    and a query that filters out NULLs is not refused at run time.
    """
    fields = field_types(cls)
    if not fields:
        return
    found = []
    for i, (name, actual) in enumerate(zip(columns, types_, strict=True)):
        annotation = fields.get(name)
        if annotation is None:
            continue
        may_be_null = nullable[i] if nullable is not None else None
        why = problem(annotation, actual, may_be_null=may_be_null)
        if why is not None:
            found.append(f"field {name} is {why}")
    if found:
        raise MappingError(
            f"as_={cls.__name__} does not fit the query's column types: {'; '.join(found)}. "
            "Change the field types (or cast the column in the query)"
        )
