"""Queries with per-query settings (``nearest()``, ``with_settings``) as querykit's own statements.

Outside a transaction such a query runs as ``BEGIN``, ``set_config(..., true)``,
the statement, ``COMMIT``; inside one, the old values are read, the statement
runs and the old values are put back. From its second run on, both the
statement and the ``set_config`` go as statements querykit prepared itself
(querykit/execute/statements.py). The oracles: the same queries through
psycopg's cursor (``connect(prepare=False)``), the same statements sent by raw
psycopg, the server's ``pg_prepared_statements`` and ``current_setting``.
Every test runs on ``Database`` and ``AsyncDatabase``.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from pgvector.psycopg import register_vector

import querykit
from querykit import DatabaseError, QueryRecord, eq, nearest, placeholder, raw, select
from querykit.columns import vector

from .test_statements import deallocate_behind_psycopgs_back, ours

meta = sa.MetaData()
vec = sa.Table(
    "lean_vec",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("v", sa.Integer),
    sa.Column("emb", vector(3)),
)
SETUP = [
    "CREATE TABLE lean_vec (id int PRIMARY KEY, name text, v int, emb vector(3))",
    "INSERT INTO lean_vec SELECT g, 'n' || g, g - 5, "
    "ARRAY[sin(g), cos(g), g / 40.0]::vector FROM generate_series(1, 40) g",
    "CREATE INDEX ON lean_vec USING hnsw (emb vector_l2_ops)",
    "CREATE TABLE lean_log (v int)",
    # A SELECT with a side effect: it writes, then fails for v = 5 (division by zero).
    "CREATE FUNCTION lean_note(v int) RETURNS int LANGUAGE sql "
    "AS 'INSERT INTO lean_log VALUES ($1) RETURNING 10 / ($1 - 5)'",
]
WORK_MEM = sa.func.current_setting("work_mem", type_=sa.Text)
CUSTOM = sa.func.current_setting("querykit.x", True, type_=sa.Text)
SETTINGS = {"work_mem": "1234kB", "querykit.x": "7"}
QUERY = [0.5, 0.5, 0.5]


@pytest.fixture
def admin_url(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SETUP:
            conn.execute(statement)
    return url


async def one_connection(make_db: Any, url: str, **kwargs: Any) -> Any:
    """A database with one connection: every query runs where ``ours()`` looks."""
    return await make_db(url, min_size=1, max_size=1, **kwargs)


def server_sql(q: Any) -> str:
    """The query's SQL as the server keeps it: psycopg's ``%s`` turned into ``$1``, ``$2``..."""
    text: str = q.to_sql().sql
    parts = text.split("%s")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))


def raw_psycopg(url: str, q: Any) -> list[tuple[Any, ...]]:
    """The same statements by hand: BEGIN, set_config per setting, the query, COMMIT."""
    compiled = q.to_sql()
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        with conn.transaction():
            for name, value in compiled.settings:
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))
            return conn.execute(compiled.sql, compiled.params).fetchall()


async def test_a_query_with_settings_runs_as_querykits_statement(
    make_db: Any, admin_url: str
) -> None:
    db = await one_connection(make_db, admin_url)
    q = select(WORK_MEM, CUSTOM, vec.c.name).where(eq(vec.c.id, 3)).with_settings(SETTINGS)
    sql = server_sql(q)
    before = await db.scalar(select(WORK_MEM))  # the session's value
    for _ in range(3):
        assert await db.one(q) == ("1234kB", "7", "n3")
    prepared = {s for _, s, _ in await ours(db)}
    assert sql in prepared  # the statement: querykit's own, not psycopg's cursor
    assert "SELECT set_config($1, $2, true), set_config($3, $4, true)" in prepared
    psycopgs = await db.scalars(
        raw("SELECT statement FROM pg_prepared_statements WHERE name LIKE '\\_pg3\\_%'").returns(
            str
        )
    )
    assert sql not in psycopgs
    assert await db.one(select(WORK_MEM, CUSTOM)) in ((before, None), (before, ""))  # gone after


async def test_results_equal_psycopgs_cursor_and_raw_psycopg(make_db: Any, admin_url: str) -> None:
    db = await one_connection(make_db, admin_url)
    cursor_only = await make_db(admin_url, prepare=False)
    queries = [
        nearest(vec.c.emb, QUERY, 5, metric="l2", columns=[vec.c.id, vec.c.name]),
        nearest(vec.c.emb, QUERY, 5, metric="l2", columns=[vec.c.id], ef_search=200),
        select(WORK_MEM, CUSTOM).with_settings(SETTINGS),
    ]
    for q in queries:
        assert q.settings  # nearest() sets ef_search by default
        expected = raw_psycopg(admin_url, q)
        for _ in range(3):  # the first through the cursor, then querykit's statements
            got = await db.all(q)
            assert got == await cursor_only.all(q)
            assert [tuple(r) for r in got] == expected
            assert await db.first(q) == got[0]
            assert await db.execute(q) == len(expected)
    prepared = {s for _, s, _ in await ours(db)}
    assert {server_sql(q) for q in queries} <= prepared


async def test_the_settings_apply_inside_and_are_gone_after(make_db: Any, admin_url: str) -> None:
    db = await one_connection(make_db, admin_url)
    ef = select(sa.func.current_setting("hnsw.ef_search", True, type_=sa.Text))
    await db.all(nearest(vec.c.emb, QUERY, 5, metric="l2"))  # pgvector loaded: its settings
    default = await db.scalar(ef)
    assert default == "40"  # pgvector's
    for value in (200, 300, 200, 200):
        assert await db.scalar(ef.with_settings({"hnsw.ef_search": value})) == str(value)
        assert await db.scalar(ef) == default  # the next query: the session's value
    work_mem = await db.scalar(select(WORK_MEM))
    for _ in range(3):
        assert await db.one(select(WORK_MEM, CUSTOM).with_settings(SETTINGS)) == ("1234kB", "7")
        assert await db.scalar(select(WORK_MEM)) == work_mem
        assert await db.scalar(select(CUSTOM)) in (None, "")


async def test_inside_a_transaction_the_old_values_come_back(make_db: Any, admin_url: str) -> None:
    db = await one_connection(make_db, admin_url)
    q = select(WORK_MEM, CUSTOM).with_settings(SETTINGS)
    async with db.transaction():
        await db.execute(raw("SET LOCAL work_mem = '2222kB'"))
        for _ in range(3):
            assert await db.one(q) == ("1234kB", "7")
            assert await db.one(select(WORK_MEM, CUSTOM)) in (("2222kB", None), ("2222kB", ""))
        assert "SELECT current_setting($1, true), set_config($2, $3, true), " in " ".join(
            s for _, s, _ in await ours(db)
        )
        # every old value known: put back by one set_config statement of querykit's
        ef = sa.func.current_setting("hnsw.ef_search", True, type_=sa.Text)
        await db.execute(raw("SET LOCAL hnsw.ef_search = 77"))
        both = select(WORK_MEM, ef).with_settings({"work_mem": "3333kB", "hnsw.ef_search": 88})
        for _ in range(3):
            assert await db.one(both) == ("3333kB", "88")
            assert await db.one(select(WORK_MEM, ef)) == ("2222kB", "77")
        assert "SELECT set_config($1, $2, true), set_config($3, $4, true)" in {
            s for _, s, _ in await ours(db)
        }
    assert await db.scalar(select(WORK_MEM)) != "2222kB"


async def test_errors_roll_the_querys_transaction_back(make_db: Any, admin_url: str) -> None:
    db = await one_connection(make_db, admin_url)
    records: list[QueryRecord] = []
    db.on_query(records.append)
    note = select(sa.func.lean_note(placeholder("v"), type_=sa.Integer)).with_settings(SETTINGS)
    noted = db.prepare(note)
    log = raw("SELECT v FROM lean_log ORDER BY v").returns(int)
    for v in (6, 7):
        assert await noted.scalar(v=v) == 10 // (v - 5)  # committed: the rows stay
    cursor_only = await make_db(admin_url, prepare=False)
    bad = select(WORK_MEM).with_settings(work_mem="not a size")
    expected = []  # psycopg's cursor path: the same errors, word for word
    for failing in ("note", "bad"):
        with pytest.raises(DatabaseError) as caught:
            if failing == "note":
                await cursor_only.prepare(note).scalar(v=5)
            else:
                await cursor_only.scalar(bad)
        expected.append((caught.value.sqlstate, str(caught.value)))
    for _ in range(2):
        with pytest.raises(DatabaseError) as caught:
            await noted.scalar(v=5)  # wrote, then failed: the write is rolled back
        assert (caught.value.sqlstate, str(caught.value)) == expected[0]
        assert caught.value.sqlstate == "22012"
        assert await db.scalars(log) == [6, 7]
        assert await db.scalar(select(WORK_MEM)) != "1234kB"
    for _ in range(2):
        with pytest.raises(DatabaseError) as caught:
            await db.scalar(bad)  # set_config fails
        assert (caught.value.sqlstate, str(caught.value)) == expected[1]
        assert caught.value.sqlstate == "22023"
    assert await noted.scalar(v=8) == 3  # the connection is usable
    assert await db.scalars(log) == [6, 7, 8]
    sql = note.to_sql().sql
    mine = [r for r in records if r.sql == sql]
    assert [r.error is None for r in mine] == [True, True, False, False, True]
    assert not [r for r in records if "set_config" in r.sql]  # the query's SQL only

    # inside a transaction: the error aborts it; the rollback drops it all
    with pytest.raises(DatabaseError) as caught:
        async with db.transaction():
            assert await noted.scalar(v=9) == 2
            await noted.scalar(v=5)
    assert caught.value.sqlstate == "22012"
    assert await db.scalars(log) == [6, 7, 8]
    assert await noted.scalar(v=10) == 2


async def test_a_column_type_change_reruns_outside_and_fails_inside(
    make_db: Any, admin_url: str
) -> None:
    db = await one_connection(make_db, admin_url)
    records: list[QueryRecord] = []
    db.on_query(records.append)
    names = db.prepare(
        select(vec.c.name, CUSTOM).where(eq(vec.c.id, placeholder("id"))).with_settings(SETTINGS)
    )
    for _ in range(2):
        assert await names.one(id=1) == ("n1", "7")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE lean_vec ALTER COLUMN name TYPE varchar(20)")
    assert await names.one(id=1) == ("n1", "7")  # 0A000: rolled back, prepared anew, rerun
    assert [r.error for r in records] == [None, None, None]  # one record per query
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE lean_vec ALTER COLUMN name TYPE text")
    with pytest.raises(DatabaseError) as caught:
        async with db.transaction():
            await names.one(id=1)
    assert caught.value.sqlstate == "0A000"
    async with db.transaction():
        assert await names.one(id=1) == ("n1", "7")
    assert await names.one(id=1) == ("n1", "7")


async def test_statements_dropped_behind_psycopgs_back_run_again(
    make_db: Any, admin_url: str
) -> None:
    db = await one_connection(make_db, admin_url)
    q = select(WORK_MEM, CUSTOM).with_settings(SETTINGS)
    for _ in range(2):
        assert await db.one(q) == ("1234kB", "7")
    await db.execute(deallocate_behind_psycopgs_back())
    assert await ours(db) == []
    assert await db.one(q) == ("1234kB", "7")  # 26000 on set_config: the whole block again
    assert await db.one(q) == ("1234kB", "7")
    assert len(await ours(db)) >= 2


def test_a_connection_with_its_own_begin_keeps_it(admin_url: str) -> None:
    # read_only set on the connection: the query's transaction must start READ ONLY
    with querykit.connect(admin_url, min_size=1, max_size=1) as db:
        note = select(sa.func.lean_note(placeholder("v"), type_=sa.Integer))
        noted = db.prepare(note.with_settings(SETTINGS))
        assert noted.scalar(v=6) == 10
        with db._pool.connection() as conn:
            conn.read_only = True
        for _ in range(2):
            with pytest.raises(DatabaseError) as caught:
                noted.scalar(v=7)
            assert caught.value.sqlstate == "25006"  # read_only_sql_transaction
        with db._pool.connection() as conn:
            conn.read_only = None
        assert noted.scalar(v=7) == 5
        assert db.scalars(raw("SELECT v FROM lean_log ORDER BY v").returns(int)) == [6, 7]
