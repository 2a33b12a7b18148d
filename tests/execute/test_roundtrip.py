"""Property tests: every supported type round-trips exactly, through insert() and insert_many().

Each example writes one row with the insert builder and one with binary COPY,
reads both back, and wants the very values it wrote, in sync and async mode.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pgvector import Vector
from sqlalchemy.dialects import postgresql

from querykit import eq, insert, select, vector
from schema import Status

from .conftest import schema_ddl

meta = sa.MetaData()
everything = sa.Table(
    "everything",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("text", sa.Text),
    sa.Column("int", sa.Integer),
    sa.Column("big", sa.BigInteger),
    sa.Column("num", sa.Numeric),
    sa.Column("flt", sa.Double),
    sa.Column("flag", sa.Boolean),
    sa.Column("day", sa.Date),
    sa.Column("clock", sa.Time),
    sa.Column("moment", sa.DateTime(timezone=True)),
    sa.Column("span", postgresql.INTERVAL),
    sa.Column("uid", sa.Uuid),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("doc", postgresql.JSONB),
    sa.Column("ints", sa.ARRAY(sa.Integer)),
    sa.Column("texts", sa.ARRAY(sa.Text)),
    sa.Column("status", sa.Enum(Status, name="rt_status")),
    sa.Column("vec", vector(3)),
)
COLUMNS = [c.name for c in everything.columns][1:]

text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
json_number = st.integers(-(10**30), 10**30) | st.floats(
    min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False
)
json_value = st.recursive(
    st.none() | st.booleans() | json_number | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
offsets = st.integers(-15 * 60, 15 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
numerics = st.decimals(
    min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, places=None
) | st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1E-30")])

rows = st.fixed_dictionaries(
    {
        "text": text,
        "int": st.integers(-(2**31), 2**31 - 1),
        "big": st.integers(-(2**63), 2**63 - 1),
        "num": numerics,
        "flt": st.floats(),  # NaN and both infinities included
        "flag": st.booleans(),
        "day": st.dates(),
        "clock": st.times(),
        "moment": st.datetimes(
            min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=offsets
        ),
        "span": st.timedeltas(),
        "uid": st.uuids(),
        "blob": st.binary(max_size=40),
        "doc": json_value,
        "ints": st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=5),
        "texts": st.lists(st.none() | text, max_size=5),
        "status": st.sampled_from(Status),
        "vec": st.lists(
            st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=3, max_size=3
        ),
    }
).flatmap(
    # Any column may also be NULL.
    lambda row: st.fixed_dictionaries({k: st.just(v) | st.none() for k, v in row.items()})
)


def same(a: Any, b: Any) -> bool:
    """Exact equality, where NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        if a.is_nan() or b.is_nan():
            return a.is_nan() and b.is_nan()
        return a == b
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def expected(column: str, value: Any) -> Any:
    """What the value reads back as: the Python type the column decodes to."""
    if value is None:
        return None
    if column == "vec":
        return Vector(value)
    if column == "blob":
        return bytes(value)
    if column == "doc":
        return _jsonb_numbers(value)
    return value


def _jsonb_numbers(value: Any) -> Any:
    """jsonb keeps numbers as numeric, which has no negative zero: -0.0 reads back as 0.0."""
    if isinstance(value, float) and value == 0:
        return 0.0
    if isinstance(value, list):
        return [_jsonb_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonb_numbers(v) for k, v in value.items()}
    return value


_ids = itertools.count(1)

EDGES: dict[str, Any] = {
    "text": "ünï ☃ 😀 '\" \\ %s %% :x",
    "int": -(2**31),
    "big": 2**63 - 1,
    "num": Decimal("NaN"),
    "flt": float("-inf"),
    "flag": False,
    "day": dt.date(1, 1, 1),
    "clock": dt.time(23, 59, 59, 999999),
    "moment": dt.datetime(
        9998, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-15))
    ),
    "span": dt.timedelta(days=-999_999_999),
    "uid": uuid.UUID(int=0),
    "blob": b"\x00\xff" * 3,
    "doc": {"": [None, True, 1.5, -(10**30), "\u2603", {"a": {}}]},
    "ints": [],
    "texts": [None, ""],
    "status": Status.FAILED,
    "vec": [-0.0, 3.4028234663852886e38, 1.401298464324817e-45],
}


@pytest.fixture
async def db_with_table(db: Any, url: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(meta):
            conn.execute(statement)
    return db


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(row=rows)
@example(row=EDGES)
@example(row={**EDGES, "num": Decimal("-Infinity"), "flt": float("nan"), "span": dt.timedelta(0)})
@example(row={**EDGES, "num": Decimal("1E-30"), "flt": -0.0, "doc": None})
@example(row={**EDGES, "num": Decimal("Infinity"), "flt": float("inf"), "doc": []})
@example(row={**EDGES, "doc": [-0.0, {"z": -0.0}]})
async def test_every_type_round_trips_exactly(db_with_table: Any, row: dict[str, Any]) -> None:
    db = db_with_table
    built, copied = next(_ids), next(_ids)
    await db.execute(insert(everything).values({"id": built, **row}))
    assert await db.insert_many(everything, [{"id": copied, **row}]) == 1
    columns = [everything.c[name] for name in COLUMNS]
    for rid in (built, copied):
        got = await db.one(select(*columns).where(eq(everything.c.id, rid)))
        for name, value in zip(COLUMNS, got, strict=True):
            want = expected(name, row[name])
            path = "insert" if rid == built else "COPY"
            assert same(value, want), f"{path} {name}: {value!r} != {want!r}"
