"""A named query's parameters as an HTML form, and the form's text back as typed arguments.

The form is typed from the query function's signature: ``hours: int = 24``
becomes a number input holding 24, an Enum a choice, a bool a checkbox. What
the browser sends is converted with the same annotations; a value that does
not convert is an error naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pglast

from ..errors import ValidationError
from ..named import NamedQuery

__all__ = ["Field", "arguments", "fields_of", "result_names"]


@dataclass(frozen=True)
class Field:
    """One input of a named query's form, from one parameter of its factory."""

    name: str
    input: str
    """HTML input type: number, text, checkbox, date, datetime-local, select, json."""
    default: str
    step: str = ""
    choices: tuple[str, ...] = ()
    optional: bool = False
    annotation: Any = None


def fields_of(named: NamedQuery) -> list[Field]:
    """The form fields of a named query: one per parameter of its factory."""
    if named.factory is None:
        return []
    signature = inspect.signature(named.factory, eval_str=True)
    return [_field(p) for p in signature.parameters.values()]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); anything else → (annotation, False)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _field(p: inspect.Parameter) -> Field:
    annotation, optional = _unwrap(p.annotation)
    default = p.default
    shown: Any = "" if default is None or default is inspect.Parameter.empty else default
    if annotation is bool:
        return Field(p.name, "checkbox", "true" if shown else "", annotation=annotation)
    if annotation is int:
        return Field(p.name, "number", str(shown), "1", optional=optional, annotation=annotation)
    if annotation in (float, decimal.Decimal):
        return Field(p.name, "number", str(shown), "any", optional=optional, annotation=annotation)
    if annotation is dt.datetime:
        text = shown.isoformat(timespec="minutes")[:16] if shown else ""
        return Field(p.name, "datetime-local", text, optional=optional, annotation=annotation)
    if annotation is dt.date:
        text = shown.isoformat() if shown else ""
        return Field(p.name, "date", text, optional=optional, annotation=annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        name = shown.name if isinstance(shown, enum.Enum) else str(shown)
        labels = tuple(m.name for m in annotation)
        return Field(
            p.name, "select", name, choices=labels, optional=optional, annotation=annotation
        )
    return Field(p.name, "text", str(shown), optional=optional, annotation=annotation)


def arguments(named: NamedQuery, form: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments the form asks for, typed by the signature.

    A parameter the form does not send keeps its default; one sent empty is
    None when the annotation allows it, and an error otherwise. The page's
    form marks itself with ``_sent``, so an unticked checkbox (which browsers
    do not send) is False there.
    """
    out: dict[str, Any] = {}
    from_page = "_sent" in form
    for field in fields_of(named):
        if field.name not in form and not (from_page and field.input == "checkbox"):
            continue
        if field.input == "checkbox":
            out[field.name] = form.get(field.name) in ("true", "on", "1")
            continue
        text = form.get(field.name, "")
        if text == "" and field.optional:
            out[field.name] = None
            continue
        try:
            out[field.name] = _convert(field, text)
        except (ValueError, KeyError, decimal.InvalidOperation) as exc:
            raise ValidationError(
                f"parameter {field.name}: {text[:80]!r} is not a valid "
                f"{getattr(field.annotation, '__name__', field.annotation)}",
                column=field.name,
            ) from exc
    return out


def _convert(field: Field, text: str) -> Any:
    annotation = field.annotation
    if annotation is int:
        return int(text)
    if annotation is float:
        return float(text)
    if annotation is decimal.Decimal:
        return decimal.Decimal(text)
    if annotation is dt.datetime:
        moment = dt.datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if annotation is dt.date:
        return dt.date.fromisoformat(text)
    if field.input == "select":
        return annotation[text]
    return text


def result_names(query: Any, width: int) -> list[str]:
    """Column headings for a query's rows: its selected or returned names, else numbers."""
    names: list[str] = []
    statement = None if callable(getattr(query, "statements", None)) else query.statement
    exported = getattr(statement, "exported_columns", None)
    names = list(exported.keys()) if exported is not None else _raw_names(query.to_sql().sql)
    if width == 0:  # no rows: the names as declared
        return names
    if len(names) != width:
        names = [f"column {i}" for i in range(1, width + 1)]
    return names


def _raw_names(sql: str) -> list[str]:
    """Output names of hand-written SQL, as PostgreSQL would name them (alias or last field)."""
    try:
        stmt = pglast.parse_sql(sql.replace("%s", "NULL"))[-1].stmt
    except pglast.parser.ParseError:
        return []
    names = []
    for target in getattr(stmt, "targetList", None) or ():
        fields = getattr(target.val, "fields", None)
        if target.name:
            names.append(target.name)
        elif fields and hasattr(fields[-1], "sval"):
            names.append(fields[-1].sval)
        else:
            names.append("?column?")
    return names
