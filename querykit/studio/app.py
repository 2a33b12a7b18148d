"""The Studio as an ASGI app: its routes, its pool's lifetime, and the guard around it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import connect_async
from ..errors import ConfigError
from ..named import load_named
from ..settings import Settings
from .browse import (
    child_counts,
    exact_count,
    export,
    full_value,
    home,
    neighbours,
    relation_count,
    row_page,
    table_page,
)
from .catalog import load_catalog
from .context import Studio, guarded, read_only_url
from .edits import delete_row, edit_cell, insert_form, insert_row
from .named_pages import named_explain, named_page, named_run
from .security import Guard

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, *, url: str, write: bool, token: str, port: int) -> Guard:
    """The Studio as an ASGI app, guarded; its pool opens when the server starts."""
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
