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

metadata = MetaData()


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"
    O_QUOTE = "it's"


class everything_cols(TypedColumns):
    id: Column[int] = Column(Integer, primary_key=True)
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
