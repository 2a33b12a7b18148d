"""querykit's own prepared statements (querykit/execute/statements.py), on real PostgreSQL.

A repeated statement runs as a statement querykit prepared itself (``_qk_<n>``)
below psycopg's cursor. The oracles: the same queries through psycopg's cursor
(``connect(prepare=False)``, which never prepares) and through raw psycopg, and
the server's own ``pg_prepared_statements``. Every test runs on ``Database`` and
``AsyncDatabase``, except the threads one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import threading
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from packaging.requirements import Requirement
from packaging.version import Version
from pgvector import Vector
from pgvector.psycopg import register_vector
from sqlalchemy.dialects import postgresql

import querykit
from querykit import (
    DatabaseError,
    MultipleResultsError,
    NoResultError,
    QueryRecord,
    eq,
    gte,
    insert,
    placeholder,
    raw,
    select,
)
from querykit.columns import vector
from schema import Status

from .conftest import schema_ddl

meta = sa.MetaData()
item = sa.Table(
    "lean_item",
    meta,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("amount", sa.Numeric(12, 4)),
    sa.Column("flag", sa.Boolean),
    sa.Column("doc", postgresql.JSONB),
    sa.Column("emb", vector(3)),
    sa.Column("status", sa.Enum(Status, name="status", create_type=False)),
)
COLUMNS = list(item.c)
AT = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "one",
        "at": AT,
        "amount": Decimal("12.3400"),
        "flag": True,
        "doc": {"a": [1, 2.5, None], "b": "é"},
        "emb": Vector([1.0, 2.0, 3.5]),
        "status": Status.RUNNING,
    },
    {  # NULL in every column but the key
        "id": 2,
        "name": None,
        "at": None,
        "amount": None,
        "flag": None,
        "doc": None,
        "emb": None,
        "status": None,
    },
    {
        "id": 2**40,
        "name": "",
        "at": AT + dt.timedelta(days=400),
        "amount": Decimal("-0.0001"),
        "flag": False,
        "doc": [],
        "emb": Vector([0.0, -1.0, 1e-3]),
        "status": Status.FAILED,
    },
]
BY_ID = select(*COLUMNS).where(eq(item.c.id, placeholder("id")))


@pytest.fixture
async def ldb(db: Any, url: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(meta):
            if "CREATE TYPE" not in statement:  # the status enum is in the template already
                conn.execute(statement)
    await db.insert_many(item, ROWS)
    return db


async def ours(db: Any) -> list[tuple[str, str, list[str]]]:
    """querykit's statements on the connection that serves the query (a pool of one)."""
    rows = await db.all(
        raw(
            "SELECT name, statement, parameter_types::text[] FROM pg_prepared_statements "
            "WHERE name LIKE '\\_qk\\_%' ORDER BY prepare_time"
        ).returns(str, str, list[str])
    )
    return list(rows)


def deallocate_behind_psycopgs_back() -> Any:
    """DEALLOCATE ALL in a DO block: the command status psycopg reads says DO."""
    return raw("DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$")


def test_psycopg_is_in_the_pinned_range_and_has_the_internals_used(url: str) -> None:
    requirements = [Requirement(r) for r in importlib.metadata.requires("querykit") or []]
    (pin,) = [r for r in requirements if r.name == "psycopg" and r.marker is None]
    assert Version(psycopg.__version__) in pin.specifier, (
        f"psycopg {psycopg.__version__} is outside querykit's pin {pin.specifier}: "
        "querykit/execute/statements.py reads its internals; check them and widen the pin"
    )
    with querykit.connect(url, min_size=1, max_size=1) as db, db._pool.connection() as conn:
        assert conn.qk_statements is not None, "psycopg's internals changed: the path is off"
        assert type(conn._prepared).__name__ == "_Manager"
        assert conn._prepared.prepare_threshold == 1
    with querykit.connect(url, max_size=1, prepare=False) as off, off._pool.connection() as conn:
        assert conn.qk_statements is None  # prepares nothing: psycopg's cursor only


async def test_repeated_statements_run_as_querykit_statements(
    make_db: Any, url: str, ldb: Any
) -> None:
    db = await make_db(url, max_size=1)
    by_name = db.prepare(select(item.c.id).where(eq(item.c.name, placeholder("name"))))
    assert await by_name.all(name="x") == []  # db.prepare: prepared at the first call
    assert [s for _, s, _ in await ours(db) if "lean_item.name = $1" in s] != []

    built = select(item.c.id).where(gte(item.c.id, 5))
    assert await db.all(built) == [(2**40,)]  # once: not prepared (psycopg's threshold)
    assert [s for _, s, _ in await ours(db) if "lean_item.id >= $1" in s] == []
    assert await db.all(select(item.c.id).where(gte(item.c.id, 2))) == [(2,), (2**40,)]
    assert [s for _, s, _ in await ours(db) if "lean_item.id >= $1" in s] != []


