"""Value rules: every value is checked once, in codecs, the same way on every path.

The paths: the insert builder and other builder values, placeholders of
``db.prepare``, ``insert_many`` (binary COPY), its INSERT fallback and
``upsert_many``. A value that does not fit is a ``ValidationError`` naming the
column (and the row, for bulk writes), raised before anything is sent: the
table stays empty. Values that are stored come back exactly (see the README's
value table), checked against what the server itself holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypedDict

import psycopg
import pytest
import sqlalchemy as sa
from pgvector import SparseVector
from sqlalchemy.dialects import postgresql

from querykit import (
    CompileError,
    DecodeError,
    ValidationError,
    eq,
    find_many,
    has_key,
    include,
    insert,
    json_path_text,
    like,
    matches,
    placeholder,
    raw,
    select,
    sparsevec,
    tsvector_column,
)
from querykit.columns import jsonb

from .conftest import schema_ddl


@dataclasses.dataclass
class Usage:
    tokens: int
    model: str
    cost: float = 0.0


class Scores(TypedDict, total=False):
    best: float
    runs: int


meta = sa.MetaData()
holder = sa.Table("holder", meta, sa.Column("id", sa.Integer, primary_key=True))
vals = sa.Table(
    "item",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder_id", sa.ForeignKey("holder.id")),
    sa.Column("name", sa.Text),
    sa.Column("code", sa.String(3)),
    sa.Column("r", sa.REAL),
    sa.Column("price", sa.Numeric(5, 2)),
    sa.Column("num", sa.Numeric),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("local", sa.DateTime),
    sa.Column("day", sa.Date),
    sa.Column("usage", jsonb(Usage)),
    sa.Column("scores", jsonb(Scores)),
    sa.Column("doc", postgresql.JSONB),
    sa.Column("sparse", sparsevec(3)),
    tsvector_column("name", name="body"),
)
NOW = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


@pytest.fixture
async def vdb(db: Any, url: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(meta):
            conn.execute(statement)
        conn.execute("INSERT INTO holder VALUES (1)")
    return db


Write = Callable[[Any, dict[str, Any]], Awaitable[Any]]


async def _builder(db: Any, row: dict[str, Any]) -> Any:
    return await db.execute(insert(vals).values({"id": 1, **row}))


async def _prepared(db: Any, row: dict[str, Any]) -> Any:
    prepared = db.prepare(insert(vals).values({"id": 1, **{k: placeholder(k) for k in row}}))
    return await prepared.execute(**row)


async def _copy(db: Any, row: dict[str, Any]) -> Any:
    return await db.insert_many(vals, [{"id": 1}, {"id": 2, **row}])


async def _insert_fallback(db: Any, row: dict[str, Any]) -> Any:
    # a SQL expression in another row sends the rows by INSERT instead of COPY
    rows = [{"id": 1, "at": sa.func.now()}, {"id": 2, "at": NOW, **row}]
    return await db.insert_many(vals, rows)


async def _upsert(db: Any, row: dict[str, Any]) -> Any:
    return await db.upsert_many(vals, [{"id": 1}, {"id": 2, **row}], conflict=["id"])


PATHS: dict[str, tuple[Write, str]] = {
    "builder": (_builder, ""),
    "prepared": (_prepared, ""),
    "COPY": (_copy, "row 1, "),
    "INSERT": (_insert_fallback, "row 1, "),
    "upsert": (_upsert, "row 1, "),
}

REFUSED: list[tuple[str, Any, str]] = [
    ("r", 1e39, "out of range for real"),
    ("r", -1e39, "out of range for real"),
    ("r", 1e-50, "out of range for real"),
    ("code", "abcd", "VARCHAR\\(3\\) holds at most 3"),
    ("price", Decimal("1000"), "does not fit NUMERIC\\(5, 2\\)"),
    ("price", -1000, "does not fit NUMERIC\\(5, 2\\)"),
    ("price", 999.995, "does not fit NUMERIC\\(5, 2\\)"),  # rounds to 1000.00
    ("price", Decimal("Infinity"), "infinity"),
    ("num", Decimal("sNaN"), "signalling NaN"),
    ("at", dt.datetime(2024, 1, 1), "naive datetime"),
    ("local", NOW, "has a time zone"),
    ("day", dt.datetime(2024, 1, 1, 12), "datetime for a date column"),
    ("usage", {"tokens": 1, "model": "m", "extra": 1}, "unknown key 'extra'"),
    ("usage", {"tokens": 1}, "missing field 'model'"),
    ("usage", [1, 2], "expected Usage"),
    ("name", "a\ud800b", "lone surrogate"),
    ("name", "a\x00b", "NUL"),
    ("doc", {"k\udfff": 1}, "lone surrogate"),
    ("doc", ["\ud83d"], "lone surrogate"),
]


async def test_a_value_that_does_not_fit_is_refused_naming_column_and_row(
    vdb: Any, admin: psycopg.Connection[Any]
) -> None:
    for path, (write, row_prefix) in PATHS.items():
        for column, value, problem in REFUSED:
            where = f"{row_prefix}column {column}" if row_prefix else f"item.{column}"
            with pytest.raises(ValidationError, match=f"{where}: .*{problem}") as info:
                await write(vdb, {column: value})
            assert info.value.column in (column, f"item.{column}"), path
            assert info.value.row == (1 if row_prefix else None), path
            assert admin.execute("SELECT count(*) FROM item").fetchone() == (0,), path


async def test_surrogates_are_refused_in_every_kind_of_operand(vdb: Any) -> None:
    bad = "x\ud800"
    queries = {
        "eq": select(vals.c.id).where(eq(vals.c.name, bad)),
        "like": select(vals.c.id).where(like(vals.c.name, bad)),
        "JSON key": select(vals.c.id).where(has_key(vals.c.doc, bad)),
        "JSON path": select(json_path_text(vals.c.doc, "a", bad)),
        "raw": raw("SELECT :v::text", v=bad),
        "full-text": select(vals.c.id).where(matches(vals.c.body, bad)),
    }
    for what, query in queries.items():
        with pytest.raises(ValidationError, match="lone surrogate '\\\\ud800' at index 1") as info:
            await vdb.all(query)
        assert info.value.column, what
    # in the SQL text itself (a raw() template, a label): a CompileError saying where
    for query in (raw(f"SELECT '{bad}'"), select(vals.c.id.label(bad))):
        with pytest.raises(CompileError, match="the SQL text holds a lone surrogate"):
            await vdb.all(query)
    prepared = vdb.prepare(select(vals.c.id).where(eq(vals.c.name, placeholder("n"))))
    with pytest.raises(ValidationError, match=r"item\.name: text holds a lone surrogate"):
        await prepared.all(n=bad)


ACCEPTED: list[tuple[str, Any, Any, str, str]] = [
    # column, value sent, value read back, SQL for what the server holds, its text
    ("r", 93037408.0, 93037408.0, "r::float8", "93037408"),
    ("r", 0.5, 0.5, "r::float8", "0.5"),
    ("r", 3.4028234663852886e38, 3.4028234663852886e38, "r::float8", "3.4028234663852886e+38"),
    ("r", float("inf"), float("inf"), "r", "Infinity"),
    ("price", Decimal("999.994"), Decimal("999.99"), "price", "999.99"),  # as the server rounds
    ("num", 0.1, Decimal("0.1"), "num", "0.1"),  # a float's shortest exact form, not float8's
    ("num", 1 / 3, Decimal("0.3333333333333333"), "num", "0.3333333333333333"),
    ("num", 1e300, Decimal("1E+300"), "num", "1" + "0" * 300),
    ("num", Decimal("-NaN"), Decimal("NaN"), "num", "NaN"),  # numeric has one NaN
    ("code", "abc", "abc", "code", "abc"),
    ("at", NOW, NOW, "at", "2024-05-06 07:08:09+00"),
    ("day", dt.date(2024, 2, 29), dt.date(2024, 2, 29), "day", "2024-02-29"),
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) and isinstance(b, Decimal) and a.is_nan():
        return b.is_nan()
    return type(a) is type(b) and a == b


async def test_accepted_values_are_stored_and_read_back_exactly(
    vdb: Any, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("SET TIME ZONE 'UTC'")
    for path, (write, _) in PATHS.items():
        for n, case in enumerate(ACCEPTED):
            await _check_accepted(vdb, admin, write, (path, n), *case)


async def _check_accepted(
    vdb: Any,
    admin: psycopg.Connection[Any],
    write: Write,
    where: tuple[str, int],
    column: str,
    sent: Any,
    back: Any,
    held: str,
    server_text: str,
) -> None:
    admin.execute("DELETE FROM item")
    await write(vdb, {column: sent})
    # the row written last holds the value (the INSERT path writes a row before it)
    stored = admin.execute(f"SELECT ({held})::text FROM item ORDER BY id DESC LIMIT 1")
    assert stored.fetchall() == [(server_text,)], (where, column, sent)
    got = await vdb.scalar(select(vals.c[column]).order_by(vals.c.id.desc()).limit(1))
    assert _same(got, back), (where, column, sent, got)


async def test_float4_and_sparsevec_components_come_back_exactly(
    vdb: Any, admin: psycopg.Connection[Any]
) -> None:
    value = 93037408.0  # a float32; text output is 9.303741e+07, which float8 reads as 93037410
    sparse = SparseVector({0: value, 2: 0.25}, 3)
    await vdb.insert_many(vals, [{"id": 1, "holder_id": 1, "r": value, "sparse": sparse}])
    assert await vdb.one(select(vals.c.r, vals.c.sparse)) == (value, sparse)
    # the same through nested JSON, and as the server's own float4 -> float8 cast gives it
    nested = await vdb.all(find_many(holder, with_={"items": include(columns=["r", "sparse"])}))
    assert nested[0]["items"] == [{"r": value, "sparse": sparse}]
    # the oracle: the server's own float4 -> float8 casts of what it holds
    assert admin.execute(
        "SELECT r::float8, sparse::vector::real[]::float8[] FROM item"
    ).fetchone() == (
        value,
        [value, 0.0, 0.25],
    )


async def test_typed_json_payloads_decode_to_the_declared_types(
    vdb: Any, admin: psycopg.Connection[Any]
) -> None:
    usage = Usage(tokens=3, model="m", cost=1.5e300)
    await vdb.execute(
        insert(vals).values(id=1, holder_id=1, usage=usage, scores={"best": 2.0, "runs": 2})
    )
    # jsonb keeps numbers as numeric: 1.5e300 is stored as an integer, so psycopg reads an int
    assert admin.execute("SELECT usage->>'cost', scores->>'best' FROM item").fetchone() == (
        "15" + "0" * 299,
        "2.0",
    )
    got_usage, got_scores = await vdb.one(select(vals.c.usage, vals.c.scores))
    assert got_usage == usage and type(got_usage.cost) is float
    assert got_scores == {"best": 2.0, "runs": 2} and type(got_scores["best"]) is float
    nested = await vdb.all(find_many(holder, with_={"items": include(columns=["usage"])}))
    assert nested[0]["items"][0]["usage"] == usage


async def test_a_stored_payload_that_does_not_fit_is_a_decode_error_naming_the_column(
    vdb: Any, admin: psycopg.Connection[Any]
) -> None:
    admin.execute(
        """INSERT INTO item (id, holder_id, usage) VALUES (1, 1, '{"tokens": 1, "mdl": "x"}')"""
    )
    with pytest.raises(DecodeError, match=r"item\.usage: the stored jsonb .* does not fit Usage: "):
        await vdb.all(select(vals.c.usage))
    with pytest.raises(DecodeError, match="unknown key 'mdl'; missing field 'model'"):
        await vdb.all(select(vals.c.usage))
    nested = find_many(holder, with_={"items": include(columns=["usage"])})
    with pytest.raises(DecodeError, match=r"^item\.usage: the stored jsonb"):
        await vdb.all(nested)
