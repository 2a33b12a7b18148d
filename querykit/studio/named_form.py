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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..named import NamedQuery, convert_argument, result_names, unwrap_optional

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


def _field(p: inspect.Parameter) -> Field:
    annotation, optional = unwrap_optional(p.annotation)
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
    if field.input == "text":  # a str, or a type the form has no input for: the text as typed
        return text
    return convert_argument(field.annotation, text)
