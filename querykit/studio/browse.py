"""Reading pages: the table list, a table view, a row, a whole value, neighbours, export."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from .. import (
    count,
    eq,
    in_array,
    json_path,
    nearest,
    select,
)
from ..codecs import json_safe
from ..errors import ValidationError
from .catalog import ColumnInfo, TableInfo, parse_value, value_text
from .cells import (
    CELL_LIMIT,
    Cell,
    cell,
    cut_cell,
    display_text,
    json_tree,
    vector_summary,
)
from .context import (
    Studio,
    json_arg,
    key_condition,
    key_of,
    quote_key,
    sql_of,
    xmin_column,
)
from .view import PAGE_SIZE, parse_view

__all__ = [
    "child_counts",
    "exact_count",
    "export",
    "full_value",
    "home",
    "neighbours",
    "relation_count",
    "row_context",
    "row_page",
    "table_page",
]


NEIGHBOURS = 10


async def home(studio: Studio, request: Request) -> Response:
    """The home page (the sidebar lists every table with its estimated row count)."""
    return await studio.page(request, "home.html", title="querykit studio")


async def table_page(studio: Studio, request: Request) -> Response:
    """A page of a table's rows, filtered and sorted, with keyset links to the next page."""
    table = studio.catalog.table(request.path_params["table"])
    view = parse_view(table, request.query_params.multi_items())
    rows, cells = [], []
    for found in await studio.database.all(view.page_query(cut=True)):
        values = iter(found)
        row: dict[str, Any] = {}
        shown: dict[str, Cell] = {}
        for name, info in table.columns.items():
            if view.is_cut(info):
                head, size = next(values), next(values)
                shown[name] = cut_cell(info.kind, head, size)
                row[name] = head
            else:
                row[name] = next(values)
                shown[name] = cell(info.kind, row[name])
        rows.append(row)
        cells.append(shown)
    more = len(rows) > PAGE_SIZE
    rows, cells = rows[:PAGE_SIZE], cells[:PAGE_SIZE]
    if view.before is not None:
        rows.reverse()
        cells.reverse()
    has_prev = view.page > 1 and (view.before is None or more)
    has_next = more if view.before is None else True
    return await studio.page(
        request,
        "table.html",
        title=table.name,
        table=table,
        view=view,
        rows=rows,
        cells=cells,
        keys=[key_of(table, r) for r in rows] if table.key else [],
        first_cursor=view.cursor_of(rows[0]) if rows and table.key else None,
        last_cursor=view.cursor_of(rows[-1]) if rows and table.key else None,
        has_prev=has_prev and bool(rows),
        has_next=has_next and bool(rows) and bool(table.key),
        sql=sql_of(view.page_query()),
        child_links=child_links(table),
    )


def child_links(table: TableInfo) -> dict[str, tuple[str, str, str]]:
    """Child relations with one key pair: name -> (child table, child column, own column)."""
    links = {}
    for name, rel in table.children.items():
        if len(rel.pairs) == 1:
            own, theirs = rel.pairs[0]
            links[name] = (rel.target.fullname, theirs.name, own.name)
    return links


async def exact_count(studio: Studio, request: Request) -> Response:
    """The exact row count of the filtered view (the page shows an estimate first)."""
    table = studio.catalog.table(request.path_params["table"])
    view = parse_view(table, request.query_params.multi_items())
    total = await studio.database.scalar(select(count()).from_(table.table).where(*view.where()))
    return HTMLResponse(f'<span class="exact" title="exact count">{total:,}</span>')


async def child_counts(studio: Studio, request: Request) -> Response:
    """Counts of one child relation for a page of parents, as out-of-band swaps."""
    table = studio.catalog.table(request.path_params["table"])
    name = request.query_params.get("rel", "")
    links = child_links(table)
    if name not in links:
        raise ValidationError(f"{table.name} has no child relation {name!r}")
    child_name, child_col, own_col = links[name]
    child = studio.catalog.table(child_name).column(child_col)
    own = table.column(own_col)
    values = [parse_value(own, v) for v in json_arg(request, "values")]
    counted = await studio.database.all(
        select(child.column, count()).where(in_array(child.column, values)).group_by(child.column)
    )
    by_value = {value_text(v): n for v, n in counted}
    spans = [
        f'<span id="rc-{name}-{i}" hx-swap-oob="innerHTML">{by_value.get(value_text(v), 0)}</span>'
        for i, v in enumerate(values)
    ]
    return HTMLResponse("".join(spans))


async def row_page(studio: Studio, request: Request) -> Response:
    """One row, every value in full."""
    table = studio.catalog.table(request.path_params["table"])
    key = json_arg(request, "key")
    return await studio.page(
        request, "row.html", title=table.name, **await row_context(studio, table, key)
    )


async def row_context(studio: Studio, table: TableInfo, key: list[Any]) -> dict[str, Any]:
    """The row of ``key`` with its xmin (for safe edits); a ValidationError when it is gone."""
    found = await studio.database.first(
        select(*table.table.columns, xmin_column()).where(key_condition(table, key))
    )
    if found is None:
        raise ValidationError(
            f"{table.name} has no row with key {json.dumps(key)}; it may be deleted"
        )
    row = dict(zip([*table.columns, "xmin"], found, strict=True))
    return {
        "table": table,
        "row": row,
        "key": json.dumps(key),
        "cells": {n: cell(table.columns[n].kind, row[n]) for n in table.columns},
        "edit_text": {n: _edit_text(table.columns[n], row[n]) for n in table.columns},
        "children": child_links(table),
        "relations": table.children,
    }


