"""array_contains / array_contained / array_overlaps on arrays of every common element type.

psycopg sends a list of small Python ints as ``smallint[]``, and PostgreSQL has
no ``integer[] @> smallint[]`` operator (42883). The items are cast to the
column's own array type. Each result is checked against the same condition
written by hand in SQL, run by psycopg.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from querykit import array_contained, array_contains, array_overlaps, insert, select
from querykit.build.operators import Condition

meta = sa.MetaData()
arrays = sa.Table(
    "arrays",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ints", sa.ARRAY(sa.Integer)),
    sa.Column("bigs", sa.ARRAY(sa.BigInteger)),
    sa.Column("texts", sa.ARRAY(sa.Text)),
    sa.Column("names", sa.ARRAY(sa.String(20))),
    sa.Column("nums", sa.ARRAY(sa.Numeric(10, 2))),
)
ROWS = [
    {"id": 1, "ints": [1, 2], "bigs": [1, 2**40], "texts": ["a", "b"], "names": ["a", "b"],
     "nums": [Decimal("1.50"), Decimal("2.00")]},
    {"id": 2, "ints": [2, 3], "bigs": [3], "texts": ["b"], "names": ["b", "c"],
     "nums": [Decimal("2.00")]},
    {"id": 3, "ints": [], "bigs": [], "texts": [], "names": [], "nums": []},
]  # fmt: skip
# column -> (items, the same items as an SQL array literal)
ITEMS = {
    "ints": ([2], "ARRAY[2]::integer[]"),
    "bigs": ([1, 2**40], "ARRAY[1, 1099511627776]::bigint[]"),
    "texts": (["b"], "ARRAY['b']::text[]"),
    "names": (["b", "c"], "ARRAY['b', 'c']::varchar(20)[]"),
    "nums": ([Decimal("2.00"), Decimal("1.5")], "ARRAY[2.00, 1.5]::numeric(10,2)[]"),
}
OPERATORS: dict[str, Callable[[Any, Any], Condition]] = {
    "@>": array_contains,
    "<@": array_contained,
    "&&": array_overlaps,
}


@pytest.fixture
async def with_arrays(db: Any, url: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(str(CreateTable(arrays).compile(dialect=postgresql.dialect())))  # type: ignore[no-untyped-call]
    for row in ROWS:
        await db.execute(insert(arrays).values(**row))
    return db


@pytest.mark.parametrize("column", list(ITEMS))
@pytest.mark.parametrize("op", list(OPERATORS))
async def test_array_operators_match_hand_written_sql(
    with_arrays: Any, url: str, column: str, op: str
) -> None:
    items, literal = ITEMS[column]
    q = select(arrays.c.id).where(OPERATORS[op](arrays.c[column], items)).order_by(arrays.c.id)
    with psycopg.connect(url) as conn:
        expected = conn.execute(
            f"SELECT id FROM arrays WHERE {column} {op} {literal} ORDER BY id"
        ).fetchall()
    assert expected  # every case selects something: a wrong answer cannot hide as []
    assert await with_arrays.all(q) == expected


async def test_items_are_cast_to_the_column_array_type() -> None:
    compiled = select(arrays.c.id).where(array_overlaps(arrays.c.ints, [1])).to_sql()
    assert "arrays.ints && CAST(%s AS INTEGER[])" in compiled.sql
    assert compiled.params == ([1],)
