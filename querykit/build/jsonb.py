"""JSONB: containment, key tests, paths, updates and GIN indexes.

    >>> select(ctx.c.id, json_path_text(ctx.c.context, "user", "name")).where(
    ...     json_contains(ctx.c.context, {"channel": "web"}), has_key(ctx.c.context, "user"))
    SELECT agent_context.id, agent_context.context #>> %s AS anon_1
    FROM agent_context
    WHERE agent_context.context @> %s AND agent_context.context ? %s

Keys, paths and values are always bound parameters, never SQL text: a key
holding quotes, ``--`` or ``$$`` is just a key. Paths go as one ``text[]``
parameter (``#>``, ``#>>``), single keys as one text or int parameter (``->``,
``->>``); an int is an array index (negative counts from the end). PostgreSQL
text cannot hold NUL, so a key with ``"\\x00"`` is a ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Final, Literal, TypeVar, cast, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from ..columns import JSONBPayload
from ..errors import CompileError, SchemaError
from ..schema.indexes import build_index, table_column
from ..schema.naming import column_label
from .binding import Binder, operand_core, operand_key, type_of
from .operators import Condition

__all__ = [
    "has_all_keys",
    "has_any_key",
    "has_key",
    "json_contained",
    "json_contains",
    "json_path",
    "json_path_text",
    "json_set",
    "jsonb_index",
]

T = TypeVar("T")

PathElement = str | int

_JSONB: Final = postgresql.JSONB()
_TEXT: Final = sa.Text()
_TEXT_ARRAY: Final = sa.ARRAY(sa.Text())


def _check_jsonb(column: Any, what: str) -> None:
    t = type_of(column)
    if isinstance(t, sa.TypeDecorator):
        t = t.impl_instance
    if not isinstance(t, postgresql.JSONB):
        raise SchemaError(
            f"{what} needs a jsonb column; {column_label(column)} is "
            f"{t if t is not None else type(column).__name__}",
            column=column_label(column),
        )


def _path(path: Sequence[Any], what: str) -> list[PathElement]:
    if not path:
        raise CompileError(f"{what} needs at least one key or index")
    out: list[PathElement] = []
    for element in path:
        if isinstance(element, bool) or not isinstance(element, str | int):
            raise CompileError(
                f"{what}: a path element is a str key or an int index, got {element!r}"
            )
        out.append(element)
    return out


def _keys(keys: Any, what: str) -> list[str]:
    if isinstance(keys, str) or not isinstance(keys, Sequence) or not keys:
        raise CompileError(f"{what} takes a non-empty list of keys, got {keys!r}")
    for key in keys:
        if not isinstance(key, str):
            raise CompileError(f"{what}: keys are str, got {key!r}")
    return list(keys)


# -- conditions ---------------------------------------------------------------------


class _JsonTest(Condition):
    """``column <op> %s``: containment (value bound as jsonb) and key tests (text, text[])."""

    __slots__ = ("column", "op", "value")

    def __init__(self, column: Any, op: str, value: Any) -> None:
        self.column, self.op, self.value = column, op, value

    def _key(self, values: list[Any]) -> Hashable:
        return ("jsonb", self.op, operand_key(self.column, values), operand_key(self.value, values))

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        column = operand_core(self.column, binder, None, "")
        value = operand_core(self.value, binder, _OPERAND_TYPES[self.op], column_label(self.column))
        return column.op(self.op, is_comparison=True)(value)  # type: ignore[no-any-return]


_OPERAND_TYPES: Final[dict[str, sa.types.TypeEngine[Any]]] = {
    "@>": _JSONB,
    "<@": _JSONB,
    "?": _TEXT,
    "?|": _TEXT_ARRAY,
    "?&": _TEXT_ARRAY,
}


def json_contains(column: ColumnElement[Any], value: Any) -> Condition:
    """``column @> value``: the document contains ``value`` (a dict, list or scalar, bound as jsonb).

    A GIN index on the column serves it (:func:`jsonb_index`, either operator class).

        >>> json_contains(run.c.metadata, {"tags": ["nightly"]})   # metadata @> %s
    """
    _check_jsonb(column, "json_contains()")
    if value is None:
        raise CompileError(
            "json_contains() needs a value; for JSON null pass psycopg's Jsonb(None)"
        )
    return _JsonTest(column, "@>", value)


def json_contained(column: ColumnElement[Any], value: Any) -> Condition:
    """``column <@ value``: every key and element of the document appears in ``value``."""
    _check_jsonb(column, "json_contained()")
    if value is None:
        raise CompileError("json_contained() needs a value, not None")
    return _JsonTest(column, "<@", value)


def has_key(column: ColumnElement[Any], key: str) -> Condition:
    """``column ? key``: ``key`` is a top-level key (or a string element of a top-level array).

    A GIN index serves it only with the default ``jsonb_ops`` operator class.
    """
    _check_jsonb(column, "has_key()")
    if not isinstance(key, str):
        raise CompileError(f"has_key() takes a str key, got {key!r}")
    return _JsonTest(column, "?", key)


def has_any_key(column: ColumnElement[Any], keys: Sequence[str]) -> Condition:
    """``column ?| keys``: at least one of ``keys`` is a top-level key."""
    _check_jsonb(column, "has_any_key()")
    return _JsonTest(column, "?|", _keys(keys, "has_any_key()"))


def has_all_keys(column: ColumnElement[Any], keys: Sequence[str]) -> Condition:
    """``column ?& keys``: every one of ``keys`` is a top-level key."""
    _check_jsonb(column, "has_all_keys()")
    return _JsonTest(column, "?&", _keys(keys, "has_all_keys()"))


# -- paths ----------------------------------------------------------------------------


def _path_operand(column: Any, path: list[PathElement]) -> tuple[bool, BindParameter[Any]]:
    """(single, parameter): one key or index alone, or the whole path as one text[]."""
    label = column_label(column)
    if len(path) == 1:
        element = path[0]
        type_: sa.types.TypeEngine[Any] = sa.Integer() if isinstance(element, int) else _TEXT
        return True, BindParameter(label, element, type_=type_, unique=True)
    return False, BindParameter(label, [str(p) for p in path], type_=_TEXT_ARRAY, unique=True)


@overload
def json_path(column: ColumnElement[Any], *path: PathElement) -> ColumnElement[Any]: ...
@overload
def json_path(
    column: ColumnElement[Any], *path: PathElement, returns: type[T]
) -> ColumnElement[T | None]: ...
def json_path(
    column: ColumnElement[Any], *path: PathElement, returns: type[Any] | None = None
) -> ColumnElement[Any]:
    """The JSON value at ``path``: ``column -> %s`` for one step, ``column #> %s`` for several.

    It is jsonb (None where the path is missing). ``returns`` declares the
    Python type found there, for the type checker and the decoder (a dataclass
    is built from the JSON object):

        >>> json_path(run.c.metadata, "usage", "tokens", returns=int)   # ColumnElement[int | None]
        >>> # pipeline_run.metadata #> %s    with ['usage', 'tokens']

    Compared with a value (``eq(json_path(...), 5)``), the value is bound as jsonb.
    """
    _check_jsonb(column, "json_path()")
    single, operand = _path_operand(column, _path(path, "json_path()"))
    type_: sa.types.TypeEngine[Any] = _JSONB if returns is None else JSONBPayload(returns)
    return column.op("->" if single else "#>", return_type=type_)(operand)


def json_path_text(column: ColumnElement[Any], *path: PathElement) -> ColumnElement[str | None]:
    """The value at ``path`` as text: ``column ->> %s`` or ``column #>> %s``.

    Strings come back unquoted; numbers, booleans and objects as their JSON
    text; None where the path is missing or holds JSON null.
    """
    _check_jsonb(column, "json_path_text()")
    single, operand = _path_operand(column, _path(path, "json_path_text()"))
    result = column.op("->>" if single else "#>>", return_type=_TEXT)(operand)
    return cast(ColumnElement[str | None], result)


def json_set(
    column: ColumnElement[T],
    path: str | Sequence[PathElement],
    value: Any,
    *,
    create_missing: bool = True,
) -> ColumnElement[T]:
    """``jsonb_set(column, path, value, create_missing)``: the document with ``path`` set.

    For updates, the change made on the server without reading the row first:

        >>> update(ctx).set(context=json_set(ctx.c.context, ["user", "name"], "Ada")).where(
        ...     eq(ctx.c.id, 7)
        ... )
        >>> # SET context=jsonb_set(agent_context.context, %s, %s, true) WHERE agent_context.id = %s

    ``value`` is bound as jsonb. With ``create_missing=False`` a missing key is
    left missing. Intermediate objects are never created: set the parent first.
    """
    _check_jsonb(column, "json_set()")
    elements = _path([path] if isinstance(path, str) else list(path), "json_set()")
    label = column_label(column)
    path_param = BindParameter(label, [str(p) for p in elements], type_=_TEXT_ARRAY, unique=True)
    value_param = BindParameter(label, value, type_=_JSONB, unique=True)
    flag = sa.true() if create_missing else sa.false()
    result: ColumnElement[T] = sa.func.jsonb_set(
        column, path_param, value_param, flag, type_=column.type
    )
    return result


# -- indexes ------------------------------------------------------------------------------

JsonbOps = Literal["jsonb_path_ops", "jsonb_ops"]


def jsonb_index(
    column: ColumnElement[Any], *, ops: JsonbOps = "jsonb_path_ops", name: str | None = None
) -> sa.Index:
    """A GIN index on a jsonb column.

    ``jsonb_path_ops`` (the default) is smaller and faster, and serves ``@>``
    (:func:`json_contains`) and jsonpath matches; ``jsonb_ops`` also serves the
    key tests (:func:`has_key`, :func:`has_any_key`, :func:`has_all_keys`).

        >>> index_sql(jsonb_index(ctx.c.context))
        'CREATE INDEX agent_context_context_gin_path_idx ON agent_context
         USING gin (context jsonb_path_ops)'
    """
    col = table_column(column, "jsonb_index()")
    _check_jsonb(col, "jsonb_index()")
    if ops not in ("jsonb_path_ops", "jsonb_ops"):
        raise CompileError(f"ops must be 'jsonb_path_ops' or 'jsonb_ops', got {ops!r}")
    suffix = "gin_path" if ops == "jsonb_path_ops" else "gin"
    return build_index(
        col,
        method="gin",
        opclass=ops,
        options={},
        name=name,
        suffix=suffix,
        what="jsonb_index()",
    )
