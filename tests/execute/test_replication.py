"""Reads on a real streaming replica: read-your-writes, lag, a replica that dies and returns.

The cluster is an embedded primary and a standby made with ``pg_basebackup -R
-X stream`` (``tests.realservers``). Staleness is real here: right after a
write, a plain replica read usually does not see it yet. Which server answered
is read from the query log's ``target`` (host:port, the replica's own port),
and the values are checked against the primary, read directly with psycopg.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from querykit import (
    QueryRecord,
    connect,
    connect_async,
    eq,
    find_first,
    find_many,
    hybrid_search,
    include,
    insert,
    placeholder,
    raw,
    select,
    update,
)
from querykit.errors import ConfigError
from tests.execute.test_replicas import DOC_DDL, doc
from tests.realservers import ReplicatedCluster

pytestmark = pytest.mark.xdist_group("replica")

meta = sa.MetaData()
counter = sa.Table(
    "counter",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)
tick = sa.Table(
    "tick",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("counter_id", sa.Integer, sa.ForeignKey("counter.id"), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
)
DDL = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)",
    "CREATE TABLE tick (id int PRIMARY KEY, counter_id int NOT NULL REFERENCES counter, n int NOT NULL)",
    "INSERT INTO counter VALUES (1, 0)",
    DOC_DDL,
]
N = select(counter.c.n).where(eq(counter.c.id, 1))
_names = itertools.count()


@pytest.fixture
def urls(replicated: ReplicatedCluster) -> Iterator[tuple[str, str]]:
    """(primary, standby) URLs of a fresh database that the standby has replayed."""
    name = f"rr_{next(_names)}_{time.monotonic_ns()}"
    primary, standby = replicated.create_database(name, DDL)
    yield primary, standby
    with psycopg.connect(replicated.primary_url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
        )


def port_of(url_or_target: str) -> str:
    """The port in a URL or a log target (``host:port/db (note)``)."""
    where = url_or_target.split("@")[-1].split("/")[0]
    return where.rsplit(":", 1)[1]


def on_replica(record: QueryRecord, standby: str) -> bool:
    return port_of(record.target) == port_of(standby)


def reads(records: list[QueryRecord]) -> list[QueryRecord]:
    return [r for r in records if r.sql.startswith("SELECT") and "pg_" not in r.sql]


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# -- target 1: read-your-writes, against plain replica reads ------------------------------------

CYCLES = 200  # the bench runs the 1,000 (python -m bench replicas)


async def write_read_cycles(db: Any, cycles: int) -> tuple[int, list[float]]:
    """Write n, read it back at once: (stale reads, read latencies)."""
    stale, latencies = 0, []
    start = await db.scalar(N)
    for n in range(start + 1, start + cycles + 1):
        await db.execute(update(counter).set(n=n).where(eq(counter.c.id, 1)))
        began = time.perf_counter()
        if await db.scalar(N) != n:
            stale += 1
        latencies.append(time.perf_counter() - began)
    return stale, latencies


@pytest.mark.parametrize("apply_delay", ["0", "10ms"])
async def test_read_your_writes_never_reads_stale_and_stays_on_the_replica(
    make_db: Any, replicated: ReplicatedCluster, urls: tuple[str, str], apply_delay: str
) -> None:
    """As replicated here (``"0"``), and with a replica 10 ms behind: then nearly every
    plain read right after a write is stale, which proves the test sees staleness (here,
    without a delay, from a few to most of them are, depending on the machine's load)."""
    primary, standby = urls
    plain = await make_db(primary, replicas=[standby])
    ryw = await make_db(primary, replicas=[standby], consistency="read-your-writes")
    records: list[QueryRecord] = []
    ryw.on_query(records.append)
    with apply_delay_of(replicated, urls, apply_delay):
        stale_plain, plain_latency = await write_read_cycles(plain, CYCLES)
        stale_ryw, ryw_latency = await write_read_cycles(ryw, CYCLES)

    assert stale_ryw == 0
    if apply_delay != "0":
        assert stale_plain >= CYCLES * 0.5, stale_plain
    served = reads(records)
    assert len(served) == CYCLES + 1  # and the first read of the start value
    on_standby = [r for r in served if on_replica(r, standby)]
    assert len(on_standby) >= CYCLES * 0.5, [r.target for r in served][:10]
    print(
        f"\nread-your-writes, apply delay {apply_delay}, {CYCLES} cycles: 0 stale (plain "
        f"replica reads: {stale_plain} stale); {len(on_standby)} on the replica; read p99 "
        f"{p99(ryw_latency) * 1000:.2f} ms vs {p99(plain_latency) * 1000:.2f} ms plain"
    )


@contextlib.contextmanager
def apply_delay_of(cluster: ReplicatedCluster, urls: tuple[str, str], delay: str) -> Iterator[None]:
    """The standby replays each commit ``delay`` late (``recovery_min_apply_delay``)."""
    if delay == "0":
        yield
        return
    cluster.set_apply_delay(delay)
    try:
        yield
    finally:
        cluster.set_apply_delay("0")
        with psycopg.connect(urls[0]) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert row is not None
        cluster.wait_replayed(urls[1], str(row[0]))


async def test_bulk_writes_and_transactions_move_the_token(
    make_db: Any, urls: tuple[str, str]
) -> None:
    primary, standby = urls
    db = await make_db(primary, replicas=[standby], consistency="read-your-writes")
    assert db.consistency_token() == "0/0"
    await db.insert_many(tick, [{"id": i, "counter_id": 1, "n": i} for i in range(1, 51)])
    after_bulk = db.consistency_token()
    assert after_bulk != "0/0"
    assert await db.scalars(select(tick.c.id).where(eq(tick.c.counter_id, 1))) == list(range(1, 51))
    async with db.transaction() as tx:
        await tx.execute(update(counter).set(n=-1).where(eq(counter.c.id, 1)))
    after_tx = db.consistency_token()
    with psycopg.connect(primary) as direct:  # the oracle: the primary's own position
        row = direct.execute("SELECT %s::pg_lsn > %s::pg_lsn, pg_current_wal_lsn() >= %s::pg_lsn",
                             (after_tx, after_bulk, after_tx)).fetchone()  # fmt: skip
    assert row == (True, True)
    assert await db.scalar(N) == -1


# -- target 2: a replica that replays late -------------------------------------------------------


@pytest.fixture
def delayed(replicated: ReplicatedCluster, urls: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """The standby replays each commit 500 ms late."""
    with apply_delay_of(replicated, urls, "500ms"):
        yield urls


async def test_a_pending_token_reads_on_the_primary_and_no_token_reads_the_replica(
    make_db: Any, delayed: tuple[str, str]
) -> None:
    primary, standby = delayed
    db = await make_db(primary, replicas=[standby], consistency="read-your-writes")
    records: list[QueryRecord] = []
    db.on_query(records.append)
    await db.execute(update(counter).set(n=1000).where(eq(counter.c.id, 1)))
    token = db.consistency_token()

    assert await db.scalar(N) == 1000  # fresh, from the primary
    fallback = reads(records)[-1]
    assert port_of(fallback.target) == port_of(primary)
    assert f"had not replayed {token} within 20 ms" in fallback.target

    # Another request (a fresh context) has no token: the replica, stale by design.
    assert await in_fresh_context(lambda: db.scalar(N)) == 0
    assert on_replica(reads(records)[-1], standby)
    assert contextvars.Context().run(db.consistency_token) == "0/0"

    # ...until it carries the token, as a web app would in a cookie.
    async def with_token() -> Any:
        with db.after(token):
            return await db.scalar(N)

    assert await in_fresh_context(with_token) == 1000
    assert port_of(reads(records)[-1].target) == port_of(primary)


async def in_fresh_context(read: Callable[[], Awaitable[Any]]) -> Any:
    """``read()`` as another request would run it: in a task with an empty context."""

    async def call() -> Any:
        return await read()

    return await asyncio.create_task(call(), context=contextvars.Context())


async def test_a_replica_past_max_lag_is_skipped_until_it_catches_up(
    make_db: Any, delayed: tuple[str, str]
) -> None:
    primary, standby = delayed
    db = await make_db(primary, replicas=[standby], max_lag=0.1)
    records: list[QueryRecord] = []
    db.on_query(records.append)
    deadline = time.monotonic() + 10
    with psycopg.connect(primary, autocommit=True) as writer:  # a steady write load elsewhere
        for n in itertools.count(1):
            writer.execute("UPDATE counter SET n = %s WHERE id = 1", (n,))
            if "lags" in await _read_target(db, records):
                break
            assert time.monotonic() < deadline, "the lagging replica was never skipped"
            await _sleep(0.02)
        assert port_of(reads(records)[-1].target) == port_of(primary)
        assert await db.scalar(N) == n  # the primary's value while the replica lags
    # The writes stop; the replica replays them and serves reads again.
    while port_of(await _read_target(db, records)) != port_of(standby):
        assert time.monotonic() < deadline + 10, "reads never went back to the replica"
        await _sleep(0.05)


async def _read_target(db: Any, records: list[QueryRecord]) -> str:
    await db.scalar(N)
    return reads(records)[-1].target


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


# -- nested reads, hybrid search, stream and prepared queries are routed too ---------------------


async def test_nested_reads_stream_and_prepared_queries_read_your_writes_on_the_replica(
    make_db: Any, urls: tuple[str, str]
) -> None:
    primary, standby = urls
    db = await make_db(primary, replicas=[standby], consistency="read-your-writes")
    records: list[QueryRecord] = []
    db.on_query(records.append)
    by_id = db.prepare(select(counter.c.n).where(eq(counter.c.id, placeholder("id"))))
    nested = find_many(
        counter, columns=["n"], with_={"ticks": include(columns=["n"], order_by=tick.c.n)}
    )
    search = hybrid_search(
        doc.c.embedding, [1, 0, 0], doc.c.search, "vacuum", columns=[doc.c.title]
    )
    for n in range(1, 6):
        await db.execute(update(counter).set(n=n).where(eq(counter.c.id, 1)))
        await db.execute(insert(tick).values(id=n, counter_id=1, n=n))
        await db.execute(insert(doc).values(id=n, title=f"vacuum {n}", embedding=[1, 0, 0]))
        assert await db.all(nested) == [{"n": n, "ticks": [{"n": i} for i in range(1, n + 1)]}]
        assert await db.first(find_first(counter, columns=["n"])) == {"n": n}
        assert [row async for row in db.stream(select(tick.c.n).order_by(tick.c.n))] == [
            (i,) for i in range(1, n + 1)
        ]
        assert await by_id.scalar(id=1) == n
        assert len(await db.all(search)) == n
    served = reads(records)
    assert served and all(on_replica(r, standby) for r in served), {r.target for r in served}


# -- what goes where ----------------------------------------------------------------------------


async def test_writes_locking_reads_raw_sql_and_transactions_go_to_the_primary(
    make_db: Any, urls: tuple[str, str]
) -> None:
    primary, standby = urls
    db = await make_db(primary, replicas=[standby])
    records: list[QueryRecord] = []
    db.on_query(records.append)
    port = select(sa.func.inet_server_port())  # the server says which one it is
    assert await db.execute(update(counter).set(n=5).where(eq(counter.c.id, 1))) == 1
    assert await db.scalar(N.for_update()) == 5
    assert await db.scalar(raw("SELECT inet_server_port()").returns(int)) == int(port_of(primary))
    assert await db.insert_many(tick, [{"id": 100, "counter_id": 1, "n": 1}]) == 1
    async with db.transaction() as tx:
        assert await db.scalar(port) == int(port_of(primary))
        assert await tx.scalar(port) == int(port_of(primary))
        assert [r async for r in db.stream(port)] == [(int(port_of(primary)),)]
    assert records and all(port_of(r.target) == port_of(primary) for r in records)
    # A plain read outside the transaction: the standby.
    assert await db.scalar(port) == int(port_of(standby))
    assert on_replica(records[-1], standby)


# -- tokens are checked ---------------------------------------------------------------------------


async def test_a_bad_token_is_a_config_error(make_db: Any, urls: tuple[str, str]) -> None:
    db = await make_db(urls[0], replicas=[urls[1]], consistency="read-your-writes")
    with (
        pytest.raises(ConfigError, match=r"not a consistency token: 'abc'.*'0/3000148'"),
        db.after("abc"),
    ):
        pass


# -- target 3: the replica dies during a read load, and comes back -------------------------------


def test_a_killed_replica_costs_no_errors_and_reads_return_to_it(
    replicated: ReplicatedCluster, urls: tuple[str, str]
) -> None:
    primary, standby = urls
    served: list[tuple[float, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()
    with connect(primary, replicas=[standby], max_size=4) as db:
        db.on_query(lambda r: log_read(served, r))

        def load() -> None:
            while not stop.is_set():
                try:
                    assert db.scalar(N) == 0
                except BaseException as exc:  # every error counts
                    with lock:
                        errors.append(exc)
                time.sleep(0.002)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            killed = time.monotonic()
            replicated.kill_standby()
            time.sleep(1.5)
            replicated.start_standby()
            deadline = time.monotonic() + 30
            while not back_on(served, standby, killed + 1.5):
                assert time.monotonic() < deadline, "reads never went back to the restarted replica"
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join()
    check_failover(served, errors, killed, primary)


async def test_a_killed_replica_costs_no_errors_on_the_async_face_too(
    replicated: ReplicatedCluster, urls: tuple[str, str]
) -> None:
    primary, standby = urls
    served: list[tuple[float, str]] = []
    errors: list[BaseException] = []
    stop = asyncio.Event()
    db = await connect_async(primary, replicas=[standby], max_size=4)
    db.on_query(lambda r: log_read(served, r))

    async def load() -> None:
        while not stop.is_set():
            try:
                assert await db.scalar(N) == 0
            except BaseException as exc:  # every error counts
                errors.append(exc)
            await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(load()) for _ in range(3)]
    try:
        await asyncio.sleep(0.3)
        killed = time.monotonic()
        await asyncio.to_thread(replicated.kill_standby)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(replicated.start_standby)
        deadline = time.monotonic() + 30
        while not back_on(served, standby, killed + 1.5):
            assert time.monotonic() < deadline, "reads never went back to the restarted replica"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await db.close()
    check_failover(served, errors, killed, primary)


def log_read(served: list[tuple[float, str]], record: QueryRecord) -> None:
    if record.sql.startswith("SELECT counter.n"):
        served.append((time.monotonic(), record.target))


def back_on(served: list[tuple[float, str]], standby: str, since: float) -> bool:
    return any(port_of(t) == port_of(standby) for at, t in served[-20:] if at > since)


def check_failover(
    served: list[tuple[float, str]], errors: list[BaseException], killed: float, primary: str
) -> None:
    """No error reached the caller; reads moved to the primary, saying why, within 1 s."""
    assert errors == []
    on_primary = [at for at, t in served if at > killed and port_of(t) == port_of(primary)]
    assert on_primary
    settled = [t for at, t in served if killed + 1.0 < at < killed + 1.5]
    assert settled and all(port_of(t) == port_of(primary) for t in settled)
    assert any("read on the primary: replica" in t for t in settled)
    print(f"\nreplica killed: reads on the primary {1000 * (on_primary[0] - killed):.0f} ms later")
