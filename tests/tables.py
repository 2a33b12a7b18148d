"""Tables used by the tests, besides the example app's ``schema.py``."""

from __future__ import annotations

import datetime as dt
import enum
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
from querykit.relations import many_to_many, relation

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
