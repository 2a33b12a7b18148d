"""The Studio's pages: tables, rows, values, neighbours, named queries, export and edits.

Each handler parses what the browser sent against the catalog, builds its SQL
with querykit's builders and runs it on one async pool. Without ``write`` the
pool's connections are read-only (``default_transaction_read_only``) and the
edit routes refuse; errors become a message in the page, never a traceback.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import (
    AsyncDatabase,
    CompoundQuery,
    NestedQuery,
    RawQuery,
    SelectQuery,
    and_,
    connect_async,
    count,
    delete,
    eq,
    in_array,
    insert,
    json_path,
    nearest,
    raw,
    select,
    update,
)
from ..codecs import json_safe
from ..errors import ConfigError, QueryKitError, ValidationError
from ..named import NamedQuery, explain, format_params, load_named, statements_of
from ..settings import Settings, mask_secrets
from .catalog import Catalog, ColumnInfo, TableInfo, parse_value, value_text
from .cells import (
    CELL_LIMIT,
    Cell,
    cell,
    cut_cell,
    display_text,
    human_size,
    json_tree,
    kind_of_value,
    vector_summary,
)
from .named_form import arguments, fields_of, result_names
from .security import CSRF_HEADER, Guard
from .view import PAGE_SIZE, parse_view

__all__ = ["Studio", "create_app", "read_only_url"]

log = logging.getLogger("querykit.studio")
NEIGHBOURS = 10
STATIC = Path(__file__).parent / "static"


def read_only_url(url: str) -> str:
    """``url`` with every session read-only: a write fails in PostgreSQL itself."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    options = str(info.get("options") or "")
    return psycopg.conninfo.make_conninfo(
        url, options=f"{options} -c default_transaction_read_only=on".strip()
    )


class Refused(QueryKitError):
    """An edit asked of a read-only Studio (no page offers one: the request was forged)."""


@dataclass
class Studio:
    settings: Settings
    url: str
    write: bool
    catalog: Catalog
    named: list[NamedQuery] = field(default_factory=list)
    named_error: str | None = None
    db: AsyncDatabase | None = None
    env: Environment = field(
        default_factory=lambda: Environment(
            loader=PackageLoader("querykit.studio", "templates"),
            autoescape=select_autoescape(["html"]),
        )
    )

    def __post_init__(self) -> None:
        self.env.filters["fromjson"] = json.loads
        self.env.globals.update(
            studio=self,
            human_size=human_size,
            CELL_LIMIT=CELL_LIMIT,
            PAGE_SIZE=PAGE_SIZE,
            csrf_header=CSRF_HEADER,
        )

    @property
    def database(self) -> AsyncDatabase:
        assert self.db is not None, "the Studio's pool opens with the app"
        return self.db

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        csrf = request.scope.get("state", {}).get("csrf", "")
        html = self.env.get_template(name).render(request=request, csrf=csrf, **context)
        return HTMLResponse(html, status_code=status)

    # -- the sidebar -----------------------------------------------------------------

    async def estimates(self) -> dict[str, int | None]:
        """Row counts from the planner's statistics: instant, and close after ANALYZE."""
        rows = await self.database.all(
            raw(
                """
                SELECT CASE WHEN n.nspname = 'public' THEN c.relname
                            ELSE n.nspname || '.' || c.relname END,
                       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
                            ELSE s.n_live_tup END
                FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
                WHERE c.relkind IN ('r', 'p')
                """
            ).returns(str, int)
        )
        found: dict[str, int | None] = dict.fromkeys(self.catalog.tables)
        for name, estimate in rows:
            if name in found:
                found[name] = estimate
        return found

    async def page(self, request: Request, name: str, **context: Any) -> Response:
        return self.render(request, name, estimates=await self.estimates(), **context)


# -- handlers -----------------------------------------------------------------------------

