"""One table view (filters, sort, page) from the browser's query string, and its querykit queries.

The query string is the view, so a view is a link to share or reload::

    /t/pipeline_run?status.eq=FAILED&sort=-cost&after=["12.5","run07"]

- ``<column>.<op>=<value>`` filters; the operators depend on the column's kind
  (see ``ColumnInfo.ops``); values are parsed to the column's Python type and bound.
- ``sort=<column>`` or ``sort=-<column>`` (descending); the primary key breaks ties.
- ``after`` / ``before``: a keyset cursor, the sort value and key of the row
  the page starts after (or ends before). Pages never use OFFSET, so page 500
  costs what page 1 costs: an index range scan of ``PAGE_SIZE + 1`` rows.
- Sorted by a jsonb or vector column, the cursor holds the key alone: such a
  value can be 1 MB, too big for a URL, so the query reads it back with a
  subquery on the row the key names (``(SELECT c FROM t AS cursor_row WHERE id = $1)``,
  evaluated once per page) and compares against that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from .. import (
    Condition,
    SelectQuery,
    and_,
    asc,
    desc,
    eq,
    escape_like,
    gt,
    gte,
    has_key,
    ilike,
    is_not_null,
    is_null,
    json_contains,
    lt,
    lte,
    or_,
    select,
)
from ..errors import ValidationError
from .catalog import ColumnInfo, TableInfo, parse_value, value_text
from .cells import CELL_LIMIT

__all__ = ["BY_REFERENCE", "PAGE_SIZE", "Filter", "View", "parse_view"]

PAGE_SIZE = 50
BY_REFERENCE = ("json", "vector")
"""Column kinds a cursor names by row key, not by value: a value can be too big for a URL."""


@dataclass(frozen=True)
class Filter:
    """One filter of the table view: a column, an operator and the text typed."""

    column: ColumnInfo
    op: str
    text: str

    @property
    def param(self) -> str:
        """The query-parameter name of the filter: ``column.op``."""
        return f"{self.column.name}.{self.op}"

    def condition(self) -> Condition:
        """The filter as a querykit condition (values bound, never spliced into SQL)."""
        col = self.column.column
        if self.op == "contains":
            return ilike(col, f"%{escape_like(self.text)}%")
        if self.op == "has":
            return has_key(col, self.text)
        value = parse_value(self.column, self.text)
        if self.op == "json":
            return json_contains(col, value)
        if self.op == "gte":
            return gte(col, value)
        if self.op == "lte":
            return lte(col, value)
        return eq(col, value)


@dataclass(frozen=True)
class View:
    """A table view as its URL describes it: filters, sort and keyset cursor."""

    table: TableInfo
    filters: tuple[Filter, ...] = ()
    sort: ColumnInfo | None = None
    descending: bool = False
    after: tuple[str | None, ...] | None = None
    before: tuple[str | None, ...] | None = None
    page: int = 1

    # -- the keyset -------------------------------------------------------------

    @property
    def sort_by_reference(self) -> bool:
        """Whether the cursor names the row instead of carrying its sort value (big kinds)."""
        return (
            self.sort is not None
            and self.sort.kind in BY_REFERENCE
            and self.sort.name not in self.table.key
        )

    @property
    def keys(self) -> list[ColumnInfo]:
        """The ORDER BY columns: the sort column, then the primary key (each once)."""
        key_cols = [self.table.columns[name] for name in self.table.key]
        if self.sort is None:
            return key_cols
        return [self.sort, *(c for c in key_cols if c.name != self.sort.name)]

    @property
    def cursor_keys(self) -> list[ColumnInfo]:
        """The columns a cursor carries: the ORDER BY columns, or the key alone (by reference)."""
        return self.keys[1:] if self.sort_by_reference else self.keys

    def cursor_of(self, row: Mapping[str, Any]) -> str:
        """The keyset cursor of ``row``, for the next page's link."""
        return json.dumps([value_text(row[c.name]) for c in self.cursor_keys])

    # -- queries ----------------------------------------------------------------

    def where(self) -> list[Condition]:
        """The filters as conditions."""
        return [f.condition() for f in self.filters]

    def query(self) -> SelectQuery[*tuple[Any, ...]]:
        """The whole view: every column, filtered and sorted (what export streams)."""
        return select(self.table.table).where(*self.where()).order_by(*self._order(reverse=False))

    def page_query(self, *, cut: bool = False) -> SelectQuery[*tuple[Any, ...]]:
        """This page: the view after (or before) the cursor, one row more than a page.

        With ``cut``, text and jsonb columns come back as their first CELL_LIMIT
        characters and their size (``left(CAST(c AS TEXT), 1024)``,
        ``octet_length(...)``), so a 1 MB document never leaves the database
        for a table cell. The page shows the query without ``cut``: the view
        itself, as one would paste it into psql.
        """
        reverse = self.before is not None
        cursor = self.before if reverse else self.after
        conditions = self.where()
        if cursor is not None:
            conditions.append(self._beyond(cursor, reverse))
        columns: list[Any] = []
        for info in self.table.columns.values():
            columns += self.cut_columns(info) if cut and self.is_cut(info) else [info.column]
        return (
            select(*columns)
            .where(*conditions)
            .order_by(*self._order(reverse=reverse))
            .limit(PAGE_SIZE + 1)
        )

    def is_cut(self, info: ColumnInfo) -> bool:
        """Whether a page fetches only the head of this column (big kinds that no link needs)."""
        return (
            info.kind in ("text", "json")
            and info.references is None
            and info.name not in self.table.key
            and (info is not self.sort or self.sort_by_reference)
            and info.name not in self.table.parent_keys
        )

    @staticmethod
    def cut_columns(info: ColumnInfo) -> list[Any]:
        """A column cut to the cell limit, with its full size, so a huge value is not sent whole."""
        text = sa.cast(info.column, sa.Text)
        return [
            sa.func.left(text, CELL_LIMIT).label(info.name),
            sa.func.octet_length(text).label(f"{info.name}__size"),
        ]

    def _order(self, *, reverse: bool) -> list[Any]:
        descending = self.descending != reverse
        return [desc(c.column) if descending else asc(c.column) for c in self.keys]

    def _beyond(self, cursor: Sequence[str | None], reverse: bool) -> Condition:
        keys = self.cursor_keys
        if len(cursor) != len(keys):
            raise ValidationError(
                f"the page cursor has {len(cursor)} values; this view pages by "
                f"{len(keys)} columns ({', '.join(c.name for c in keys)}): start from page 1"
            )
        values = [
            None if t is None else parse_value(c, t) for c, t in zip(keys, cursor, strict=True)
        ]
        pairs = list(zip(keys, values, strict=True))
        descending = self.descending != reverse
        if self.sort is not None and self.sort_by_reference:
            return _after_row(self.sort, self._value_of(pairs), pairs, descending)
        return _after(pairs, descending)

    def _value_of(self, key: list[tuple[ColumnInfo, Any]]) -> Any:
        """``(SELECT sort FROM t WHERE key = cursor)``: the cursor row's sort value, in SQL."""
        assert self.sort is not None
        row = self.table.table.alias("cursor_row")  # its own name: never correlated to the page
        found = select(row.c[self.sort.name]).where(*(eq(row.c[c.name], v) for c, v in key))
        return found.scalar_subquery()

    # -- links ------------------------------------------------------------------

    def params(self, **changes: Any) -> str:
        """This view's query string, with some parts changed (None drops a part)."""
        items: list[tuple[str, str]] = [(f.param, f.text) for f in self.filters]
        state: dict[str, Any] = {
            "sort": (("-" if self.descending else "") + self.sort.name) if self.sort else None,
        }
        state.update(changes)
        items += [(k, str(v)) for k, v in state.items() if v is not None]
        return urlencode(items)

    def filter_value(self, column: str, op: str) -> str:
        """The text of the filter on ``column`` with ``op``, for the filter form."""
        for f in self.filters:
            if f.column.name == column and f.op == op:
                return f.text
        return ""


