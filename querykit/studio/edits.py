"""Edits, only with ``--write``: one cell, a new row, a delete, each guarded by the row's xmin.

The UPDATE or DELETE carries ``xmin = <the version the page showed>`` in its
WHERE; zero rows changed means someone else changed the row first, and the
page says so and shows the row as it is now: never a lost update.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import (
    delete,
    eq,
    insert,
    update,
)
from ..errors import ValidationError
from .browse import row_context
from .catalog import TableInfo, parse_value, value_text
from .context import Refused, Studio, key_condition, quote_key, xmin_column

__all__ = ["delete_row", "edit_cell", "insert_form", "insert_row"]


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
    where = key_condition(table, key)
    changed = await studio.database.first(
        update(table.table)
        .set({info.column: value})
        .where(where, eq(xmin_column(), form.get("xmin", "")))
        .returning(xmin_column())
    )
    if changed is None:
        return await _conflict(studio, request, table, key, "edit")
    context = await row_context(studio, table, key)
    return studio.render(request, "row_body.html", message=f"saved {info.name}", **context)


async def _conflict(
    studio: Studio, request: Request, table: TableInfo, key: list[Any], what: str
) -> Response:
    """The row changed (or went) since the page showed it: say so, and show it as it is now."""
    try:
        context = await row_context(studio, table, key)
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
    """Delete one row by key, if it has not changed since it was shown (xmin)."""
    _writable(studio)
    table = studio.catalog.table(request.path_params["table"])
    form = {k: str(v) for k, v in (await request.form()).items()}
    key = json.loads(form.get("key", "[]"))
    gone = await studio.database.first(
        delete(table.table)
        .where(key_condition(table, key), eq(xmin_column(), form.get("xmin", "")))
        .returning(xmin_column())
    )
    if gone is None:
        return await _conflict(studio, request, table, key, "delete")
    return Response(status_code=204, headers={"hx-redirect": f"/t/{table.name}"})


async def insert_row(studio: Studio, request: Request) -> Response:
    """Insert a row from the new-row form."""
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
            status_code=204, headers={"hx-redirect": f"/t/{table.name}/row?key={quote_key(key)}"}
        )
    await studio.database.execute(query)
    return Response(status_code=204, headers={"hx-redirect": f"/t/{table.name}"})


async def insert_form(studio: Studio, request: Request) -> Response:
    """The new-row form."""
    _writable(studio)
    table = studio.catalog.table(request.path_params["table"])
    return await studio.page(request, "insert.html", title=f"new {table.name} row", table=table)
