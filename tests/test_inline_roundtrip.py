"""``to_sql().inline()`` pastes into psql and returns the same rows as the parameterised query.

The inline text runs over the simple-query protocol (psycopg sends a query
without parameters that way), the parameterised one over the extended protocol.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from pgvector import Vector

from querykit import and_, between, eq, gt, in_array, insert, is_null, like, lt, or_, select
from tests.tables import ROWS, TRICKY_TEXT, Mood, everything

E = everything.c


@pytest.fixture
def filled(tables_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    compiled = insert(everything).values(ROWS).to_sql()
    tables_conn.execute(compiled.sql, compiled.params)
    return tables_conn


def both_ways(conn: psycopg.Connection[Any], query: Any) -> tuple[list[Any], list[Any]]:
    compiled = query.to_sql()
    with_params = conn.execute(compiled.sql, compiled.params).fetchall()
    inlined = compiled.inline()
    assert "%s" not in inlined
    literal = conn.execute(inlined).fetchall()  # no parameters: the simple-query protocol
    return with_params, literal


ALL = [getattr(E, name) for name in ROWS[0]]


@pytest.mark.parametrize("name", list(ROWS[0]))
def test_every_type_filters_the_same_rows_inline(
    filled: psycopg.Connection[Any], name: str
) -> None:
    column = getattr(E, name)
    value = ROWS[4][name]
    if name == "dbl":
        value = ROWS[3][name]  # infinity
    query = select(*ALL).where(eq(column, value)).order_by(E.id)
    with_params, literal = both_ways(filled, query)
    assert with_params == literal
    assert with_params, f"no row matched {name} = {value!r}"


def test_combined_filters_and_arrays(filled: psycopg.Connection[Any]) -> None:
    query = (
        select(E.id, E.txt, E.tags, E.doc)
        .where(
            or_(
                and_(in_array(E.txt, TRICKY_TEXT[:4]), gt(E.num, Decimal("-1"))),
                like(E.txt, "%\\%%"),  # type: ignore[arg-type]
                between(E.day, dt.date(2024, 3, 1), dt.date(2024, 3, 5)),
            ),
            lt(E.big, 2**63 - 1),
            in_array(E.mood, [Mood.O_QUOTE, Mood.HAPPY]),
        )
        .order_by("-id")
        .limit(20)
    )
    with_params, literal = both_ways(filled, query)
    assert with_params == literal and len(with_params) > 2


def test_null_values_inline(filled: psycopg.Connection[Any]) -> None:
    compiled = insert(everything).values(id=100, txt=None, doc=None).to_sql()
    filled.execute(compiled.inline())
    with_params, literal = both_ways(filled, select(E.id).where(is_null(E.txt), eq(E.id, 100)))
    assert with_params == literal == [(100,)]


def test_inline_insert_round_trips_every_value(tables_conn: psycopg.Connection[Any]) -> None:
    for row in ROWS[:6]:
        tables_conn.execute(insert(everything).values(row).to_sql().inline())
    got = tables_conn.execute(select(*ALL).order_by(E.id).to_sql().sql).fetchall()
    assert len(got) == 6
    for row, values in zip(ROWS, got, strict=False):
        for (name, expected), actual in zip(row.items(), values, strict=True):
            if name == "vec":
                assert actual == Vector(expected)
            elif name == "mood":
                assert actual == expected.name
            elif name == "moods":
                assert actual == [m.name for m in expected] or actual == "{HAPPY,O_QUOTE}"
            else:
                assert actual == expected, name
