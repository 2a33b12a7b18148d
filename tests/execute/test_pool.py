"""Connections: failures, dead and terminated connections, restarts, pool limits, pgvector setup."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgvector import Vector
from psycopg import sql
from psycopg.adapt import PyFormat

import querykit
from querykit import (
    ConfigError,
    ConnectError,
    DatabaseError,
    ExecuteError,
    QueryKitError,
    count,
    insert,
    raw,
    select,
)
from querykit.codecs import CheckedVector
from querykit.embedded import EmbeddedServer
from querykit.execute.connect import connect
from schema import embedding, pipeline_run
from tests.conftest import with_dbname

from .conftest import raw_database, schema_ddl

run = pipeline_run


def backend_pid() -> Any:
    return raw("SELECT pg_backend_pid()").returns(int)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_an_unreachable_server_names_host_and_port_not_the_password(make_db: Any) -> None:
    port = _free_port()
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{port}/app"
    with pytest.raises(ConnectError) as info:
        await make_db(url, connect_timeout=2)
    message = str(info.value)
    assert f"127.0.0.1:{port}/app" in message
    assert "Connection refused" in message or "refused" in message.lower()
    assert "Check that the server is running" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(info.value.__cause__ or "")


async def test_pool_options_are_checked(make_db: Any, url: str) -> None:
    with pytest.raises(ConfigError, match="max_size=0"):
        await make_db(url, max_size=0)
    with pytest.raises(ConfigError, match="at least min_size"):
        await make_db(url, min_size=5, max_size=2)
    with pytest.raises(
        ConfigError, match=r"timeout=\.\.\.\) must be a number of seconds > 0, got 0"
    ):
        await make_db(url, timeout=0)


async def test_an_exhausted_pool_says_so(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=1, timeout=0.3)
    await db.insert_many(run, [{"name": "a"}, {"name": "b"}])
    holder = db.stream(select(run.c.id), batch=1)
    await holder.__anext__()  # an open stream holds the only connection
    with pytest.raises(ConnectError, match="all 1 pooled connections are in use") as info:
        await db.all(select(run.c.id))
    assert "Raise max_size or timeout" in str(info.value)
    await holder.aclose()
    assert await db.scalar(select(count()).from_(run)) == 2


async def test_a_closed_database_refuses_queries(make_db: Any, url: str) -> None:
    db = await make_db(url)
    await db.close()
    with pytest.raises(ExecuteError, match="is closed"):
        await db.all(select(run.c.id))
    await db.close()  # twice is fine


async def test_a_dead_idle_connection_is_replaced_before_use(
    make_db: Any, url: str, admin: psycopg.Connection[Any]
) -> None:
    db = await make_db(url, max_size=1)
    first = await db.scalar(backend_pid())
    admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    await asyncio.sleep(0.3)  # idle longer than the check threshold
    second = await db.scalar(backend_pid())  # no error: the dead connection was discarded
    assert second != first


async def test_connections_are_replaced_after_max_lifetime(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=1, max_lifetime=0.3)
    first = await db.scalar(backend_pid())
    await asyncio.sleep(0.4)
    await db.scalar(backend_pid())  # returned past its lifetime: replaced
    for _ in range(50):
        pid = await db.scalar(backend_pid())
        if pid != first:
            break
        await asyncio.sleep(0.05)
    assert pid != first


def _kill_when_running(url: str, marker: str, done: threading.Event) -> threading.Thread:
    def kill() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not done.is_set():
                row = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                    (f"%{marker}%",),
                ).fetchone()
                if row is not None and row[0]:
                    return
                time.sleep(0.02)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


async def test_a_connection_terminated_mid_query_is_a_clear_error(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=2)
    done = threading.Event()
    killer = _kill_when_running(url, "pg_sleep(20)", done)
    try:
        with pytest.raises(DatabaseError) as info:
            await db.scalar(raw("SELECT 'victim', pg_sleep(20)").returns(str, object))
    finally:
        done.set()
        killer.join()
    error = info.value
    assert error.sqlstate == "57P01"
    assert "the server terminated the connection" in str(error)
    assert "run the statement again" in str(error)
    assert isinstance(error.__cause__, psycopg.Error)
    # the pool is still usable, and has not leaked the dead connection
    assert await db.scalar(select(count()).from_(run)) == 0
    pool = raw_database(db)._pool
    for _ in range(100):
        stats = pool.get_stats()
        if stats["pool_available"] == stats["pool_size"]:
            break
        await asyncio.sleep(0.02)
    assert stats["pool_available"] == stats["pool_size"] <= 2


async def test_termination_inside_a_transaction_rolls_back(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=2)
    done = threading.Event()
    killer = _kill_when_running(url, "pg_sleep(21)", done)
    try:
        with pytest.raises(DatabaseError, match="SQLSTATE 57P01"):
            async with db.transaction() as tx:
                await tx.execute(insert(run).values(name="lost"))
                await tx.execute(raw("SELECT pg_sleep(21)"))
    finally:
        done.set()
        killer.join()
    assert await db.scalar(select(count()).from_(run)) == 0


# -- a server restart -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def private_server() -> Iterator[EmbeddedServer]:
    """A server of our own, on a fixed port, that tests may stop and start."""
    tmp = Path(tempfile.mkdtemp(prefix="querykit-restart-"))
    server = EmbeddedServer(
        tmp / "pgdata", server_settings={"port": str(_free_port()), "fsync": "off"}
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def test_the_pool_recovers_after_the_server_restarts(
    make_db: Any, private_server: EmbeddedServer
) -> None:
    url = private_server.url()
    db = await make_db(url, max_size=3, timeout=2, connect_timeout=2)
    pids = await asyncio.gather(*(db.scalar(backend_pid()) for _ in range(3)))
    private_server.stop()
    try:
        with pytest.raises(QueryKitError) as info:
            await db.scalar(backend_pid())
        assert url.split("@", 1)[1].split("/")[0] in str(info.value)  # host:port
    finally:
        private_server.start()
    after = await db.scalar(backend_pid())  # the first query after the restart succeeds
    assert after not in pids
    for _ in range(5):
        assert await db.scalar(backend_pid()) not in pids


# -- pgvector before and after CREATE EXTENSION ------------------------------------------------


@pytest.fixture
def url_without_vector(pg_server_url: str) -> Iterator[str]:
    name = f"qk_novector_{time.monotonic_ns()}"
    with connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield with_dbname(pg_server_url, name)
    finally:
        with connect(pg_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def test_vectors_work_when_the_extension_arrives_after_connecting(
    make_db: Any, url_without_vector: str
) -> None:
    db = await make_db(url_without_vector, max_size=1)
    pid = await db.scalar(backend_pid())
    assert await db.scalar(raw("SELECT 1").returns(int)) == 1
    with psycopg.connect(url_without_vector, autocommit=True) as admin:  # "migrations" run now
        admin.execute("CREATE EXTENSION vector")
        for statement in schema_ddl():
            admin.execute(statement)
    # the connection opened before the extension existed sends and reads vectors
    await db.execute(insert(embedding).values(content="a", embedding=[1.0] * 384))
    assert await db.scalar(select(embedding.c.embedding)) == Vector([1.0] * 384)
    nearest = await db.scalar(
        select(embedding.c.content).order_by(embedding.c.embedding.op("<->")([0.5] * 384)).limit(1)
    )
    assert nearest == "a"
    assert await db.insert_many(embedding, [{"content": "b", "embedding": [2.0] * 384}]) == 1
    assert await db.scalars(select(embedding.c.embedding).order_by(embedding.c.id)) == [
        Vector([1.0] * 384),
        Vector([2.0] * 384),
    ]
    assert await db.scalar(backend_pid()) == pid  # all on that first connection


def test_checked_vectors_are_sent_by_pgvectors_own_dumpers(url: str) -> None:
    with querykit.connect(url, max_size=1) as db:
        conn = db._pool.getconn()
        try:
            for fmt in (PyFormat.TEXT, PyFormat.BINARY, PyFormat.AUTO):
                dumper = conn.adapters.get_dumper(CheckedVector, fmt)
                assert dumper is conn.adapters.get_dumper(Vector, fmt)
        finally:
            db._pool.putconn(conn)
        db.execute(insert(embedding).values(content="c", embedding=[0.5] * 384))
        assert db.scalar(select(embedding.c.embedding)) == Vector([0.5] * 384)


def test_connect_uses_the_project_settings(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with querykit.connect() as db:
        assert db.scalar(select(count()).from_(run)) == 0
    settings = querykit.load_settings(database_url=url)
    with querykit.connect(settings) as db:
        assert repr(db).startswith("<Database 127.0.0.1:")


def test_threads_share_a_small_pool(url: str) -> None:
    import threading

    with querykit.connect(url, min_size=1, max_size=2, timeout=10) as db:
        errors: list[BaseException] = []
        pids: set[int] = set()

        def work() -> None:
            try:
                for _ in range(50):
                    pids.add(db.scalar(backend_pid()))
                    db.execute(insert(run).values(name="t"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(pids) <= 2
        assert db.scalar(select(count()).from_(run)) == 300
        stats = db._pool.get_stats()
        assert stats["pool_available"] == stats["pool_size"] <= 2
