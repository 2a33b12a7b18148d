"""Named query pages: the SQL, a form typed from the signature, Run and EXPLAIN ANALYZE."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import (
    CompoundQuery,
    NestedQuery,
    RawQuery,
    SelectQuery,
)
from ..errors import QueryKitError, ValidationError
from ..named import NamedQuery, explain, statements_of
from .cells import cell, kind_of_value
from .context import Studio, read_only_url, sql_of
from .named_form import arguments, fields_of, result_names

__all__ = ["named_explain", "named_page", "named_run"]


def _named(studio: Studio, target: str) -> NamedQuery:
    for named in studio.named:
        if named.target == target:
            return named
    names = ", ".join(n.target for n in studio.named) or "none"
    raise ValidationError(f"no named query {target!r}; the named queries are: {names}")


async def named_page(studio: Studio, request: Request) -> Response:
    """A named query's page: its SQL and the form for its parameters."""
    named = _named(studio, request.path_params["target"])
    return await studio.page(
        request,
        "named.html",
        title=named.target,
        named=named,
        fields=fields_of(named),
        sql=sql_of(named.query),
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
    """Run a named query with the form's values and show its rows, or the rowcount of a write."""
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
        sql=sql_of(query),
    )


def _returns_rows(query: Any) -> bool:
    if isinstance(query, RawQuery | NestedQuery | SelectQuery | CompoundQuery):
        return True
    return bool(list(getattr(query.statement, "exported_columns", ())))


async def named_explain(studio: Studio, request: Request) -> Response:
    """EXPLAIN a named query with the form's values."""
    named = _named(studio, request.path_params["target"])
    query = await _built(named, request)
    url = studio.url if studio.write else read_only_url(studio.url)
    plans = [
        await run_in_threadpool(explain, url, compiled, analyze=True)
        for compiled in statements_of(query)
    ]
    return studio.render(request, "plan.html", plans=plans, sql=sql_of(query))