async def test_results_equal_psycopgs_cursor_and_raw_psycopg(
    ldb: Any, make_db: Any, url: str
) -> None:
    cursor_only = await make_db(url, prepare=False)
    lean = ldb
    by_id_lean, by_id_cursor = lean.prepare(BY_ID), cursor_only.prepare(BY_ID)
    for _ in range(2):  # the second round runs on statements prepared in the first
        for row in ROWS:
            one = await by_id_lean.one(id=row["id"])
            assert one == await by_id_cursor.one(id=row["id"])
            assert one == tuple(row.values())
            built = select(*COLUMNS).where(eq(item.c.id, row["id"]))
            assert await lean.one(built) == await cursor_only.one(built) == one
            assert await lean.first(built) == one
        everything = select(*COLUMNS).order_by(item.c.id)
        assert await lean.all(everything) == await cursor_only.all(everything)
        assert await lean.scalars(select(item.c.doc).order_by(item.c.id)) == [
            r["doc"] for r in ROWS
        ]
        assert await lean.scalar(select(item.c.status).where(eq(item.c.id, 1))) is Status.RUNNING
        assert await by_id_lean.first(id=3) is None
        assert await lean.execute(select(item.c.id)) == 3
    assert len(await ours(lean)) >= 3

    # raw psycopg, with pgvector's types, reads the same values (enums as their labels)
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        names = ", ".join(c.name for c in COLUMNS)
        expected = conn.execute(f"SELECT {names} FROM lean_item ORDER BY id").fetchall()
    got = await lean.all(select(*COLUMNS).order_by(item.c.id))
    normal = [tuple(v.value if isinstance(v, Status) else v for v in r) for r in got]
    assert [tuple(map(_plain, r)) for r in normal] == [tuple(map(_plain, r)) for r in expected]


def _plain(value: Any) -> Any:
    """Vectors as lists (pgvector gives numpy arrays, querykit ``Vector``)."""
    if isinstance(value, Vector):
        return value.to_list()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


async def test_raw_sql_without_parameters_keeps_psycopgs_cursor(ldb: Any) -> None:
    # Several statements in one: only the simple protocol runs them, every time.
    both = raw("UPDATE lean_item SET flag = flag WHERE id = 1; DELETE FROM lean_item WHERE id = 3")
    for _ in range(3):
        await ldb.execute(both)
    assert await ldb.scalars(select(item.c.id).order_by(item.c.id)) == [1, 2, 2**40]
    assert [s for _, s, _ in await ours(ldb) if "UPDATE" in s] == []


@dataclasses.dataclass
class Named:
    id: int
    name: str | None


async def test_as_rows_and_raw_sql(ldb: Any) -> None:
    q = ldb.prepare(select(item.c.id, item.c.name).where(eq(item.c.id, placeholder("id"))))
    for _ in range(2):
        assert await q.one(id=1, as_=Named) == Named(1, "one")
        # raw SQL with as_=: the columns' names come from psycopg's cursor
        r = raw("SELECT id, name FROM lean_item WHERE id = :id", id=2).returns(int, str)
        assert await ldb.one(r, as_=Named) == Named(2, None)
        assert await ldb.execute(raw("UPDATE lean_item SET name = name WHERE id < :n", n=3)) == 2


async def test_errors_are_the_cursors(ldb: Any, make_db: Any, url: str) -> None:
    cursor_only = await make_db(url, prepare=False)
    add = insert(item).values(id=placeholder("id"), name="dup")
    records: list[QueryRecord] = []
    ldb.on_query(records.append)
    errors = []
    for db in (ldb, cursor_only):
        for _ in range(2):  # the second on a prepared statement
            with pytest.raises(DatabaseError) as caught:
                await db.prepare(add).execute(id=1)
            errors.append(caught.value)
    assert {e.sqlstate for e in errors} == {"23505"}
    assert len({str(e) for e in errors}) == 1
    assert all(isinstance(e.__cause__, psycopg.errors.UniqueViolation) for e in errors)
    assert [r.error is not None for r in records] == [True, True]
    by_id = ldb.prepare(BY_ID)
    with pytest.raises(NoResultError):
        await by_id.one(id=99)
    with pytest.raises(MultipleResultsError):
        await ldb.prepare(select(item.c.id).where(gte(item.c.id, placeholder("id")))).one(id=1)
    assert records[-1].rowcount == 3 and records[-1].error is not None


async def test_statements_dropped_behind_psycopgs_back_are_prepared_again(
    make_db: Any, url: str, ldb: Any
) -> None:
    db = await make_db(url, max_size=1)
    by_id = db.prepare(BY_ID)
    assert (await by_id.one(id=1))[1] == "one"
    before = [name for name, _, _ in await ours(db)]
    records: list[QueryRecord] = []
    db.on_query(records.append)
    await db.execute(deallocate_behind_psycopgs_back())
    assert await ours(db) == []
    assert (await by_id.one(id=1))[1] == "one"  # 26000, prepared again, run again
    assert [r.error for r in records] == [None, None, None]  # one record for the rerun
    after = [name for name, _, _ in await ours(db)]
    assert after and not set(after) & set(before)

    # Inside a transaction the error stands (the transaction is aborted)...
    with pytest.raises(DatabaseError) as caught:
        async with db.transaction():
            await db.execute(deallocate_behind_psycopgs_back())
            await by_id.one(id=1)
    assert caught.value.sqlstate == "26000"
    # ... and the next use prepares anew, in a transaction and out of one
    async with db.transaction() as tx:
        assert (await tx.prepare(BY_ID).one(id=1))[1] == "one"
    assert (await by_id.one(id=1))[1] == "one"