def _after(keys: list[tuple[ColumnInfo, Any]], descending: bool) -> Condition:
    """Rows strictly after ``keys`` in ``ORDER BY k1, k2, ...`` (ASC NULLS LAST / DESC NULLS FIRST).

    PostgreSQL's defaults: NULL sorts above every value, so it comes last going
    up and first going down; the condition follows that, so a NULL sort value
    never loses or repeats rows between pages.
    """
    (info, value), rest = keys[0], keys[1:]
    col = info.column
    beyond: Condition | None
    if value is None:
        tie: Condition = is_null(col)
        beyond = is_not_null(col) if descending else None
    else:
        tie = eq(col, value)
        beyond = lt(col, value) if descending else gt(col, value)
        if info.nullable and not descending:
            beyond = _both(or_(beyond, is_null(col)))
    if rest:
        then = _both(and_(tie, _after(rest, descending)))
        return then if beyond is None else _both(or_(beyond, then))
    if beyond is None:
        return _both(and_(is_null(col), is_not_null(col)))  # past the last NULL of a key: none
    return beyond


def _after_row(
    sort: ColumnInfo, value: Any, key: list[tuple[ColumnInfo, Any]], descending: bool
) -> Condition:
    """Rows after the cursor row when its sort value is only known to SQL (``value``).

    Whether that value is NULL is decided in SQL, so one condition covers both
    cases of ``_after`` (ASC NULLS LAST / DESC NULLS FIRST)::

        col > v                                  -- (< going down)
        OR (col = v AND key > cursor key)
        OR (col IS NULL AND v IS NOT NULL)       -- (col IS NOT NULL AND v IS NULL going down)
        OR (col IS NULL AND v IS NULL AND key > cursor key)

    ``v`` is a scalar subquery without correlation: PostgreSQL runs it once per
    page (an InitPlan), an index lookup on the primary key. A cursor row
    deleted since reads as NULL: the walk goes on from the NULLs.
    """
    col = sort.column
    rest = _after(key, descending)
    beyond = lt(col, value) if descending else gt(col, value)
    tie = and_(eq(col, value), rest)
    if not sort.nullable:
        return _both(or_(beyond, tie))
    nulls = (
        and_(is_not_null(col), is_null(value))
        if descending
        else and_(is_null(col), is_not_null(value))
    )
    return _both(or_(beyond, tie, nulls, and_(is_null(col), is_null(value), rest)))


