"""Running queries: the read methods, typed values, as_= classes, errors, the query log.

Every test runs twice, on ``Database`` and on ``AsyncDatabase`` (see conftest).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict

import psycopg
import pytest
import sqlalchemy as sa
from pgvector import Vector

from querykit import (
    CompileError,
    DatabaseError,
    DecodeError,
    ExecuteError,
    MappingError,
    MultipleResultsError,
    NoResultError,
    QueryRecord,
    ValidationError,
    count,
    delete,
    eq,
    find_many,
    fn,
    insert,
    placeholder,
    raw,
    select,
    update,
)
from schema import RunMetadata, Status, embedding, pipeline_run, pipeline_step

run = pipeline_run


async def add_runs(db: Any, n: int = 3) -> list[str]:
    rows = await db.all(
        insert(run)
        .values(
            [
                {
                    "name": f"run {i}",
                    "status": Status.FAILED if i % 2 else Status.COMPLETED,
                    "cost": Decimal(f"{i}.5"),
                    "duration": i * 1.25,
                    "metadata": {"topic": f"t{i}", "tags": ["a", "b"]},
                }
                for i in range(n)
            ]
        )
        .returning(run.c.id)
    )
    return [r[0] for r in rows]


# -- the read methods ----------------------------------------------------------------------


async def test_all_returns_typed_tuples(db: Any) -> None:
    await add_runs(db)
    rows = await db.all(
        select(run.c.name, run.c.status, run.c.cost, run.c.duration, run.c.metadata).order_by(
            run.c.name
        )
    )
    assert rows == [
        ("run 0", Status.COMPLETED, Decimal("0.500000"), 0.0, {"topic": "t0", "tags": ["a", "b"]}),
        ("run 1", Status.FAILED, Decimal("1.500000"), 1.25, {"topic": "t1", "tags": ["a", "b"]}),
        ("run 2", Status.COMPLETED, Decimal("2.500000"), 2.5, {"topic": "t2", "tags": ["a", "b"]}),
    ]
    assert all(type(r) is tuple for r in rows)
    assert isinstance(rows[0][1], Status)  # the Enum member, not its label
    assert type(rows[0][3]) is float  # Numeric(asdecimal=False)


async def test_one_first_scalar_scalars(db: Any) -> None:
    ids = await add_runs(db)
    assert await db.one(select(run.c.name).where(eq(run.c.id, ids[1]))) == ("run 1",)
    assert await db.first(select(run.c.name).where(eq(run.c.name, "nope"))) is None
    assert await db.first(select(run.c.name).order_by(run.c.name)) == ("run 0",)
    assert await db.scalar(select(count()).from_(run)) == 3
    assert await db.scalar(select(fn.sum(run.c.cost))) == Decimal("4.500000")
    assert await db.scalars(select(run.c.status).order_by(run.c.name)) == [
        Status.COMPLETED,
        Status.FAILED,
        Status.COMPLETED,
    ]
    assert await db.scalars(select(run.c.name).where(eq(run.c.name, "nope"))) == []


async def test_one_and_scalar_want_exactly_one_row(db: Any) -> None:
    await add_runs(db)
    with pytest.raises(NoResultError, match=r"one\(\) expected exactly one row and found none"):
        await db.one(select(run.c.id).where(eq(run.c.name, "nope")))
    with pytest.raises(MultipleResultsError, match="found 3") as info:
        await db.one(select(run.c.id))
    assert "SELECT pipeline_run.id FROM pipeline_run" in str(info.value)
    with pytest.raises(NoResultError, match=r"scalar\(\)"):
        await db.scalar(select(run.c.id).where(eq(run.c.name, "nope")))


async def test_execute_returns_the_rowcount(db: Any) -> None:
    await add_runs(db)
    assert (
        await db.execute(update(run).set(status=Status.RUNNING).where(eq(run.c.name, "run 1"))) == 1
    )
    assert await db.execute(update(run).set(status=Status.RUNNING).all_rows()) == 3
    assert await db.execute(delete(run).where(eq(run.c.name, "nope"))) == 0
    assert await db.execute(select(run.c.id)) == 3


async def test_update_or_delete_without_where_sends_nothing(db: Any) -> None:
    await add_runs(db)
    seen: list[QueryRecord] = []
    db.on_query(seen.append)
    for query in (update(run).set(name="gone"), delete(run)):
        with pytest.raises(CompileError, match=r"has no where\(\)"):
            await db.execute(query)
        with pytest.raises(CompileError, match=r"has no where\(\)"):
            db.prepare(query)
    assert seen == []  # refused before anything was sent
    assert await db.scalar(select(count()).from_(run).where(eq(run.c.name, "gone"))) == 0
    assert await db.execute(delete(run).all_rows()) == 3
    assert await db.scalar(select(count()).from_(run)) == 0


async def test_returning_rows_come_back_typed(db: Any) -> None:
    row = await db.one(
        insert(run)
        .values(name="x", status=Status.RUNNING, metadata={"topic": "t"})
        .returning(run.c.id, run.c.status, run.c.started_at, run.c.cost)
    )
    assert isinstance(row[0], str) and len(row[0]) == 24  # the cuid2 default
    assert row[1] is Status.RUNNING
    assert isinstance(row[2], dt.datetime) and row[2].tzinfo is not None
    assert row[3] == Decimal("0")


async def test_methods_that_read_rows_refuse_statements_without_rows(db: Any) -> None:
    with pytest.raises(ExecuteError, match=r"all\(\) needs a statement that returns rows"):
        await db.all(update(run).set(name="x").all_rows())
    assert await db.scalar(select(count()).from_(run)) == 0
    with pytest.raises(ExecuteError, match=r"one\(\) needs a statement that returns rows"):
        await db.one(raw("UPDATE pipeline_run SET name = 'x'"))


async def test_stream_reads_in_batches(db: Any) -> None:
    await add_runs(db, 25)
    names = [
        row
        async for row in db.stream(select(run.c.name, run.c.status).order_by(run.c.name), batch=4)
    ]
    assert len(names) == 25
    assert names[0] == ("run 0", Status.COMPLETED)
    # leaving early releases the connection
    gen = db.stream(select(run.c.name), batch=2)
    async for _ in gen:
        break
    await gen.aclose()
    assert await db.scalar(select(count()).from_(run)) == 25
    with pytest.raises(ExecuteError, match="batch"):
        db.stream(select(run.c.name), batch=0)


async def test_raw_statements(db: Any) -> None:
    await add_runs(db)
    q = raw("SELECT name, cost FROM pipeline_run WHERE cost > :min ORDER BY name", min=1).returns(
        str, Decimal
    )
    assert await db.all(q) == [("run 1", Decimal("1.500000")), ("run 2", Decimal("2.500000"))]
    assert await db.execute(raw("UPDATE pipeline_run SET name = name || '!'")) == 3
    assert await db.scalar(raw("SELECT count(*) FROM pipeline_run").returns(int)) == 3
    # percent signs in raw SQL are not placeholders
    assert await db.scalar(raw("SELECT 'a%b'").returns(str)) == "a%b"


async def test_vectors_and_json_payloads(db: Any) -> None:
    vec = [0.5] * 384
    await db.execute(
        insert(embedding).values(content="hello", embedding=vec, metadata={"lang": "en"})
    )
    content, emb, meta = await db.one(
        select(embedding.c.content, embedding.c.embedding, embedding.c.metadata)
    )
    assert (content, meta) == ("hello", {"lang": "en"})
    assert isinstance(emb, Vector) and emb.to_list() == vec
    nearest = await db.scalar(
        select(embedding.c.content).order_by(embedding.c.embedding.op("<->")([0.4] * 384)).limit(1)
    )
    assert nearest == "hello"


async def test_values_are_checked_before_sending(db: Any) -> None:
    with pytest.raises(ValidationError, match=r"pipeline_run.status: expected one of") as info:
        await db.all(select(run.c.id).where(eq(run.c.status, "nope")))  # type: ignore[misc]
    assert info.value.column == "pipeline_run.status"


async def test_with_settings_applies_to_that_query_only(db: Any) -> None:
    q = select(sa.func.current_setting("work_mem", type_=sa.Text)).with_settings(work_mem="1234kB")
    assert await db.scalar(q) == "1234kB"
    plain = select(sa.func.current_setting("work_mem", type_=sa.Text))
    default = await db.scalar(plain)
    assert default != "1234kB"
    async with db.transaction():
        assert await db.scalar(q) == "1234kB"
        assert await db.scalar(plain) == default  # restored inside the transaction too
        custom = select(sa.func.current_setting("querykit.x", True, type_=sa.Text))
        assert await db.scalar(custom.with_settings({"querykit.x": "7"})) == "7"
        assert await db.scalar(custom) in (None, "")
    rows = [r async for r in db.stream(q)]
    assert rows == [("1234kB",)]


@dataclasses.dataclass
class Settings2:
    work_mem: str
    x: str


async def test_several_settings_and_mapped_rows_outside_a_transaction(db: Any) -> None:
    # set_config runs on the query's own cursor, whose row factory is the query's
    q = select(
        sa.func.current_setting("work_mem", type_=sa.Text).label("work_mem"),
        sa.func.current_setting("querykit.x", True, type_=sa.Text).label("x"),
    ).with_settings({"work_mem": "2345kB", "querykit.x": "8"})
    assert await db.all(q, as_=Settings2) == [Settings2("2345kB", "8")]
    assert await db.one(q) == ("2345kB", "8")
    assert await db.scalar(select(sa.func.current_setting("work_mem", type_=sa.Text))) != "2345kB"


# -- as_= classes --------------------------------------------------------------------------


@dataclasses.dataclass
class RunDC:
    name: str
    status: Status
    note: str = "-"


class RunNT(NamedTuple):
    name: str
    status: Status


class RunTD(TypedDict):
    name: str
    status: Status


async def test_as_maps_rows_by_column_name(db: Any) -> None:
    await add_runs(db, 2)
    q = select(run.c.status, run.c.name).order_by(run.c.name)  # order differs from the fields
    assert await db.all(q, as_=RunDC) == [
        RunDC("run 0", Status.COMPLETED),
        RunDC("run 1", Status.FAILED),
    ]
    assert await db.first(q, as_=RunNT) == RunNT("run 0", Status.COMPLETED)
    assert await db.one(q.where(eq(run.c.name, "run 1")), as_=RunTD) == {
        "name": "run 1",
        "status": Status.FAILED,
    }
    streamed = [r async for r in db.stream(q, as_=RunNT)]
    assert streamed == [RunNT("run 0", Status.COMPLETED), RunNT("run 1", Status.FAILED)]
    labelled = select(run.c.name.label("name"), sa.literal("x").label("note"), run.c.status)
    assert (await db.all(labelled, as_=RunDC))[0].note == "x"
    assert await db.all(raw("SELECT 'a' AS name, 'FAILED' AS status"), as_=RunTD) == [
        {"name": "a", "status": "FAILED"}
    ]


async def test_as_names_the_mismatch(db: Any) -> None:
    await add_runs(db, 1)
    with pytest.raises(MappingError, match="no field for column cost") as info:
        await db.all(select(run.c.name, run.c.status, run.c.cost), as_=RunNT)
    assert "fields: name, status" in str(info.value)
    with pytest.raises(MappingError, match="no column for field status"):
        await db.all(select(run.c.name), as_=RunTD)
    with pytest.raises(
        MappingError, match="expected a dataclass, a NamedTuple, a TypedDict or a pydantic model"
    ):
        await db.all(select(run.c.name), as_=dict)
    with pytest.raises(MappingError, match="no field for column x"):
        await db.all(raw("SELECT 1 AS x"), as_=RunDC)


# -- errors ----------------------------------------------------------------------------------


async def test_database_errors_carry_sqlstate_sql_and_cause(db: Any, url: str) -> None:
    ids = await add_runs(db, 1)
    with pytest.raises(DatabaseError) as info:
        await db.execute(insert(run).values(id=ids[0], name="dup"))
    error = info.value
    assert error.sqlstate == "23505"
    assert error.sql is not None and error.sql.startswith("INSERT INTO pipeline_run")
    assert isinstance(error.__cause__, psycopg.errors.UniqueViolation)
    message = str(error)
    assert "duplicate key value violates unique constraint" in message
    assert "DETAIL: Key (id)=" in message
    assert "SQL: INSERT INTO pipeline_run" in message
    host_port_db = url.split("@", 1)[1]
    assert host_port_db in message
    # the database stays usable
    assert await db.scalar(select(count()).from_(run)) == 1


async def test_an_enum_label_the_schema_lacks_is_a_clear_error(db: Any) -> None:
    # A migration added a label; schema.py's Status does not have it yet.
    await db.execute(raw("ALTER TYPE status ADD VALUE 'PAUSED'"))
    ids = await add_runs(db, 1)
    await db.execute(raw("UPDATE pipeline_run SET status = 'PAUSED' WHERE id = :id", id=ids[0]))
    expected = "returned 'PAUSED' for enum type 'status', but Status has no such member"
    with pytest.raises(DecodeError, match=expected) as info:
        await db.all(select(run.c.id, run.c.status))
    assert "it has PENDING, RUNNING, COMPLETED, FAILED" in str(info.value)
    assert "add the label to Status in the schema" in str(info.value)
    with pytest.raises(DecodeError, match=expected):
        await db.all(find_many(run, columns=["id", "status"]))
    # the connection is still usable, and rows with known labels still decode
    await db.execute(raw("UPDATE pipeline_run SET status = 'FAILED'"))
    assert await db.scalar(select(run.c.status)) is Status.FAILED


async def test_errors_say_what_to_do(db: Any) -> None:
    with pytest.raises(
        DatabaseError, match="check the table name, and that migrations ran"
    ) as info:
        await db.all(raw("SELECT * FROM missing_table"))
    assert info.value.sqlstate == "42P01"


async def test_a_string_or_core_statement_is_a_clear_error(db: Any) -> None:
    with pytest.raises(CompileError, match=r"wrap SQL text in raw\(\)"):
        await db.all("SELECT 1")
    with pytest.raises(CompileError, match="got Select"):
        await db.all(sa.select(run.c.id))


async def test_placeholders_need_prepare(db: Any) -> None:
    with pytest.raises(CompileError, match=r"placeholder 'name'.*db.prepare"):
        await db.all(select(run.c.id).where(eq(run.c.name, placeholder("name"))))
    with pytest.raises(CompileError, match=r"placeholder 'x'.*db.prepare"):
        await db.all(raw("SELECT :x", x=placeholder("x")))


# -- the query log ----------------------------------------------------------------------------


async def test_on_query_receives_sql_params_duration_rowcount(db: Any) -> None:
    records: list[QueryRecord] = []
    masked: list[QueryRecord] = []
    stop = db.on_query(records.append)
    db.on_query(masked.append, mask_params=True)
    await add_runs(db, 2)
    await db.all(select(run.c.name).where(eq(run.c.name, "run 1")))
    with pytest.raises(DatabaseError):
        await db.all(raw("SELECT * FROM nope"))
    insert_record, select_record, failed = records
    assert insert_record.sql.startswith("INSERT INTO pipeline_run")
    assert insert_record.rowcount == 2
    assert select_record.params == ("run 1",)
    assert select_record.rowcount == 1
    assert select_record.duration > 0
    assert failed.rowcount == -1 and isinstance(failed.error, DatabaseError)
    assert masked[1].params == ("***",)
    assert masked[1].sql == select_record.sql
    assert "@" not in select_record.target and ":" in select_record.target
    stop()
    await db.all(select(run.c.name))
    assert len(records) == 3 and len(masked) == 4


async def test_a_failing_callback_does_not_break_queries(
    db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: QueryRecord) -> None:
        raise RuntimeError("boom")

    db.on_query(broken)
    with caplog.at_level(logging.ERROR, logger="querykit"):
        assert await db.scalar(select(count()).from_(run)) == 0
    assert "on_query callback" in caplog.text


async def test_querykit_log_env_logs_masked_queries(
    make_db: Any, url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QUERYKIT_LOG", "1")
    secret_url = url.replace("postgres@", "postgres:hunter2@", 1)
    qk_logger = logging.getLogger("querykit")
    level = qk_logger.level
    try:
        db = await make_db(secret_url)  # the shortcut sets the querykit logger to DEBUG
        assert qk_logger.level == logging.DEBUG or level != logging.NOTSET
        await db.all(select(run.c.id).where(eq(run.c.name, "secret-value")))
    finally:
        qk_logger.setLevel(level)
    text = caplog.text
    assert "SELECT pipeline_run.id" in text and "1 rows" not in text and "0 rows" in text
    assert "secret-value" not in text and "['***']" in text
    assert "hunter2" not in text


async def test_the_querykit_logger_at_debug_logs_statements_without_the_env_var(
    db: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("QUERYKIT_LOG", raising=False)
    with caplog.at_level(logging.INFO, logger="querykit"):
        await db.all(select(run.c.id).where(eq(run.c.name, "quiet")))
    assert "pipeline_run" not in caplog.text  # INFO: statements are not logged
    with caplog.at_level(logging.DEBUG, logger="querykit"):  # set after the db was opened
        await db.all(select(run.c.id).where(eq(run.c.name, "loud")))
        with pytest.raises(DatabaseError):
            await db.all(raw("SELECT nope FROM pipeline_run"))
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.name == "querykit"]
    assert len(debug) == 2, [r.getMessage() for r in debug]
    assert "0 rows: SELECT pipeline_run.id" in debug[0].getMessage()
    assert "['***']" in debug[0].getMessage() and "loud" not in caplog.text
    assert "failed: SELECT nope FROM pipeline_run" in debug[1].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="querykit"):  # turned off again at once
        await db.all(select(run.c.id))
    assert caplog.records == []


async def test_join_rows_from_two_tables(db: Any) -> None:
    ids = await add_runs(db, 1)
    await db.execute(insert(pipeline_step).values(run_id=ids[0], name="s1", tokens=5))
    row = await db.one(
        select(run.c.name, pipeline_step.c.name, pipeline_step.c.tokens)
        .from_(run)
        .join(pipeline_step, eq(pipeline_step.c.run_id, run.c.id))
    )
    assert row == ("run 0", "s1", 5)


async def test_metadata_payloads_round_trip(db: Any) -> None:
    payload: RunMetadata = {"topic": "ü ☃", "source": "x", "tags": []}
    rid = await db.scalar(insert(run).values(name="p", metadata=payload).returning(run.c.id))
    assert await db.scalar(select(run.c.metadata).where(eq(run.c.id, rid))) == payload
    assert await db.scalar(select(run.c.ended_at).where(eq(run.c.id, rid))) is None