async def test_deallocate_all_through_querykit_drops_querykits_statements(
    make_db: Any, url: str, ldb: Any
) -> None:
    db = await make_db(url, max_size=1)
    by_id = db.prepare(BY_ID)
    records: list[QueryRecord] = []
    db.on_query(records.append)
    for statement in ("DEALLOCATE ALL", "DISCARD ALL", "DEALLOCATE ALL"):
        assert (await by_id.one(id=1))[1] == "one"
        await db.execute(raw(statement))
        assert await ours(db) == []  # psycopg saw the command: querykit forgot its own
    assert (await by_id.one(id=1))[1] == "one"
    assert all(r.error is None for r in records)


async def test_a_failed_statement_in_a_transaction_then_rollback_then_reuse(
    make_db: Any, url: str, ldb: Any
) -> None:
    db = await make_db(url, max_size=1)
    by_id = db.prepare(BY_ID)
    add = db.prepare(insert(item).values(id=placeholder("id"), name="new"))
    assert (await by_id.one(id=1))[1] == "one"
    with pytest.raises(DatabaseError) as caught:
        async with db.transaction():
            await add.execute(id=10)
            with pytest.raises(DatabaseError) as duplicate:
                await add.execute(id=1)
            assert duplicate.value.sqlstate == "23505"
            await by_id.one(id=1)  # the transaction is aborted: psycopg's cursor says so
    assert caught.value.sqlstate == "25P02"
    assert await by_id.first(id=10) is None  # rolled back
    assert (await by_id.one(id=1))[1] == "one"
    assert await add.execute(id=10) == 1
    assert await db.scalar(raw("SELECT count(*) FROM lean_item").returns(int)) == 4

    # a failed savepoint inside a transaction: psycopg drops the prepared statements
    async with db.transaction():
        assert (await by_id.one(id=10))[1] == "new"
        with pytest.raises(DatabaseError):
            async with db.transaction():
                await add.execute(id=10)
        assert (await by_id.one(id=10))[1] == "new"  # prepared again inside the transaction
        await add.execute(id=11)
    assert (await by_id.one(id=11))[1] == "new"


async def test_a_column_type_change_reruns_outside_and_fails_inside(
    make_db: Any, url: str, ldb: Any
) -> None:
    db = await make_db(url, max_size=1)
    names = db.prepare(select(item.c.name).where(eq(item.c.id, placeholder("id"))))
    for _ in range(2):
        assert await names.one(id=1) == ("one",)
    assert any("lean_item.name" in s for _, s, _ in await ours(db))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE lean_item ALTER COLUMN name TYPE varchar(20)")
    assert await names.one(id=1) == ("one",)  # 0A000: prepared anew and run again
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE lean_item ALTER COLUMN name TYPE text")
    with pytest.raises(DatabaseError) as caught:
        async with db.transaction():
            await names.one(id=1)
    assert caught.value.sqlstate == "0A000"
    async with db.transaction():
        assert await names.one(id=1) == ("one",)


async def test_parameter_types_get_a_statement_each(make_db: Any, url: str, ldb: Any) -> None:
    db = await make_db(url, max_size=1)
    by_id = db.prepare(BY_ID)
    for _ in range(2):
        for key in (1, 2, 2**40, 70000):  # int2, int2, int8, int4 as psycopg dumps them
            found = await by_id.first(id=key)
            assert (found is None) == (key == 70000)
    types = sorted(t for _, s, t in await ours(db) if "lean_item.id = $1" in s)
    assert types == [["bigint"], ["integer"], ["smallint"]]


async def test_the_statements_of_a_connection_are_bounded(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=1)
    queries = [
        db.prepare(raw(f"SELECT :x::int + {k}", x=placeholder("x")).returns(int))
        for k in range(130)
    ]
    for _ in range(2):
        for k, q in enumerate(queries):
            assert await q.scalar(x=1) == 1 + k
    left = await ours(db)
    assert 90 <= len(left) <= 100  # psycopg's prepared_max; the rest were closed
    assert len({name for name, _, _ in left}) == len(left)


def test_threads_share_a_pool(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE lean_t (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO lean_t SELECT g, 'n' || g FROM generate_series(1, 500) g")
    t = sa.Table("lean_t", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("name", sa.Text))
    failures: list[BaseException] = []
    with querykit.connect(url, min_size=3, max_size=3) as db:
        by_id = db.prepare(select(t.c.name).where(eq(t.c.id, placeholder("id"))))

        def work(seed: int) -> None:
            try:
                for i in range(200):
                    key = (seed * 37 + i) % 500 + 1
                    assert by_id.scalar(id=key) == f"n{key}"
                    assert db.scalar(select(t.c.name).where(eq(t.c.id, key))) == f"n{key}"
                    if i % 50 == 0:
                        with db.transaction():
                            assert by_id.scalar(id=key) == f"n{key}"
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
