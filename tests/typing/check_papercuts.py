"""Typing papercuts of issue 21 §6, pinned (mypy --strict and pyright, never run).

- array operators take ``Column[list[T]]`` (and nullable, tuple, Sequence spellings);
- ``select(table)`` is typed from ``__row_pos__``, and ``SelectQuery[Any, ...]`` without;
- a misspelt column in ``values()``/``set()`` is NOT a static error, keyword or
  column key alike (``TypedColumns`` answers any attribute through SQLAlchemy's
  ``__getattr__``); querykit checks names when the query is built (README, "Typing").
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, assert_type

from sqlalchemy import ARRAY, Column, Integer, MetaData, Table, Text, TypedColumns

from querykit import (
    Condition,
    InsertQuery,
    SelectQuery,
    UpdateQuery,
    array_contained,
    array_contains,
    array_overlaps,
    insert,
    select,
    update,
)
from schema import RunMetadata, Status, pipeline_run


class tagged_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    tags: Column[list[str]] = Column(ARRAY(Text), nullable=False)
    maybe: Column[list[str] | None] = Column(ARRAY(Text))
    scores: Column[list[int]] = Column(ARRAY(Integer), nullable=False)


tagged = Table("tagged", MetaData(), tagged_cols)  # no __row_pos__

assert_type(array_contains(tagged.c.tags, ["a", "b"]), Condition)
assert_type(array_contained(tagged.c.maybe, ("a",)), Condition)
assert_type(array_overlaps(tagged.c.scores, [1, 2]), Condition)
array_contains(tagged.c.scores, ["a"])  # type: ignore[misc]  # str items for an int[] column

assert_type(
    select(pipeline_run),
    SelectQuery[
        str, str, Status, dt.datetime, dt.datetime | None, float | None, Decimal, RunMetadata | None
    ],
)
assert_type(select(tagged), SelectQuery[*tuple[Any, ...]])  # declare __row_pos__ for more

assert_type(insert(pipeline_run).values({pipeline_run.c.name: "x"}), InsertQuery[()])
assert_type(insert(pipeline_run).values(titel="x"), InsertQuery[()])  # a SchemaError at build
assert_type(update(pipeline_run).set(name="x").all_rows(), UpdateQuery[()])
