"""Tables declared with pgvector-python's own SQLAlchemy types work like querykit's vector().

``pgvector.sqlalchemy.Vector(n)`` (``VECTOR``), ``HALFVEC``, ``SPARSEVEC`` and
``BIT`` (and SQLAlchemy's ``postgresql.BIT(n)``) are how existing Core tables
declare pgvector columns. Every helper that takes ``vector(n)`` takes them:
distance operators, ``nearest()``, the index helpers, COPY, decoding, inline SQL.
Each result is checked against a twin table declared with querykit's types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from pgvector import Bit, HalfVector, SparseVector, Vector
from pgvector import sqlalchemy as pgvector_sa
from sqlalchemy.dialects import postgresql

import querykit
from querykit import (
    ValidationError,
    cosine_distance,
    eq,
    hamming_distance,
    hnsw_index,
    index_sql,
    insert,
    ivfflat_index,
    l2_distance,
    nearest,
    select,
)
from querykit.columns import bit, halfvec, sparsevec, vector

from ._support import create_tables


def _table(name: str, types: dict[str, Any]) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        *(sa.Column(k, t) for k, t in types.items()),
    )


theirs = _table(
    "theirs",
    {
        "vec": pgvector_sa.Vector(3),
        "vec2": pgvector_sa.VECTOR(3),
        "half": pgvector_sa.HALFVEC(3),
        "sparse": pgvector_sa.SPARSEVEC(3),
        "bits": pgvector_sa.BIT(4),
        "pgbits": postgresql.BIT(4),
    },
)
ours = _table(
    "ours",
    {
        "vec": vector(3),
        "vec2": vector(3),
        "half": halfvec(3),
        "sparse": sparsevec(3),
        "bits": bit(4),
        "pgbits": bit(4),
    },
)
ROWS = [
    {
        "id": i,
        "vec": [float(i), 1.0, -0.5],
        "vec2": (0.25, float(i), 2.0),
        "half": [0.5, 1.5, float(i)],
        "sparse": {0: float(i + 1), 2: -1.0},
        "bits": f"{i % 2}10{(i + 1) % 2}",
        "pgbits": [i % 2 == 0, True, False, True],
    }
    for i in range(6)
]
FLOAT_COLUMNS = ("vec", "vec2", "half", "sparse")


@pytest.fixture
def db(database_url: str) -> Iterator[querykit.Database]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_tables(conn, theirs, ours)
    database = querykit.connect(database_url, min_size=1, max_size=2)
    yield database
    database.close()


def test_copy_decoding_and_nearest_match_querykit_types(db: querykit.Database) -> None:
    assert db.insert_many(theirs, ROWS) == len(ROWS)  # binary COPY
    assert db.insert_many(ours, ROWS) == len(ROWS)
    got = db.all(select(theirs).order_by(theirs.c.id))
    assert got == db.all(select(ours).order_by(ours.c.id))
    first = got[0]
    assert [type(v) for v in first[1:]] == [Vector, Vector, HalfVector, SparseVector, Bit, Bit]
    assert first[1] == Vector([0.0, 1.0, -0.5]) and first[5].to_text() == "0101"
    for name in FLOAT_COLUMNS:
        q = [1.0, 2.0, 0.5]
        a = db.all(nearest(theirs.c[name], q, 3, columns=[theirs.c.id], metric="l2"))
        b = db.all(nearest(ours.c[name], q, 3, columns=[ours.c.id], metric="l2"))
        assert a == b and len(a) == 3
    for name in ("bits", "pgbits"):
        a = db.all(nearest(theirs.c[name], "1100", 6, columns=[theirs.c.id]))
        assert a == db.all(nearest(ours.c[name], "1100", 6, columns=[ours.c.id]))
        hand = db.all(
            select(theirs.c.id, hamming_distance(theirs.c[name], "1100")).order_by(
                hamming_distance(theirs.c[name], "1100"), theirs.c.id
            )
        )
        assert sorted(a, key=lambda r: (r[1], r[0])) == hand


def test_operators_check_values_and_render_inline(db: querykit.Database, conn: Any) -> None:
    db.execute(insert(theirs).values(ROWS))  # the insert builder, parameters checked by codecs
    q = select(
        l2_distance(theirs.c.vec, [1, 2, 3]),
        cosine_distance(theirs.c.half, [1, 2, 3]),
        l2_distance(theirs.c.sparse, {0: 1.0}),
    ).where(eq(theirs.c.id, 2))
    compiled = q.to_sql()
    assert isinstance(compiled.params[0], Vector)  # checked and converted, not text
    # the inline SQL runs over the simple-query protocol and gives the same row
    inline = conn.execute(compiled.inline()).fetchall()
    assert inline == [db.one(q)]
    with pytest.raises(ValidationError, match=r"theirs\.vec: expected 3 dimensions"):
        db.all(select(l2_distance(theirs.c.vec, [1, 2])))
    with pytest.raises(ValidationError, match="NaN"):
        db.insert_many(theirs, [{"id": 99, "vec": [float("nan"), 0, 0]}])
    with pytest.raises(ValidationError, match="expected 4 bits"):
        db.execute(insert(theirs).values(id=98, pgbits="101"))


def test_index_helpers_and_their_sql(db: querykit.Database, conn: Any) -> None:
    indexes = [
        hnsw_index(theirs.c.vec, "cosine"),
        hnsw_index(theirs.c.half, "l2"),
        hnsw_index(theirs.c.sparse, "inner_product"),
        hnsw_index(theirs.c.bits, "hamming"),
        ivfflat_index(theirs.c.vec2, "l2", lists=1),
    ]
    for index, opclass in zip(
        indexes,
        [
            "vector_cosine_ops",
            "halfvec_l2_ops",
            "sparsevec_ip_ops",
            "bit_hamming_ops",
            "vector_l2_ops",
        ],
        strict=True,
    ):
        text = index_sql(index)
        assert opclass in text
        conn.execute(text)
    names = {
        r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'theirs'")
    }
    assert {i.name for i in indexes} <= names