Handler = Callable[[Studio, Request], Awaitable[Response]]


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Errors as a message in the page (full or fragment), never a traceback."""

    async def endpoint(request: Request) -> Response:
        studio: Studio = request.app.state.studio
        try:
            return await handler(studio, request)
        except Refused as exc:
            return studio.render(request, "message.html", 403, message=str(exc), kind="error")
        except QueryKitError as exc:
            message = mask_secrets(str(exc), studio.url)
            return studio.render(request, "message.html", 400, message=message, kind="error")
        except Exception as exc:  # a bug, or what the Studio did not foresee: one line
            log.exception("studio: %s %s", request.method, request.url.path)
            message = mask_secrets(f"unexpected {type(exc).__name__}: {exc}", studio.url)
            return studio.render(request, "message.html", 500, message=message, kind="error")

    return endpoint


def _json_arg(request: Request, name: str) -> list[Any]:
    text = request.query_params.get(name, "")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list):
        raise ValidationError(f"the {name!r} parameter must be a JSON list, got {text[:80]!r}")
    return value


def _key_condition(table: TableInfo, key: list[Any]) -> Any:
    """The WHERE of one row: its primary key, from the key's text values."""
    if not table.key:
        raise ValidationError(f"{table.name} has no primary key, so its rows cannot be opened")
    if len(key) != len(table.key) or not all(isinstance(k, str) for k in key):
        raise ValidationError(f"a {table.name} key is {len(table.key)} text value(s)")
    infos = [table.columns[n] for n in table.key]
    return and_(*(eq(c.column, parse_value(c, k)) for c, k in zip(infos, key, strict=True)))


def _key_of(table: TableInfo, row: dict[str, Any]) -> str:
    return json.dumps([value_text(row[n]) for n in table.key])


def _xmin() -> Any:
    """The row version PostgreSQL keeps in every row: the optimistic-concurrency token."""
    return sa.cast(sa.literal_column("xmin"), sa.Text).label("xmin")


def _sql_of(query: Any) -> dict[str, Any]:
    """SQL as ``querykit sql`` prints it: pretty with $n, the parameters, and inline."""
    compiled = statements_of(query)[0]
    params = [json_safe(p) for p in compiled.params]
    return {
        "pretty": compiled.pretty(),
        "params": format_params(params) if params else "",
        "inline": compiled.script() if compiled.settings else compiled.inline() + ";",
    }


async def home(studio: Studio, request: Request) -> Response:
    return await studio.page(request, "home.html", title="querykit studio")


async def table_page(studio: Studio, request: Request) -> Response:
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
        keys=[_key_of(table, r) for r in rows] if table.key else [],
        first_cursor=view.cursor_of(rows[0]) if rows and table.key else None,
        last_cursor=view.cursor_of(rows[-1]) if rows and table.key else None,
        has_prev=has_prev and bool(rows),
        has_next=has_next and bool(rows) and bool(table.key),
        sql=_sql_of(view.page_query()),
        child_links=_child_links(table),
    )


def _child_links(table: TableInfo) -> dict[str, tuple[str, str, str]]:
    """Child relations with one key pair: name -> (child table, child column, own column)."""
    links = {}
    for name, rel in table.children.items():
        if len(rel.pairs) == 1:
            own, theirs = rel.pairs[0]
            links[name] = (rel.target.fullname, theirs.name, own.name)
    return links


async def exact_count(studio: Studio, request: Request) -> Response:
    table = studio.catalog.table(request.path_params["table"])
    view = parse_view(table, request.query_params.multi_items())
    total = await studio.database.scalar(select(count()).from_(table.table).where(*view.where()))
    return HTMLResponse(f'<span class="exact" title="exact count">{total:,}</span>')


async def child_counts(studio: Studio, request: Request) -> Response:
    """Counts of one child relation for a page of parents, as out-of-band swaps."""
    table = studio.catalog.table(request.path_params["table"])
    name = request.query_params.get("rel", "")
    links = _child_links(table)
    if name not in links:
        raise ValidationError(f"{table.name} has no child relation {name!r}")
    child_name, child_col, own_col = links[name]
    child = studio.catalog.table(child_name).column(child_col)
    own = table.column(own_col)
    values = [parse_value(own, v) for v in _json_arg(request, "values")]
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
    table = studio.catalog.table(request.path_params["table"])
    key = _json_arg(request, "key")
    return await studio.page(
        request, "row.html", title=table.name, **await _row(studio, table, key)
    )


