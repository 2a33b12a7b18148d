"""The benchmark database: DATABASE_URL if set, else a throwaway embedded server."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from psycopg import sql

from querykit.embedded import EmbeddedServer
from querykit.execute.connect import connect


@contextlib.contextmanager
def bench_database(name: str = "querykit_bench") -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    tmp: Path | None = None
    server: EmbeddedServer | None = None
    if configured:
        admin = configured
    else:
        tmp = Path(tempfile.mkdtemp(prefix="querykit-bench-"))
        server = EmbeddedServer(tmp / "pgdata", server_settings={"shared_buffers": "256MB"})
        url = server.start().url
        assert url is not None
        admin = url
    try:
        with connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = _with_dbname(admin, name)
        with connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield url
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _with_dbname(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))
