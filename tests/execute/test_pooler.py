"""Through Debian's PgBouncer (1.18) in transaction mode with its default settings.

``pooler="transaction"`` must run a concurrent load without an error, where the
same load with server-side prepares reproduces ``DuplicatePreparedStatement``
(so the test can see the failure). Statements that need a session are refused
before they are sent; ``stream()`` works, because its cursor lives inside one
transaction. The values are checked against the database, read directly.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from querykit import connect, connect_async, eq, insert, raw, select, update
from querykit.errors import ConfigError, ConnectError, ExecuteError
from schema import pipeline_run as run
from tests.realservers import PGBOUNCER, pgbouncer

pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed")

THREADS, ITERATIONS = 6, 500


@pytest.fixture
def pooled(url: str) -> Iterator[str]:
    with pgbouncer(url) as through:
        yield through


def hammer(db: Any, url: str, threads: int, iterations: int) -> list[BaseException]:
    """Each thread: a repeated read, write and transaction on its own row; the errors."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        rid = f"t{t}"
        by_id = select(run.c.name, run.c.cost).where(eq(run.c.id, rid))
        for i in range(iterations):
            try:
                db.execute(update(run).set(name=f"{rid}-{i}").where(eq(run.c.id, rid)))
                assert db.one(by_id)[0] == f"{rid}-{i}"
                with db.transaction() as tx:
                    tx.execute(update(run).set(cost=i).where(eq(run.c.id, rid)))
            except BaseException as exc:  # every error counts
                with lock:
                    errors.append(exc)
                if len(errors) > 20:
                    return

    with connect(url, pooler="transaction") as setup:
        setup.insert_many(run, [{"id": f"t{t}", "name": "new"} for t in range(threads)])
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


def test_transaction_mode_runs_a_concurrent_load_without_an_error(
    pooled: str, admin: psycopg.Connection[Any]
) -> None:
    with connect(pooled, pooler="transaction", max_size=THREADS) as db:
        errors = hammer(db, pooled, THREADS, ITERATIONS)
    assert errors == []
    rows = admin.execute("SELECT id, name, cost FROM pipeline_run ORDER BY id").fetchall()
    last = ITERATIONS - 1
    assert [tuple(r[:2]) for r in rows] == [(f"t{t}", f"t{t}-{last}") for t in range(THREADS)]
    assert {float(r[2]) for r in rows} == {float(last)}


def test_preparing_through_the_pooler_fails_as_the_control(
    pooled: str, caplog: pytest.LogCaptureFixture
) -> None:
    """prepare=True: a statement prepared by one client is met again by another on the same
    server connection. It fails the queries, and the pool's own setup of new connections
    (pgvector's type lookups run one statement several times), which psycopg_pool logs."""
    failures: list[str] = []
    with warnings.catch_warnings(record=True):
        try:
            db = connect(pooled, prepare=True, max_size=THREADS, timeout=2, connect_timeout=2)
        except ConnectError as exc:
            failures.append(str(exc))
        else:
            with db:
                failures += [str(e) for e in hammer(db, pooled, THREADS, 100)]
    failures += [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]
    duplicate = re.compile(r'prepared statement "_pg3_\d+" already exists')
    assert any(duplicate.search(f) for f in failures), failures[:5]


def test_an_unmentioned_pooler_is_warned_of_once(pooled: str, url: str) -> None:
    with pytest.warns(RuntimeWarning, match=r"a connection pooler answers at 127\.0\.0\.1:\d+/"):
        connect(pooled).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect(pooled, prepare=False).close()  # once per pooler
        connect(url).close()  # a direct connection: nothing to say
        connect(pooled, pooler="transaction").close()


def test_prepare_true_contradicts_a_transaction_pooler(pooled: str) -> None:
    with pytest.raises(ConfigError, match="DuplicatePreparedStatement"):
        connect(pooled, pooler="transaction", prepare=True)


def test_stream_works_through_the_pooler(pooled: str, admin: psycopg.Connection[Any]) -> None:
    with connect(pooled, pooler="transaction") as db:
        db.insert_many(run, [{"id": f"s{i:04d}", "name": f"n{i}"} for i in range(2500)])
        streamed = list(db.stream(select(run.c.id, run.c.name).order_by(run.c.id), batch=100))
        # Another client's statements between two batches run on other server connections.
        with connect(pooled, pooler="transaction") as other:
            rows = db.stream(select(run.c.id).order_by(run.c.id), batch=50)
            first = [next(rows) for _ in range(60)]
            other.execute(insert(run).values(id="zzz", name="between"))
            rest = list(rows)
    expected = admin.execute("SELECT id, name FROM pipeline_run WHERE id LIKE 's%' ORDER BY id")
    assert streamed == [tuple(r) for r in expected.fetchall()]
    assert len(first) + len(rest) == 2500  # the stream's snapshot: not the row added meanwhile


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        ("LISTEN jobs", "LISTEN/UNLISTEN"),
        ("SELECT pg_advisory_lock(42)", "a session advisory lock"),
        ("SELECT pg_try_advisory_lock(42)", "a session advisory lock"),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "a WITH HOLD cursor"),
        ("SET statement_timeout = 0", "a session SET"),
        ("PREPARE p AS SELECT 1", "a PREPARE/DEALLOCATE statement"),
    ],
)
def test_session_features_are_refused_before_they_are_sent(
    pooled: str, statement: str, what: str
) -> None:
    sent: list[str] = []
    with connect(pooled, pooler="transaction") as db:
        db.on_query(lambda r: sent.append(r.sql))
        with pytest.raises(
            ExecuteError, match=rf"refused behind a transaction-mode pooler.*{what}"
        ):
            db.execute(raw(statement))
        with pytest.raises(ExecuteError, match="direct connection"):
            list(db.stream(raw(statement).returns(int)))
        # Their transaction-scoped forms are fine.
        assert db.scalar(raw("SELECT pg_try_advisory_xact_lock(42)").returns(bool)) is True
        with db.transaction() as tx:
            tx.execute(raw("SET LOCAL statement_timeout = 0"))
    assert statement not in sent


async def test_the_async_face_warns_refuses_and_streams_alike(pooled: str) -> None:
    with pytest.warns(RuntimeWarning, match=r"a connection pooler answers at 127\.0\.0\.1:\d+/"):
        unmentioned = await connect_async(pooled, prepare=False)
    await unmentioned.close()
    db = await connect_async(pooled, pooler="transaction")
    try:
        with pytest.raises(ExecuteError, match="refused behind a transaction-mode pooler"):
            await db.execute(raw("LISTEN jobs"))
        await db.insert_many(run, [{"id": f"a{i:03d}", "name": "x"} for i in range(300)])
        ids = [row[0] async for row in db.stream(select(run.c.id).order_by(run.c.id), batch=64)]
        assert ids == [f"a{i:03d}" for i in range(300)]
    finally:
        await db.close()