async def _row(studio: Studio, table: TableInfo, key: list[Any]) -> dict[str, Any]:
    found = await studio.database.first(
        select(*table.table.columns, _xmin()).where(_key_condition(table, key))
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
        "children": _child_links(table),
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
        select(*(own for own, _ in rel.pairs)).where(
            _key_condition(table, _json_arg(request, "key"))
        )
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
    key = _json_arg(request, "key")
    path = _json_arg(request, "path") if "path" in request.query_params else []
    expr: Any = json_path(info.column, *path) if path else info.column
    found = await studio.database.first(select(expr).where(_key_condition(table, key)))
    if found is None:
        raise ValidationError(f"{table.name} has no row with key {json.dumps(key)}")
    value = found[0]
    base = f"/t/{table.name}/value?col={info.name}&key={_q(json.dumps(key))}"
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


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


async def neighbours(studio: Studio, request: Request) -> Response:
    """The NEIGHBOURS rows nearest to this row's vector, by nearest() on the column's index metric."""
    table = studio.catalog.table(request.path_params["table"])
    info = table.column(request.query_params.get("col", ""))
    if info.kind != "vector":
        raise ValidationError(f"{table.name}.{info.name} is not a vector column")
    key = _json_arg(request, "key")
    found = await studio.database.first(select(info.column).where(_key_condition(table, key)))
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
        sql=_sql_of(query),
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


# -- named queries -------------------------------------------------------------------------


def _named(studio: Studio, target: str) -> NamedQuery:
    for named in studio.named:
        if named.target == target:
            return named
    names = ", ".join(n.target for n in studio.named) or "none"
    raise ValidationError(f"no named query {target!r}; the named queries are: {names}")


async def named_page(studio: Studio, request: Request) -> Response:
    named = _named(studio, request.path_params["target"])
    return await studio.page(
        request,
        "named.html",
        title=named.target,
        named=named,
        fields=fields_of(named),
        sql=_sql_of(named.query),
    )


async def _built(named: NamedQuery, request: Request) -> Any:
    form = {k: str(v) for k, v in (await request.form()).items()}
    if named.factory is None:
        return named.query
    args = arguments(named, form)
    try:
        return named.factory(**args)
    except QueryKitError:
        raise
    except Exception as exc:  # the user's function refused the arguments
        raise ValidationError(f"{named.target} raised {type(exc).__name__}: {exc}") from exc


async def named_run(studio: Studio, request: Request) -> Response:
    named = _named(studio, request.path_params["target"])
    query = await _built(named, request)
    started = time.perf_counter()
    if _returns_rows(query):
        rows = await studio.database.all(query)
        written = None
    else:
        rows, written = [], await studio.database.execute(query)
    elapsed = (time.perf_counter() - started) * 1000
    if rows and isinstance(rows[0], dict):
        names = list(rows[0])
        values = [list(r.values()) for r in rows]
    else:
        values = [list(r) for r in rows]
        names = result_names(query, len(values[0]) if values else 0)
    return studio.render(
        request,
        "results.html",
        names=names,
        rows=[[cell(kind_of_value(v), v) for v in r] for r in values],
        written=written,
        elapsed=f"{elapsed:.1f}",
        sql=_sql_of(query),
    )


def _returns_rows(query: Any) -> bool:
    if isinstance(query, RawQuery | NestedQuery | SelectQuery | CompoundQuery):
        return True
    return bool(list(getattr(query.statement, "exported_columns", ())))


async def named_explain(studio: Studio, request: Request) -> Response:
    named = _named(studio, request.path_params["target"])
    query = await _built(named, request)
    url = studio.url if studio.write else read_only_url(studio.url)
    plans = [
        await run_in_threadpool(explain, url, compiled, analyze=True)
        for compiled in statements_of(query)
    ]
    return studio.render(request, "plan.html", plans=plans, sql=_sql_of(query))


# -- edits (only with --write) ---------------------------------------------------------------


def _writable(studio: Studio) -> None:
    if not studio.write:
        raise Refused("this Studio is read-only: start it with querykit studio --write to edit")


async def edit_cell(studio: Studio, request: Request) -> Response:
    """UPDATE one cell WHERE key AND xmin = the version the page showed: no lost update."""
    _writable(studio)
    table = studio.catalog.table(request.path_params["table"])
    form = {k: str(v) for k, v in (await request.form()).items()}
    info = table.column(form.get("col", ""))
    key = json.loads(form.get("key", "[]"))
    text = form.get("value", "")
    value = None if (info.nullable and form.get("null")) else parse_value(info, text)
    where = _key_condition(table, key)
    changed = await studio.database.first(
        update(table.table)
        .set({info.column: value})
        .where(where, eq(_xmin(), form.get("xmin", "")))
        .returning(_xmin())
    )
    if changed is None:
        return await _conflict(studio, request, table, key, "edit")
    context = await _row(studio, table, key)
    return studio.render(request, "row_body.html", message=f"saved {info.name}", **context)


async def _conflict(
    studio: Studio, request: Request, table: TableInfo, key: list[Any], what: str
) -> Response:
    """The row changed (or went) since the page showed it: say so, and show it as it is now."""
    try:
        context = await _row(studio, table, key)
    except ValidationError:
        raise ValidationError(
            f"conflict: this {table.name} row was deleted since you opened it; "
            f"your {what} was not applied"
        ) from None
    error = (
        f"conflict: this {table.name} row was changed by someone else since you opened it; "
        f"your {what} was not applied. Below is the row as it is now: check it, then try again."
    )
    return studio.render(request, "row_body.html", 409, error=error, **context)


async def delete_row(studio: Studio, request: Request) -> Response:
    _writable(studio)
    table = studio.catalog.table(request.path_params["table"])
    form = {k: str(v) for k, v in (await request.form()).items()}
    key = json.loads(form.get("key", "[]"))
    gone = await studio.database.first(
        delete(table.table)
        .where(_key_condition(table, key), eq(_xmin(), form.get("xmin", "")))
        .returning(_xmin())
    )
    if gone is None:
        return await _conflict(studio, request, table, key, "delete")
    return Response(status_code=204, headers={"hx-redirect": f"/t/{table.name}"})


async def insert_row(studio: Studio, request: Request) -> Response:
    _writable(studio)
    table = studio.catalog.table(request.path_params["table"])
    form = {k: str(v) for k, v in (await request.form()).items()}
    values = {
        info.column: parse_value(info, form[name])
        for name, info in table.columns.items()
        if form.get(name, "") != ""
    }
    if not values:
        raise ValidationError("fill in at least one column (blank ones take their defaults)")
    query = insert(table.table).values(values)
    if table.key:
        found = await studio.database.first(
            query.returning(*(table.columns[n].column for n in table.key))
        )
        key = json.dumps([value_text(v) for v in found or ()])
        return Response(
            status_code=204, headers={"hx-redirect": f"/t/{table.name}/row?key={_q(key)}"}
        )
    await studio.database.execute(query)
    return Response(status_code=204, headers={"hx-redirect": f"/t/{table.name}"})


async def insert_form(studio: Studio, request: Request) -> Response:
    _writable(studio)
    table = studio.catalog.table(request.path_params["table"])
    return await studio.page(request, "insert.html", title=f"new {table.name} row", table=table)


# -- the app ---------------------------------------------------------------------------------


def create_app(settings: Settings, *, url: str, write: bool, token: str, port: int) -> Guard:
    """The Studio as an ASGI app, guarded; its pool opens when the server starts."""
    from .catalog import load_catalog

    catalog = load_catalog(settings, url)
    studio = Studio(settings, url, write, catalog)
    if settings.queries:
        try:
            studio.named = load_named(None, settings)
        except ConfigError as exc:
            studio.named_error = str(exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        studio.db = await connect_async(
            url if write else read_only_url(url), min_size=1, max_size=4
        )
        try:
            yield
        finally:
            await studio.db.close()

    routes = [
        Route("/", guarded(home)),
        Route("/t/{table}", guarded(table_page)),
        Route("/t/{table}/count", guarded(exact_count)),
        Route("/t/{table}/children", guarded(child_counts)),
        Route("/t/{table}/row", guarded(row_page)),
        Route("/t/{table}/relcount", guarded(relation_count)),
        Route("/t/{table}/value", guarded(full_value)),
        Route("/t/{table}/nearest", guarded(neighbours)),
        Route("/t/{table}/export.{fmt}", guarded(export)),
        Route("/t/{table}/new", guarded(insert_form)),
        Route("/t/{table}/edit", guarded(edit_cell), methods=["POST"]),
        Route("/t/{table}/insert", guarded(insert_row), methods=["POST"]),
        Route("/t/{table}/delete", guarded(delete_row), methods=["POST"]),
        Route("/q/{target}", guarded(named_page)),
        Route("/q/{target}/run", guarded(named_run), methods=["POST"]),
        Route("/q/{target}/explain", guarded(named_explain), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.studio = studio
    return Guard(app, token=token, port=port)