def _edit_text(info: ColumnInfo, value: Any) -> str | None:
    """The value as an edit box holds it, or None when it is too big to edit in a box."""
    if value is None:
        return ""
    if info.kind == "json":
        text = json.dumps(value, ensure_ascii=False)
    elif info.kind == "vector":
        text = json.dumps(vector_summary(value)["components"])
    else:
        text = display_text(value) if info.kind != "time" else value_text(value) or ""
    return text if len(text.encode()) <= 16 * CELL_LIMIT else None


async def relation_count(studio: Studio, request: Request) -> Response:
    """How many rows a child relation has for one row (asked lazily by the row page)."""
    table = studio.catalog.table(request.path_params["table"])
    name = request.query_params.get("rel", "")
    rel = table.children.get(name)
    if rel is None:
        raise ValidationError(f"{table.name} has no child relation {name!r}")
    found = await studio.database.first(
        select(*(own for own, _ in rel.pairs)).where(key_condition(table, json_arg(request, "key")))
    )
    if found is None:
        return HTMLResponse("0")
    total = await studio.database.scalar(
        select(count())
        .from_(rel.target)
        .where(*(eq(theirs, v) for (_, theirs), v in zip(rel.pairs, found, strict=True)))
    )
    return HTMLResponse(f"{total:,}")


async def full_value(studio: Studio, request: Request) -> Response:
    """The whole value of one cell ("show all"), or one part of a big JSON document."""
    table = studio.catalog.table(request.path_params["table"])
    info = table.column(request.query_params.get("col", ""))
    key = json_arg(request, "key")
    path = json_arg(request, "path") if "path" in request.query_params else []
    expr: Any = json_path(info.column, *path) if path else info.column
    found = await studio.database.first(select(expr).where(key_condition(table, key)))
    if found is None:
        raise ValidationError(f"{table.name} has no row with key {json.dumps(key)}")
    value = found[0]
    base = f"/t/{table.name}/value?col={info.name}&key={quote_key(json.dumps(key))}"
    if path:
        return HTMLResponse(json_tree(value, url=base, path=tuple(path)))
    return studio.render(
        request,
        "value.html",
        table=table,
        info=info,
        key=json.dumps(key),
        value=value,
        tree=json_tree(value, url=base)
        if info.kind == "json" and isinstance(value, dict | list)
        else None,
        text=json.dumps(value, ensure_ascii=False, indent=2) if info.kind == "json" else None,
        vector=vector_summary(value) if info.kind == "vector" and value is not None else None,
        plain=display_text(value) if value is not None else None,
    )


async def neighbours(studio: Studio, request: Request) -> Response:
    """The NEIGHBOURS rows nearest to this row's vector, by nearest() on the column's index metric."""
    table = studio.catalog.table(request.path_params["table"])
    info = table.column(request.query_params.get("col", ""))
    if info.kind != "vector":
        raise ValidationError(f"{table.name}.{info.name} is not a vector column")
    key = json_arg(request, "key")
    found = await studio.database.first(select(info.column).where(key_condition(table, key)))
    if found is None or found[0] is None:
        raise ValidationError(f"that {table.name} row has no {info.name} vector")
    label = next(
        (c for c in table.columns.values() if c.kind == "text" and not c.primary_key), None
    )
    shown = [table.columns[n].column for n in table.key] + ([label.column] if label else [])
    query = nearest(info.column, found[0], NEIGHBOURS, columns=shown, metric=info.metric)
    rows = await studio.database.all(query)
    items = [
        {
            "key": json.dumps([value_text(v) for v in r[: len(table.key)]]),
            "label": display_text(r[len(table.key)])[:120] if label else "",
            "distance": r[-1],
        }
        for r in rows
    ]
    return studio.render(
        request,
        "nearest.html",
        table=table,
        info=info,
        key=json.dumps(key),
        items=items,
        label=label,
        sql=sql_of(query),
    )


async def export(studio: Studio, request: Request) -> Response:
    """The whole view (not only the page) as CSV or JSON Lines, streamed from a server cursor."""
    table = studio.catalog.table(request.path_params["table"])
    fmt = request.path_params["fmt"]
    if fmt not in ("csv", "jsonl"):
        raise ValidationError(f"export as {fmt!r}: use export.csv or export.jsonl")
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("after", "before")]
    view = parse_view(table, params)
    query = view.query()
    names = list(table.columns)

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if fmt == "csv":
            writer.writerow(names)
        async with contextlib.aclosing(studio.database.stream(query)) as rows:
            async for row in rows:
                if fmt == "csv":
                    writer.writerow(
                        [_csv_value(table.columns[n], v) for n, v in zip(names, row, strict=True)]
                    )
                else:
                    buffer.write(
                        json.dumps(
                            dict(zip(names, map(_jsonable, row), strict=True)), ensure_ascii=False
                        )
                        + "\n"
                    )
                if buffer.tell() > 65536:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    filename = f"{table.name}.{'csv' if fmt == 'csv' else 'jsonl'}"
    return StreamingResponse(
        lines(),
        media_type=f"{media}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _csv_value(info: ColumnInfo, value: Any) -> str:
    if value is None:
        return ""
    if info.kind in ("json", "vector"):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    return display_text(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_list"):
        return [float(x) for x in value.to_list()]
    return json_safe(value)
