"""Bulk writes: insert_many by binary COPY (or INSERT), upsert_many, and the row checks."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from pgvector import Vector

from querykit import (
    ArgumentError,
    DatabaseError,
    QueryRecord,
    SchemaError,
    ValidationError,
    count,
    select,
    vector,
)
from querykit.execute.bulk import BulkJob
from schema import Status, embedding, pipeline_run, pipeline_step

run = pipeline_run
step = pipeline_step


def vec(seed: float) -> list[float]:
    return [seed] * 384


async def test_insert_many_copies_rows_with_defaults(db: Any) -> None:
    records: list[QueryRecord] = []
    db.on_query(records.append)
    n = await db.insert_many(
        run,
        [
            {
                "name": f"r{i}",
                "status": Status.FAILED,
                "cost": Decimal(i),
                "metadata": {"topic": "x"},
            }
            for i in range(50)
        ],
    )
    assert n == 50
    rows = await db.all(select(run.c.id, run.c.status, run.c.started_at).order_by(run.c.name))
    assert len({r[0] for r in rows}) == 50  # a fresh cuid per row
    assert all(r[1] is Status.FAILED and r[2].tzinfo is not None for r in rows)
    assert records[0].sql.startswith(
        'COPY "pipeline_run" ("id", "name", "status", "cost", "metadata")'
    )
    assert records[0].rowcount == 50


async def test_insert_many_vectors_and_json(db: Any) -> None:
    rows = [
        {"content": "a", "embedding": vec(0.25), "metadata": {"k": [1, 2]}},
        {"content": "b", "embedding": Vector(vec(0.5)), "metadata": {}},
    ]
    assert await db.insert_many(embedding, rows) == 2
    got = await db.all(
        select(embedding.c.content, embedding.c.embedding, embedding.c.metadata).order_by(
            embedding.c.content
        )
    )
    assert got == [("a", Vector(vec(0.25)), {"k": [1, 2]}), ("b", Vector(vec(0.5)), {})]
    ids = await db.scalars(select(embedding.c.id).order_by(embedding.c.id))
    assert ids == [1, 2]  # the serial default, in the order given


async def test_columns_may_be_given_as_column_objects(db: Any) -> None:
    assert await db.insert_many(run, [{run.c.name: "a"}, {run.c.name: "b"}]) == 2
    assert await db.scalars(select(run.c.name).order_by(run.c.name)) == ["a", "b"]


async def test_empty_input_writes_nothing_and_generators_work(db: Any) -> None:
    assert await db.insert_many(run, []) == 0
    assert await db.insert_many(run, iter([])) == 0
    assert await db.insert_many(run, ({"name": f"g{i}"} for i in range(3))) == 3


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"name": "x", "nope": 1},
            r"row 2: pipeline_run has no column 'nope'; valid columns: id, name",
        ),
        ({"name": None}, r"row 2, column name: None \(NULL\) in a NOT NULL column"),
        ({"name": "x", "status": "LOST"}, r"row 2, column status: expected one of PENDING"),
        ({"name": "x", "cost": "cheap"}, r"row 2, column cost: expected a Decimal"),
        ({"name": 5}, r"row 2, column name: expected a str, got 5 \(int\)"),
        (
            {"name": "x", "started_at": "yesterday"},
            r"row 2, column started_at: expected a datetime",
        ),
        ({"status": Status.FAILED}, r"row 2, column name: missing, and the column is NOT NULL"),
    ],
)
async def test_a_bad_row_names_its_index_and_nothing_is_written(
    db: Any, bad: dict[str, Any], message: str
) -> None:
    rows = [{"name": "ok 0"}, {"name": "ok 1"}, bad, {"name": "ok 3"}]
    with pytest.raises(ValidationError, match=message) as info:
        await db.insert_many(run, rows)
    assert info.value.row == 2
    assert await db.scalar(select(count()).from_(run)) == 0


async def test_a_bad_row_late_in_a_big_batch_writes_nothing(db: Any) -> None:
    rows: list[dict[str, Any]] = [{"content": str(i), "embedding": vec(0.1)} for i in range(5000)]
    rows[4321]["embedding"] = vec(0.1)[:-1]
    with pytest.raises(
        ValidationError, match=r"row 4321, column embedding: expected 384 dimensions"
    ):
        await db.insert_many(embedding, rows)
    rows[4321]["embedding"] = [math.nan] * 384
    with pytest.raises(
        ValidationError, match="row 4321, column embedding: vector component 0 is nan"
    ):
        await db.insert_many(embedding, rows)
    assert await db.scalar(select(count()).from_(embedding)) == 0


async def test_missing_not_null_column_is_found_before_anything_runs(db: Any) -> None:
    with pytest.raises(ValidationError, match="row 0, column content: missing"):
        await db.insert_many(embedding, [{"embedding": vec(0.1)}])


async def test_server_errors_during_copy_name_the_row(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("ALTER TABLE pipeline_run ADD CONSTRAINT short_name CHECK (length(name) < 5)")
    rows = [{"name": "ok"}, {"name": "ok"}, {"name": "ok"}, {"name": "far too long"}]
    with pytest.raises(DatabaseError, match="at row 3 of the rows given") as info:
        await db.insert_many(run, rows)
    assert info.value.sqlstate == "23514"
    assert await db.scalar(select(count()).from_(run)) == 0


async def test_expressions_fall_back_to_insert(db: Any) -> None:
    records: list[QueryRecord] = []
    db.on_query(records.append)
    later = sa.func.now() + sa.text("interval '1 day'")
    rows = [{"name": "a", "ended_at": later}, {"name": "b", "ended_at": None}]
    assert await db.insert_many(run, rows) == 2
    ended = await db.scalars(select(run.c.ended_at).order_by(run.c.name))
    assert ended[0] is not None and ended[0] > dt.datetime.now(dt.UTC) and ended[1] is None
    assert [r.sql.split(" ")[0] for r in records] == ["INSERT", "SELECT"]


async def test_rows_leaving_out_a_server_default_fall_back_to_insert(db: Any) -> None:
    records: list[QueryRecord] = []
    db.on_query(records.append)
    rows = [{"name": "a", "status": Status.FAILED}, {"name": "b"}]  # b gets the server default
    assert await db.insert_many(run, rows) == 2
    assert await db.scalars(select(run.c.status).order_by(run.c.name)) == [
        Status.FAILED,
        Status.PENDING,
    ]
    assert records[0].sql.startswith("INSERT INTO pipeline_run")
    # a nullable column without a default that some rows leave out is NULL: COPY applies
    records.clear()
    assert await db.insert_many(run, [{"name": "c", "ended_at": None}, {"name": "d"}]) == 2
    assert records[0].sql.startswith("COPY")


async def test_inside_a_transaction_it_is_a_savepoint(db: Any) -> None:
    async with db.transaction() as tx:
        await tx.insert_many(run, [{"name": "kept"}])
        with pytest.raises(ValidationError):
            await db.insert_many(run, [{"name": "gone"}, {"name": None}])
        assert await db.scalar(select(count()).from_(run)) == 1
    assert await db.scalars(select(run.c.name)) == ["kept"]


async def test_upsert_many_updates_and_inserts(db: Any) -> None:
    await db.insert_many(
        run, [{"id": "a", "name": "old a", "cost": 1}, {"id": "b", "name": "old b"}]
    )
    n = await db.upsert_many(
        run,
        [{"id": "a", "name": "new a", "cost": 5}, {"id": "c", "name": "new c", "cost": 7}],
        conflict=["id"],
    )
    assert n == 2
    assert await db.all(select(run.c.id, run.c.name, run.c.cost).order_by(run.c.id)) == [
        ("a", "new a", Decimal("5.000000")),
        ("b", "old b", Decimal("0.000000")),
        ("c", "new c", Decimal("7.000000")),
    ]
    # only the named columns are updated
    await db.upsert_many(
        run, [{"id": "a", "name": "ignored", "cost": 9}], conflict="id", update=["cost"]
    )
    assert await db.one(select(run.c.name, run.c.cost).where(run.c.id == "a")) == (
        "new a",
        Decimal("9.000000"),
    )
    # update=() skips existing rows
    n = await db.upsert_many(
        run, [{"id": "a", "name": "x"}, {"id": "d", "name": "new d"}], conflict=["id"], update=()
    )
    assert n == 1
    assert await db.scalar(select(run.c.name).where(run.c.id == "a")) == "new a"
    # twice in one transaction: the temporary tables do not collide
    async with db.transaction():
        await db.upsert_many(run, [{"id": "e", "name": "e"}], conflict=["id"])
        await db.upsert_many(run, [{"id": "e", "name": "e2"}], conflict=["id"])
    assert await db.scalar(select(run.c.name).where(run.c.id == "e")) == "e2"


async def test_upsert_many_leaves_python_defaults_out_of_the_update(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("CREATE UNIQUE INDEX run_name ON pipeline_run (name)")
    await db.insert_many(run, [{"name": "a", "cost": 1}])
    first_id = await db.scalar(select(run.c.id))
    # the rows do not give id: its cuid default fills new rows and never overwrites old ones
    assert (
        await db.upsert_many(run, [{"name": "a", "cost": 2}, {"name": "b"}], conflict=["name"]) == 2
    )
    assert await db.all(select(run.c.name, run.c.cost).order_by(run.c.name)) == [
        ("a", Decimal("2.000000")),
        ("b", Decimal("0.000000")),
    ]
    assert await db.scalar(select(run.c.id).where(run.c.name == "a")) == first_id


async def test_upsert_many_vectors_through_the_temporary_table(db: Any) -> None:
    await db.insert_many(embedding, [{"id": 1, "content": "a", "embedding": vec(0.1)}])
    rows = [
        {"id": 1, "content": "a2", "embedding": vec(0.2)},
        {"id": 2, "content": "b", "embedding": vec(0.3)},
    ]
    assert await db.upsert_many(embedding, rows, conflict=["id"]) == 2
    assert await db.all(
        select(embedding.c.content, embedding.c.embedding).order_by(embedding.c.id)
    ) == [
        ("a2", Vector(vec(0.2))),
        ("b", Vector(vec(0.3))),
    ]


async def test_upsert_many_checks_its_arguments(db: Any) -> None:
    rows = [{"id": "a", "name": "1"}, {"id": "b", "name": "2"}, {"id": "a", "name": "3"}]
    with pytest.raises(
        ValidationError, match=r"row 2 repeats the conflict key \(id\) = \('a',\) of row 0"
    ):
        await db.upsert_many(run, rows, conflict=["id"])
    with pytest.raises(ArgumentError, match="conflict column id is not in the rows"):
        await db.upsert_many(run, [{"name": "x"}], conflict=["id"])
    with pytest.raises(SchemaError, match="conflict column 'nope' is not a column of pipeline_run"):
        await db.upsert_many(run, [{"name": "x"}], conflict=["nope"])
    with pytest.raises(ArgumentError, match="give conflict="):
        await db.upsert_many(run, [{"name": "x"}], conflict=[])
    with pytest.raises(ArgumentError, match="update column cost is not in the rows"):
        await db.upsert_many(run, [{"id": "a", "name": "x"}], conflict=["id"], update=["cost"])
    assert await db.scalar(select(count()).from_(run)) == 0


async def test_upsert_many_falls_back_to_insert_on_conflict(db: Any) -> None:
    await db.insert_many(run, [{"id": "a", "name": "old"}])
    rows = [
        {"id": "a", "name": "new", "ended_at": sa.func.now()},
        {"id": "b", "name": "b", "ended_at": None},
    ]
    assert await db.upsert_many(run, rows, conflict=["id"]) == 2
    assert await db.all(select(run.c.id, run.c.name).order_by(run.c.id)) == [
        ("a", "new"),
        ("b", "b"),
    ]


def test_bulk_job_explains_when_copy_cannot_apply() -> None:
    meta = sa.MetaData()
    t = sa.Table(
        "t",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tags", sa.ARRAY(sa.Enum(Status, name="status"))),
        sa.Column("v", vector(3)),
        sa.Column("addr", sa.dialects.postgresql.INET),
    )
    assert BulkJob(t, [{"id": 1, "v": [1, 2, 3]}]).reason is None
    assert "tags" in (BulkJob(t, [{"id": 1, "tags": [Status.FAILED]}]).reason or "")
    assert "addr" in (BulkJob(t, [{"id": 1, "addr": "127.0.0.1"}]).reason or "")
    with pytest.raises(ArgumentError, match="takes a list of rows"):
        BulkJob(t, {"id": 1})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="row 1: expected a mapping"):
        BulkJob(t, [{"id": 1}, (2,)])  # type: ignore[list-item]


async def test_all_the_scalar_types_by_copy(db: Any, admin: psycopg.Connection[Any]) -> None:
    admin.execute(
        "CREATE TABLE typed (id int PRIMARY KEY, n numeric, f float8, r real, ts timestamptz,"
        " t timestamp, d date, tm time, ttz timetz, iv interval, u uuid, b bytea, j jsonb,"
        " arr int[], tarr text[], narr numeric[], flag bool, big bigint, small smallint)"
    )
    meta = sa.MetaData()
    typed = sa.Table(
        "typed",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("n", sa.Numeric),
        sa.Column("f", sa.Double),
        sa.Column("r", sa.REAL),
        sa.Column("ts", sa.DateTime(timezone=True)),
        sa.Column("t", sa.DateTime),
        sa.Column("d", sa.Date),
        sa.Column("tm", sa.Time),
        sa.Column("ttz", sa.Time(timezone=True)),
        sa.Column("iv", sa.dialects.postgresql.INTERVAL),
        sa.Column("u", sa.Uuid),
        sa.Column("b", sa.LargeBinary),
        sa.Column("j", sa.dialects.postgresql.JSONB),
        sa.Column("arr", sa.ARRAY(sa.Integer)),
        sa.Column("tarr", sa.ARRAY(sa.Text)),
        sa.Column("narr", sa.ARRAY(sa.Numeric)),
        sa.Column("flag", sa.Boolean),
        sa.Column("big", sa.BigInteger),
        sa.Column("small", sa.SmallInteger),
    )
    utc = dt.UTC
    u = uuid.uuid4()
    row = {
        "id": 1,
        "n": 0.1 + 0.2,  # a float into numeric: its shortest exact form, all 17 digits
        "f": Decimal("1.5"),
        "r": 0.5,
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=utc),
        "t": dt.datetime(2024, 1, 2, 3, 4, 5),
        "d": dt.date(2024, 2, 29),
        "tm": dt.time(23, 59, 59, 999999),
        "ttz": dt.time(1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "iv": dt.timedelta(days=-3, seconds=5, microseconds=7),
        "u": str(u),
        "b": b"\x00\xff",
        "j": {"a": [1, 2.5, None, "x"]},
        "arr": [1, None, 3],
        "tarr": ["a", "ü"],
        "narr": [Decimal("1.25"), Decimal(2)],
        "flag": True,
        "big": 2**62,
        "small": -5,
    }
    assert BulkJob(typed, [row]).reason is None  # every one of these types goes by COPY
    assert await db.insert_many(typed, [row]) == 1
    via_insert = {**row, "id": 2}
    await db.execute(sa_insert(typed, via_insert))
    got = await db.all(select(typed).order_by(typed.c.id))
    copied, inserted = got
    assert copied[1:] == inserted[1:]  # COPY and INSERT store the same values
    assert copied[1] == Decimal("0.30000000000000004") == Decimal(repr(0.1 + 0.2))
    assert copied[10] == u
    # a naive datetime for timestamptz is refused the same way on both paths
    naive = {"id": 3, "ts": dt.datetime(2024, 1, 1, 12)}
    with pytest.raises(ValidationError, match=r"row 0, column ts: .* naive datetime"):
        await db.insert_many(typed, [naive])
    with pytest.raises(ValidationError, match=r"ts: .* naive datetime"):
        await db.execute(sa_insert(typed, naive))


async def test_number_arrays_with_mixed_item_types(db: Any, admin: psycopg.Connection[Any]) -> None:
    # psycopg dumps only lists of one Python type; an array column takes ints, floats and
    # Decimals together, as its scalar column does, through the builder and through COPY.
    admin.execute("CREATE TABLE nums (id int PRIMARY KEY, n numeric[], f float8[])")
    nums = sa.Table(
        "nums",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("n", sa.ARRAY(sa.Numeric)),
        sa.Column("f", sa.ARRAY(sa.Double)),
    )
    row = {"n": [Decimal("1.25"), 2, 0.1 + 0.2, None], "f": [1.5, 2, Decimal("0.5"), None]}
    await db.execute(sa_insert(nums, {"id": 1, **row}))
    assert await db.insert_many(nums, [{"id": 2, **row}]) == 1
    got = await db.all(select(nums.c.n, nums.c.f).order_by(nums.c.id))
    exact = Decimal(repr(0.1 + 0.2))  # a float into numeric: its shortest exact form
    expected = ([Decimal("1.25"), Decimal(2), exact, None], [1.5, 2.0, 0.5, None])
    assert got == [expected, expected]
    assert [type(x) for x in got[0][1][:3]] == [float, float, float]


def sa_insert(table: sa.Table, row: dict[str, Any]) -> Any:
    from querykit import insert

    return insert(table).values(row)


async def test_upsert_many_never_writes_a_column_a_row_left_out(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    stored = [
        {"id": "a", "name": "a", "status": Status.FAILED, "cost": 3, "ended_at": None},
        {"id": "b", "name": "b", "status": Status.RUNNING, "cost": 4},
        {"id": "c", "name": "c", "status": Status.COMPLETED, "cost": 5},
    ]
    await db.insert_many(run, stored)
    rows = [
        {"id": "a", "name": "a2", "cost": 30},  # leaves out status
        {"id": "b", "name": "b2", "status": Status.FAILED},  # leaves out cost
        {"id": "c", "name": "c2"},  # leaves out both
        {"id": "d", "name": "d"},  # new: the server defaults apply
    ]
    assert await db.upsert_many(run, rows, conflict=["id"]) == 4
    # the oracle: the table as the server holds it, read by hand-written SQL
    got = admin.execute("SELECT id, name, status::text, cost FROM pipeline_run ORDER BY id")
    assert got.fetchall() == [
        ("a", "a2", "FAILED", Decimal("30.000000")),
        ("b", "b2", "FAILED", Decimal("4.000000")),
        ("c", "c2", "COMPLETED", Decimal("5.000000")),
        ("d", "d", "PENDING", Decimal("0.000000")),
    ]
    # an explicit update= list updates, per row, only the listed columns that row gives
    rows = [
        {"id": "a", "cost": 31, "name": "x"},
        {"id": "b", "name": "y", "status": Status.PENDING},
    ]
    await db.upsert_many(run, rows, conflict=["id"], update=["cost", "status"])
    got = admin.execute("SELECT id, name, status::text, cost FROM pipeline_run ORDER BY id")
    assert got.fetchall()[:2] == [
        ("a", "a2", "FAILED", Decimal("31.000000")),
        ("b", "b2", "PENDING", Decimal("4.000000")),
    ]
    # a part's errors name the row by its index in the caller's list
    rows = [{"id": "a", "name": "a"}, {"id": "b", "status": Status.PENDING, "name": None}]
    with pytest.raises(ValidationError, match="row 1, column name: None"):
        await db.upsert_many(run, rows, conflict=["id"])


async def test_server_errors_name_the_row_that_holds_the_key(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    await db.insert_many(run, [{"id": "r1", "name": "a"}, {"id": "r2", "name": "b"}])
    steps = [{"run_id": "r1", "name": "s"}] * 3 + [{"run_id": "nope", "name": "s"}]
    # COPY: the foreign key is checked at the end of the COPY, the detail gives the key
    with pytest.raises(
        DatabaseError, match=r"\(run_id\)=\(nope\).*at row 3 of the rows given"
    ) as info:
        await db.insert_many(step, steps)
    assert (info.value.sqlstate, info.value.row) == ("23503", 3)
    # the INSERT fallback (a SQL expression in a row): a unique violation in the second chunk
    rows = [{"id": f"n{i}", "name": "x", "ended_at": sa.func.now()} for i in range(1500)]
    rows[1234]["id"] = "r2"
    with pytest.raises(DatabaseError, match="at row 1234 of the rows given") as info:
        await db.insert_many(run, rows)
    assert (info.value.sqlstate, info.value.row) == ("23505", 1234)
    # upsert_many: the INSERT ... SELECT from the temporary table; and its parts
    rows = [{"id": "s1", "run_id": "r1", "name": "a"}, {"id": "s2", "run_id": "zz", "name": "b"}]
    with pytest.raises(DatabaseError, match="at row 1 of the rows given") as info:
        await db.upsert_many(step, rows, conflict=["id"])
    assert info.value.row == 1
    rows = [  # two column sets: two statements, the second one fails
        {"id": "s1", "run_id": "r1", "name": "a", "model": "m"},
        {"id": "s2", "run_id": "zz", "name": "b"},
    ]
    with pytest.raises(DatabaseError, match="at row 1 of the rows given") as info:
        await db.upsert_many(step, rows, conflict=["id"])
    assert info.value.row == 1
    assert admin.execute("SELECT count(*) FROM pipeline_step").fetchone() == (0,)
    assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (2,)
