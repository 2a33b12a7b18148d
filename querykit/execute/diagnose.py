"""Translating psycopg errors into the querykit error tree, with advice.

A server error becomes a :class:`~querykit.errors.DatabaseError` subclass that keeps
the SQLSTATE, names the statement (an excerpt, never its values) and says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from ..build.placeholder import Placeholder
from ..errors import (
    CompileError,
    DatabaseError,
)

# What to do, for the SQLSTATEs where the server's own message does not say it.
_ADVICE = {
    "40001": "the transaction conflicted with a concurrent one: run it again "
    "(db.transaction(retries=N) does that for you)",
    "40P01": "a deadlock was detected: run the transaction again, and take locks "
    "in the same order everywhere (db.transaction(retries=N) retries it)",
    "57014": "the statement was cancelled (statement_timeout, or a cancel request)",
    "57P01": "the server terminated the connection (an administrator, a restart, or "
    "pg_terminate_backend); the pool replaces it: run the statement again",
    "57P02": "the server is shutting down or crashed; the pool reconnects when it is back",
    "57P03": "the server is starting up or shutting down; try again shortly",
    "25006": "the transaction is read-only (readonly=True, or a read replica)",
    "42P01": "check the table name, and that migrations ran on this database",
    "42703": "check the column name against the table in this database (migrations?)",
}
_LOST = "the connection to the server was lost; the pool replaces it: run the statement again"
_STALE_PLAN = (
    "this connection prepared the statement before a column's type changed (a migration "
    "ran ALTER TABLE ... ALTER COLUMN ... TYPE), and the transaction is aborted. Run the "
    "transaction again: the rollback dropped the connection's prepared statements, so the "
    "statement is planned anew (db.transaction(retries=N) does that for you). Outside a "
    "transaction querykit runs such a statement again by itself"
)
# Where PostgreSQL raises "cached plan must not change result type"; the message itself
# follows lc_messages, the source file does not.
_PLANCACHE = "plancache.c"
_STALE_MESSAGE = "cached plan must not change result type"


def is_stale_plan(exc: psycopg.Error) -> bool:
    """Did a prepared statement fail because a migration changed its result's types?

    Checked only after an error (0A000): the normal path pays nothing for it.
    """
    if exc.sqlstate != "0A000":
        return False
    diag = exc.diag
    return diag.source_file == _PLANCACHE or _STALE_MESSAGE in (diag.message_primary or "")


# Drops a connection's prepared statements. psycopg (3.3.6+) reads the command's status
# and forgets its own statement names too, so the next run prepares anew, without
# anyone reaching into its private cache.
DISCARD_PREPARED = "DEALLOCATE ALL"


def database_error(
    exc: psycopg.Error,
    sql_text: str,
    target: str,
    *,
    lost: bool = False,
    row: int | None = None,
) -> DatabaseError:
    """A ``DatabaseError`` for a psycopg error: SQLSTATE, the server's words, advice, the SQL.

    ``lost`` says the connection is closed now. ``row`` is the index, in the caller's
    list, of the row a bulk write failed on (found by :mod:`querykit.execute.bulk`).
    """
    sqlstate = exc.sqlstate
    diag = exc.diag
    primary = diag.message_primary if sqlstate else None
    if not primary:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        primary = lines[0] if lines else type(exc).__name__
    parts = [primary]
    if sqlstate:
        parts[0] += f" (SQLSTATE {sqlstate})"
    if diag.message_detail:
        parts.append(f"DETAIL: {diag.message_detail}")
    if row is not None:
        parts.append(f"at row {row} of the rows given")
    if diag.message_hint:
        parts.append(f"HINT: {diag.message_hint}")
    advice = _ADVICE.get(sqlstate or "")
    if sqlstate == "0A000" and is_stale_plan(exc):
        advice = _STALE_PLAN
    if not advice and (lost or (sqlstate or "").startswith("08")):
        advice = _LOST
    if advice:
        parts.append(advice)
    message = "; ".join(parts) + f". On {target}. SQL: {sql_excerpt(sql_text)}"
    return DatabaseError(message, sqlstate=sqlstate, sql=sql_text, row=row)


def placeholder_error(values: Iterable[Any]) -> CompileError | None:
    """If a normal call met a ``placeholder()``, the error that says to prepare the query."""

    names = [v.name for v in values if isinstance(v, Placeholder)]
    if not names:
        return None
    return CompileError(
        f"the query has placeholder {', '.join(repr(n) for n in names)}: "
        "run it through db.prepare(query) and give the values when calling it"
    )


def sql_excerpt(text: str, limit: int = 300) -> str:
    """The SQL on one line, cut to ``limit`` characters, for error messages and the log."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
