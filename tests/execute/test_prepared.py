"""Prepared statements: automatic for repeated shapes, and db.prepare() with placeholders."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from querykit import (
    CompileError,
    DatabaseError,
    ValidationError,
    count,
    cuid,
    eq,
    gt,
    insert,
    placeholder,
    raw,
    select,
    update,
)
from querykit import (
    compile as qk_compile,
)
from schema import Status, pipeline_run

run = pipeline_run


async def prepared_statements(db: Any) -> list[str]:
    """The statements prepared on the connection that serves the query (pool of one)."""
    rows = await db.scalars(raw("SELECT statement FROM pg_prepared_statements").returns(str))
    return list(rows)


async def test_repeated_shapes_are_prepared_automatically(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=1)
    q = select(run.c.name).where(eq(run.c.name, "x"))
    await db.all(q)
    assert not any("pipeline_run.name = $1" in s for s in await prepared_statements(db))
    await db.all(select(run.c.name).where(eq(run.c.name, "y")))  # same shape, new value
    assert any("pipeline_run.name = $1" in s for s in await prepared_statements(db))


async def test_prepare_false_never_prepares(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=1, prepare=False)
    by_name = db.prepare(select(run.c.id).where(eq(run.c.name, placeholder("name"))))
    for name in ("a", "b", "c"):
        await db.all(select(run.c.name).where(eq(run.c.name, name)))
        assert await by_name.all(name=name) == []
    assert await prepared_statements(db) == []


async def test_prepare_fills_placeholders(db: Any) -> None:
    rids = [
        await db.scalar(insert(run).values(name=f"r{i}", cost=Decimal(i)).returning(run.c.id))
        for i in range(4)
    ]
    by_id = db.prepare(select(run.c.name, run.c.cost).where(eq(run.c.id, placeholder("id", str))))
    assert await by_id.one(id=rids[2]) == ("r2", Decimal("2.000000"))
    assert await by_id.first(id="nope") is None
    assert by_id.sql.endswith("WHERE pipeline_run.id = %s")
    costly = db.prepare(
        select(run.c.name).where(gt(run.c.cost, placeholder("min"))).order_by(run.c.name)
    )
    assert await costly.scalars(min=1) == ["r2", "r3"]
    assert await costly.all(min=Decimal("2.5")) == [("r3",)]
    assert [r async for r in costly.stream(min=0, batch=1)] == [("r1",), ("r2",), ("r3",)]
    counter = db.prepare(select(count()).from_(run).where(gt(run.c.cost, placeholder("min"))))
    assert await counter.scalar(min=0) == 3
    rename = db.prepare(
        update(run).set(name=placeholder("new")).where(eq(run.c.id, placeholder("id")))
    )
    assert await rename.execute(new="renamed", id=rids[0]) == 1
    assert await by_id.one(id=rids[0]) == ("renamed", Decimal("0.000000"))


async def test_prepare_skips_building_and_compiling(db: Any) -> None:
    by_name = db.prepare(select(run.c.id).where(eq(run.c.name, placeholder("name"))))
    before = qk_compile.cache_info()
    for name in ("a", "b", "c"):
        await by_name.all(name=name)
    after = qk_compile.cache_info()
    assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])


async def test_placeholders_in_inserts_with_fixed_values(db: Any) -> None:
    add = db.prepare(
        insert(run)
        .values(
            id=placeholder("id"),
            name=placeholder("name"),
            status=Status.RUNNING,
            metadata=placeholder("meta"),
        )
        .returning(run.c.name, run.c.status, run.c.metadata)
    )
    assert await add.one(id=cuid(), name="a", meta={"topic": "x"}) == (
        "a",
        Status.RUNNING,
        {"topic": "x"},
    )
    assert await add.one(id=cuid(), name="b", meta=None) == ("b", Status.RUNNING, None)


async def test_a_prepared_insert_makes_python_defaults_anew_at_each_call(db: Any) -> None:
    # run.id has default=cuid2: each call gets a fresh id, as a query built per call would.
    add = db.prepare(insert(run).values(name=placeholder("name")).returning(run.c.id))
    first, second = await add.scalar(name="a"), await add.scalar(name="b")
    assert first != second and len(first) == len(second) == 24
    rows = await db.all(select(run.c.id, run.c.name).order_by(run.c.name))
    assert rows == [(first, "a"), (second, "b")]
    # the hidden defaults are not among the values a call takes
    with pytest.raises(CompileError, match=r"missing name \(it takes name\)"):
        await add.scalar()
    # a value given in values() stays as given
    fixed = db.prepare(insert(run).values(id="fixed", name=placeholder("name")).returning(run.c.id))
    assert await fixed.scalar(name="c") == "fixed"
    # several rows: a fresh default in each row, at each call
    two = db.prepare(
        insert(run)
        .values([{"name": placeholder("x")}, {"name": placeholder("y")}])
        .returning(run.c.id)
    )
    made = await two.scalars(x="d", y="e") + await two.scalars(x="f", y="g")
    assert len(set(made) | {first, second, "fixed"}) == 7


@dataclasses.dataclass
class Named:
    name: str


async def test_prepared_as_mapping(db: Any) -> None:
    await db.execute(insert(run).values(name="a"))
    q = db.prepare(select(run.c.name).where(eq(run.c.name, placeholder("name"))))
    assert await q.all(name="a", as_=Named) == [Named("a")]
    assert await q.one(name="a", as_=Named) == Named("a")


async def test_placeholder_names_are_checked(db: Any) -> None:
    q = db.prepare(
        select(run.c.id).where(
            eq(run.c.name, placeholder("name")), gt(run.c.cost, placeholder("min"))
        )
    )
    with pytest.raises(CompileError, match=r"missing min \(it takes min, name\)"):
        await q.all(name="x")
    with pytest.raises(CompileError, match="unknown other"):
        await q.all(name="x", min=1, other=2)
    with pytest.raises(CompileError, match="missing min; unknown other"):
        await q.all(name="x", other=2)  # as many names as it takes, one of them wrong
    with pytest.raises(CompileError, match="Python identifier"):
        placeholder("not a name")
    with pytest.raises(CompileError, match="taken"):
        placeholder("as_")


async def test_placeholder_values_are_checked(db: Any) -> None:
    typed = db.prepare(select(run.c.id).where(eq(run.c.id, placeholder("id", str))))
    with pytest.raises(ValidationError, match="placeholder 'id': expected str, got int"):
        await typed.all(id=5)
    by_status = db.prepare(select(run.c.id).where(eq(run.c.status, placeholder("status"))))
    with pytest.raises(ValidationError, match=r"pipeline_run\.status: expected one of"):
        await by_status.all(status="BROKEN")
    assert await by_status.all(status=Status.FAILED) == []
    with pytest.raises(ValidationError, match=r"pipeline_run\.name"):
        db.prepare(select(run.c.id).where(eq(run.c.name, 5), eq(run.c.id, placeholder("id"))))  # type: ignore[misc]


async def test_placeholders_page_with_limit_and_offset(db: Any) -> None:
    await db.execute(insert(run).values([{"name": f"run {i:02}"} for i in range(10)]))
    page = db.prepare(
        select(run.c.name)
        .order_by(run.c.name)
        .limit(placeholder("size", int))
        .offset(placeholder("skip", int))
    )
    assert page.sql.endswith("LIMIT %s OFFSET %s")  # one statement serves every page
    assert await page.scalars(size=3, skip=0) == ["run 00", "run 01", "run 02"]
    assert await page.scalars(size=2, skip=8) == ["run 08", "run 09"]
    with pytest.raises(ValidationError, match="placeholder 'size': expected int, got str"):
        await page.scalars(size="3", skip=0)
    with pytest.raises(DatabaseError, match="LIMIT must not be negative"):
        await page.scalars(size=-1, skip=0)
    with pytest.raises(CompileError, match=r"run it through db\.prepare"):
        await db.all(select(run.c.name).limit(placeholder("size", int)))
    with pytest.raises(CompileError, match="or a placeholder\\(name, int\\)"):
        select(run.c.name).limit(placeholder("size", str))  # type: ignore[arg-type]


async def test_placeholders_in_raw_sql(db: Any) -> None:
    await db.execute(insert(run).values(name="a", cost=Decimal(3)))
    q = db.prepare(
        raw("SELECT name FROM pipeline_run WHERE cost > :min", min=placeholder("min")).returns(str)
    )
    assert await q.scalars(min=1) == ["a"]
    assert await q.scalars(min=5) == []
