"""Tables used by the tests, besides the example app's ``schema.py``."""

from __future__ import annotations

import datetime as dt
import enum
import math
import uuid
from decimal import Decimal
from typing import Any

from pgvector import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    Time,
    TypedColumns,
    Uuid,
)

from querykit.columns import jsonb, vector
from querykit.schema.relations import many_to_many, relation

metadata = MetaData()


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"
    O_QUOTE = "it's"


class holder_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    label: Column[str | None] = Column(Text)


holder = Table("holder", metadata, holder_cols)


class everything_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    holder_id: Column[int | None] = Column(Integer, ForeignKey("holder.id"))
    parent_id: Column[int | None] = Column(Integer, ForeignKey("everything.id"))
    small: Column[int | None] = Column(SmallInteger)
    big: Column[int | None] = Column(BigInteger)
    num: Column[Decimal | None] = Column(Numeric)
    dbl: Column[float | None] = Column(Double)
    flag: Column[bool | None] = Column(Boolean)
    txt: Column[str | None] = Column(Text)
    day: Column[dt.date | None] = Column(Date)
    clock: Column[dt.time | None] = Column(Time)
    at: Column[dt.datetime | None] = Column(DateTime(timezone=True))
    naive: Column[dt.datetime | None] = Column(DateTime(timezone=False))
    span: Column[dt.timedelta | None] = Column(Interval)
    uid: Column[uuid.UUID | None] = Column(Uuid)
    blob: Column[bytes | None] = Column(LargeBinary)
    tags: Column[list[str] | None] = Column(ARRAY(Text))
    nums: Column[list[int] | None] = Column(ARRAY(Integer))
    doc: Column[dict[str, Any] | None] = Column(jsonb(dict[str, Any]))
    mood: Column[Mood | None] = Column(Enum(Mood, name="mood"))
    moods: Column[list[Mood] | None] = Column(ARRAY(Enum(Mood, name="mood")))
    vec: Column[Vector | None] = Column(vector(3))


everything = Table("everything", metadata, everything_cols)


class node_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    parent_id: Column[int | None] = Column(Integer, ForeignKey("node.id"))
    label: Column[str] = Column(Text, nullable=False)


node = Table("node", metadata, node_cols)


# A small blog for relation tests: an ambiguous pair (author/editor), three levels
# (author -> posts -> comments) and a many-to-many (posts <-> tags).


class author_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    name: Column[str] = Column(Text, nullable=False)


author = Table("author", metadata, author_cols)


class post_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    author_id: Column[int] = Column(Integer, ForeignKey("author.id"), nullable=False)
    editor_id: Column[int | None] = Column(Integer, ForeignKey("author.id"))
    title: Column[str] = Column(Text, nullable=False)
    score: Column[int] = Column(Integer, nullable=False)


post = Table("post", metadata, post_cols)


class comment_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    post_id: Column[int] = Column(Integer, ForeignKey("post.id"), nullable=False)
    body: Column[str] = Column(Text, nullable=False)


comment = Table("comment", metadata, comment_cols)


class tag_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
    name: Column[str] = Column(Text, nullable=False)


tag = Table("tag", metadata, tag_cols)


class post_tag_cols(TypedColumns):
    post_id: Column[int] = Column(Integer, ForeignKey("post.id"), primary_key=True)
    tag_id: Column[int] = Column(Integer, ForeignKey("tag.id"), primary_key=True)


post_tag = Table("post_tag", metadata, post_tag_cols)

relation(holder, "items", everything, on=[(holder.c.id, everything.c.holder_id)], many=True)
many_to_many(post, "tags", tag, through=post_tag)
many_to_many(tag, "posts", post, through=post_tag)


# Rows of every type, with hostile text, for round-trip tests.
TRICKY_TEXT = [
    "plain",
    "it's",
    "back\\slash",
    "O'Reilly \\' --",
    "unicode ✓ ñ 日本 🎉",
    "percent % and %s and %(x)s",
    "$$dollar$$",
    "semi; DROP TABLE everything; --",
    "",
]

ROWS: list[dict[str, Any]] = [
    {
        "id": i + 1,
        "small": (-32768, 0, 32767)[i % 3],
        "big": (2**62 + i, -(2**53) - 1, 7)[i % 3],
        "num": (Decimal("1.10"), Decimal("-0.000001"), Decimal("123456789012345678.123456789"))[
            i % 3
        ],
        "dbl": (1.5, -0.1, 1e300, math.inf, -math.inf, 2.2250738585072014e-308)[i % 6],
        "flag": i % 2 == 0,
        "txt": TRICKY_TEXT[i % len(TRICKY_TEXT)],
        "day": dt.date(2024, 2, 29) + dt.timedelta(days=i),
        "clock": dt.time(23, 59, 59, 999999) if i % 2 else dt.time(0, 0, 1),
        "at": dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
        + dt.timedelta(hours=i),
        "naive": dt.datetime(1999, 12, 31, 23, 59, 59, 123456) + dt.timedelta(seconds=i),
        "span": dt.timedelta(days=i, seconds=3661, microseconds=5),
        "uid": uuid.UUID(int=i * 7919),
        "blob": bytes([0, 1, 2, 255, 39, 92]) * (i + 1),
        "tags": ["a", "it's", "x,y", "{braces}", '"quoted"'][: i % 5 + 1],
        "nums": [i, -i, 2**31 - 1],
        "doc": {"agent": "shuri", "n": i, "quote": "it's", "nested": {"list": [1, "two", None]}},
        "mood": list(Mood)[i % 3],
        "moods": [Mood.HAPPY, Mood.O_QUOTE],
        "vec": [0.1 * i, -1.5, 3.25],
    }
    for i in range(12)
]


ROWS_FOR_RELATIONS: list[tuple[Table, list[dict[str, Any]]]] = [
    (author, [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}, {"id": 3, "name": "cy"}]),
    (
        post,
        [
            {"id": 1, "author_id": 1, "editor_id": 2, "title": "first", "score": 10},
            {"id": 2, "author_id": 1, "editor_id": None, "title": "second", "score": 15},
            {"id": 3, "author_id": 2, "editor_id": 1, "title": "third", "score": 30},
            {"id": 4, "author_id": 2, "editor_id": None, "title": "fourth", "score": 20},
            {"id": 5, "author_id": 2, "editor_id": None, "title": "fifth", "score": 10},
        ],
    ),
    (
        comment,
        [
            {"id": 1, "post_id": 1, "body": "nice"},
            {"id": 2, "post_id": 1, "body": "meh"},
            {"id": 3, "post_id": 3, "body": "wow"},
        ],
    ),
    (tag, [{"id": 1, "name": "db"}, {"id": 2, "name": "ai"}]),
    (
        post_tag,
        [{"post_id": 1, "tag_id": 1}, {"post_id": 1, "tag_id": 2}, {"post_id": 2, "tag_id": 1}],
    ),
    (
        node,
        [
            {"id": 1, "parent_id": None, "label": "root"},
            {"id": 2, "parent_id": 1, "label": "a"},
            {"id": 3, "parent_id": 1, "label": "b"},
            {"id": 4, "parent_id": 2, "label": "a1"},
        ],
    ),
    (holder, [{"id": 1, "label": "h1"}, {"id": 2, "label": "h2"}]),
]


def _everything_rows() -> list[dict[str, Any]]:
    rows = []
    for i, row in enumerate(ROWS[:6]):
        rows.append({**row, "holder_id": 1 + i % 2, "parent_id": None if i < 2 else 1 + i % 2})
    return rows


ROWS_FOR_RELATIONS.append((everything, _everything_rows()))
