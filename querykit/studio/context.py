"""The running Studio: its catalog, pool and templates, and what every page handler shares.

Handlers take the ``Studio`` and the request; ``guarded`` turns their errors
into a message in the page. Keys travel as JSON lists of text values and are
parsed against the catalog (``key_condition``), never pasted into SQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
import psycopg.conninfo
import sqlalchemy as sa
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .. import (
    AsyncDatabase,
    and_,
    eq,
    raw,
)
from ..codecs import json_safe
from ..errors import QueryKitError, ValidationError
from ..named import NamedQuery, format_params, statements_of
from ..settings import Settings, mask_secrets
from .catalog import Catalog, TableInfo, parse_value, value_text
from .cells import CELL_LIMIT, human_size
from .security import CSRF_HEADER
from .view import PAGE_SIZE

__all__ = [
    "Refused",
    "Studio",
    "guarded",
    "json_arg",
    "key_condition",
    "key_of",
    "quote_key",
    "read_only_url",
    "sql_of",
    "xmin_column",
]


log = logging.getLogger("querykit.studio")


def read_only_url(url: str) -> str:
    """``url`` with every session read-only: a write fails in PostgreSQL itself."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    options = str(info.get("options") or "")
    return psycopg.conninfo.make_conninfo(
        url, options=f"{options} -c default_transaction_read_only=on".strip()
    )


class Refused(QueryKitError):
    """An edit asked of a read-only Studio (no page offers one: the request was forged)."""

    code = "qk-E021"


@dataclass
class Studio:
    """The running Studio: settings, catalog, named queries, pool and templates."""

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
        self.env.filters["keytext"] = value_text  # a key value as the URL carries it
        self.env.globals.update(
            studio=self,
            human_size=human_size,
            CELL_LIMIT=CELL_LIMIT,
            PAGE_SIZE=PAGE_SIZE,
            csrf_header=CSRF_HEADER,
        )

    @property
    def database(self) -> AsyncDatabase:
        """The Studio's pool (open while the app runs)."""
        assert self.db is not None, "the Studio's pool opens with the app"
        return self.db

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """Render template ``name`` with the request's CSRF token."""
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
        """Render a full page (with the table list's estimates for the sidebar)."""
        return self.render(request, name, estimates=await self.estimates(), **context)


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


def json_arg(request: Request, name: str) -> list[Any]:
    """The JSON list in query parameter ``name``; a ValidationError when it is not one."""
    text = request.query_params.get(name, "")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list):
        raise ValidationError(f"the {name!r} parameter must be a JSON list, got {text[:80]!r}")
    return value


def key_condition(table: TableInfo, key: list[Any]) -> Any:
    """The WHERE of one row: its primary key, from the key's text values."""
    if not table.key:
        raise ValidationError(f"{table.name} has no primary key, so its rows cannot be opened")
    if len(key) != len(table.key) or not all(isinstance(k, str) for k in key):
        raise ValidationError(f"a {table.name} key is {len(table.key)} text value(s)")
    infos = [table.columns[n] for n in table.key]
    return and_(*(eq(c.column, parse_value(c, k)) for c, k in zip(infos, key, strict=True)))


def key_of(table: TableInfo, row: dict[str, Any]) -> str:
    """The primary key of ``row`` as the JSON text links carry."""
    return json.dumps([value_text(row[n]) for n in table.key])


def xmin_column() -> Any:
    """The row version PostgreSQL keeps in every row: the optimistic-concurrency token."""
    return sa.cast(sa.literal_column("xmin"), sa.Text).label("xmin")


def sql_of(query: Any) -> dict[str, Any]:
    """SQL as ``querykit sql`` prints it: pretty with $n, the parameters, and inline."""
    compiled = statements_of(query)[0]
    params = [json_safe(p) for p in compiled.params]
    return {
        "pretty": compiled.pretty(),
        "params": format_params(params) if params else "",
        "inline": compiled.script() if compiled.settings else compiled.inline() + ";",
    }


def quote_key(text: str) -> str:
    """A JSON key list as one query-string value."""
    return quote(text, safe="")