def _both(condition: Condition | None) -> Condition:
    """and_/or_ of conditions that are all given: never None."""
    assert condition is not None
    return condition


def parse_view(table: TableInfo, params: Iterable[tuple[str, str]]) -> View:
    """The view a query string asks for; unknown columns and operators are clear errors."""
    filters: list[Filter] = []
    sort: ColumnInfo | None = None
    descending = False
    after = before = None
    page = 1
    for name, text in params:
        if name == "sort":
            if text:
                descending = text.startswith("-")
                sort = table.column(text.lstrip("-+"))
        elif name in ("after", "before"):
            cursor = _cursor(text)
            if name == "after":
                after = cursor
            else:
                before = cursor
        elif name == "page":
            page = int(text) if text.isdigit() and int(text) > 0 else 1
        elif "." in name:
            column_name, _, op = name.rpartition(".")
            info = table.column(column_name)
            if op not in info.ops:
                valid = ", ".join(info.ops) or "none"
                raise ValidationError(
                    f"filter {name}: {info.name} ({info.sql_type}) takes the operators: {valid}",
                    column=info.name,
                )
            if text.strip():
                filters.append(Filter(info, op, text))
    if not table.key and (after or before):
        raise ValidationError(f"{table.name} has no primary key, so it shows one page only")
    return View(table, tuple(filters), sort, descending, after, before, page)


def _cursor(text: str) -> tuple[str | None, ...]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list) or not all(i is None or isinstance(i, str) for i in items):
        raise ValidationError("the page cursor is not valid: start from page 1")
    return tuple(items)
