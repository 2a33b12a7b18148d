"""The one place that opens a plain psycopg connection and explains failures.

Used by the embedded server checks, the migration runner and the CLI. The
pooled ``Database`` builds on the same error translation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..errors import ConnectError
from ..settings import check_database_url, mask_secrets

__all__ = ["ServerInfo", "connect", "connect_error", "describe_target", "server_info"]

DEFAULT_CONNECT_TIMEOUT = 5


def describe_target(url: str) -> str:
    """``host:port/dbname`` for messages; never includes the password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable database URL>"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or 5432)
    dbname = params.get("dbname")
    where = f"{host}:{port}"
    return f"{where}/{dbname}" if dbname else where


def connect_error(url: str, exc: BaseException) -> ConnectError:
    """A one-line ``ConnectError`` naming host and port, with secrets masked."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = lines[0] if lines else type(exc).__name__
    # psycopg says 'connection failed: connection to server at "h", port p failed: X'
    if "failed:" in reason:
        reason = reason.rsplit("failed:", 1)[1].strip()
    reason = mask_secrets(reason, url)
    return ConnectError(
        f"cannot connect to PostgreSQL at {describe_target(url)}: {reason}. "
        "Check that the server is running and that DATABASE_URL (or --database-url) is right."
    )


def connect(
    url: str, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT, **kwargs: Any
) -> psycopg.Connection[Any]:
    """Open one psycopg connection; a failure becomes a ``ConnectError``.

    A URL that does not parse is a ``ConfigError`` that shows none of it (libpq's
    parse error quotes it, password and all).
    """
    check_database_url(url, "the settings")
    try:
        return psycopg.connect(url, connect_timeout=connect_timeout, **kwargs)
    except psycopg.OperationalError as exc:
        raise connect_error(url, exc) from exc


@dataclass(frozen=True)
class ServerInfo:
    """What ``querykit db status`` reports about a server."""

    server_version: str
    pgvector_available: str | None
    pgvector_installed: str | None
    database: str
    user: str


def server_info(url: str, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT) -> ServerInfo:
    """Connect once and read the server and pgvector versions."""
    with connect(url, connect_timeout=connect_timeout) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_database(), current_user, "
            "(SELECT default_version FROM pg_available_extensions WHERE name = 'vector'), "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector')"
        ).fetchone()
    assert row is not None
    return ServerInfo(
        server_version=row[0],
        database=row[1],
        user=row[2],
        pgvector_available=row[3],
        pgvector_installed=row[4],
    )
