"""The json strategy's decoding of related rows: values decoded as in a plain select, and a
value that does not decode named by its table and column (its fast path for leaf levels)."""

from __future__ import annotations

import datetime as dt
import enum

import psycopg
import pytest
import sqlalchemy as sa

import querykit
from querykit import find_many, include
from querykit.errors import DecodeError, MappingError


class Colour(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


metadata = sa.MetaData()
box = sa.Table("box", metadata, sa.Column("id", sa.Integer, primary_key=True))
ball = sa.Table(
    "ball",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("box_id", sa.ForeignKey("box.id"), nullable=False),
    sa.Column("colour", sa.Enum(Colour, native_enum=False, length=10), nullable=True),
    sa.Column("made", sa.DateTime(timezone=True), nullable=False),
)


def _create(url: str, colour: str | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE box (id int PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE ball (id int PRIMARY KEY, box_id int NOT NULL REFERENCES box, "
            "colour varchar(10), made timestamptz NOT NULL)"
        )
        conn.execute("INSERT INTO box VALUES (1)")
        conn.execute(
            "INSERT INTO ball VALUES (1, 1, 'RED', '2026-01-02 03:04:05+00'), "
            "(2, 1, %s, '2026-01-02 03:04:06+00')",
            (colour,),
        )


def test_leaf_rows_decode_like_a_plain_select(database_url: str) -> None:
    _create(database_url, None)
    with querykit.connect(database_url) as db:
        [found] = db.all(find_many(box, with_={"balls": include(order_by=["id"])}))
        plain = db.all(querykit.select(ball.c.id, ball.c.box_id, ball.c.colour, ball.c.made))
    assert found["balls"] == [
        dict(zip(["id", "box_id", "colour", "made"], r, strict=True)) for r in plain
    ]
    assert found["balls"][0]["colour"] is Colour.RED and found["balls"][1]["colour"] is None
    assert found["balls"][0]["made"] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_a_value_that_does_not_decode_names_its_column(database_url: str) -> None:
    _create(database_url, "GREEN")
    with querykit.connect(database_url) as db, pytest.raises(DecodeError) as caught:
        db.all(find_many(box, with_={"balls": include(order_by=["id"])}))
    assert str(caught.value).startswith("ball.colour: the database returned 'GREEN'")


def test_a_value_that_fails_its_decoder_is_named_with_its_column(database_url: str) -> None:
    """A ValueError in a leaf's generated decoder is re-checked and reported by column."""
    _create(database_url, "RED")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE ball SET made = 'infinity' WHERE id = 2")
    with querykit.connect(database_url) as db, pytest.raises(MappingError) as caught:
        db.all(find_many(box, with_={"balls": include(order_by=["id"])}))
    assert str(caught.value).startswith("ball.made: cannot decode value 'infinity'")


def test_a_to_one_leaf_decodes_like_a_plain_select(database_url: str) -> None:
    _create(database_url, "BLUE")
    with querykit.connect(database_url) as db:
        found = db.all(find_many(ball, order_by=["id"], with_={"box": include()}))
        plain = db.all(querykit.select(ball.c.id, ball.c.box_id, ball.c.colour, ball.c.made))
        boxes = db.all(querykit.select(box.c.id))
    assert [{k: v for k, v in f.items() if k != "box"} for f in found] == [
        dict(zip(["id", "box_id", "colour", "made"], r, strict=True)) for r in plain
    ]
    assert [f["box"] for f in found] == [{"id": boxes[0][0]}] * 2
    assert found[1]["colour"] is Colour.BLUE
