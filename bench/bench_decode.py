"""Decoding: 200,000 rows of (bigint, text, timestamptz, numeric, bool, jsonb), all fetched.

- raw psycopg ``cursor.execute(sql).fetchall()`` (binary-free, psycopg's own
  loaders): the baseline;
- querykit ``db.all(select(...))`` of the same columns: target >= 0.95 of the
  baseline's rows per second.

Both return the same tuples (checked). Ratios are throughput (higher is better).
The two read every column with the same psycopg loaders except json/jsonb, which
querykit parses with orjson when its ``orjson`` extra is installed (``make venv``
installs it): most of the decoding time is that column's ``json.loads``. Under the
table, the CPU-time ratio (client plus its backend), a second reading.
"""

from __future__ import annotations

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

import querykit
from querykit import raw, select

from ._harness import at_least, compare, pin_backend

NAME = "decode"
ROWS = 200_000

table = sa.Table(
    "bench_decode",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("amount", sa.Numeric(12, 2), nullable=False),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("meta", JSONB, nullable=False),
)


def run(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_decode")
        conn.execute(
            "CREATE TABLE bench_decode (id bigint PRIMARY KEY, label text NOT NULL, "
            "at timestamptz NOT NULL, amount numeric(12, 2) NOT NULL, flag bool NOT NULL, "
            "meta jsonb NOT NULL)"
        )
        conn.execute(
            "INSERT INTO bench_decode SELECT g, 'label ' || g, "
            "'2025-01-01'::timestamptz + g * interval '1 s', g * 0.25, g %% 2 = 0, "
            "jsonb_build_object('n', g, 'tag', 'x') FROM generate_series(1, %s) g",
            (ROWS,),
        )
        conn.execute("VACUUM ANALYZE bench_decode")
    conn = psycopg.connect(url, autocommit=True)
    pin_backend(conn.info.backend_pid)
    cur = conn.cursor()
    db = querykit.connect(url, min_size=1, max_size=1)
    pin_backend(db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    query = select(*table.c).from_(table)
    sql = query.to_sql().sql

    def raw_fetch() -> object:
        return cur.execute(sql).fetchall()

    def querykit_fetch() -> object:
        return db.all(query)

    assert raw_fetch() == [tuple(r) for r in querykit_fetch()]  # type: ignore[attr-defined]
    compare(
        f"decoding {ROWS:,} rows x (bigint, text, timestamptz, numeric, bool, jsonb); "
        "ratio = rows/s relative to raw psycopg",
        {"raw psycopg fetchall()": raw_fetch, "querykit db.all(select(...))": querykit_fetch},
        baseline="raw psycopg fetchall()",
        number=1,
        unit="call",
        speedup=True,
        min_rounds=10,
        max_rounds=60,
        budget=60,
        cpu=True,
        target={"querykit db.all(select(...))": at_least(0.95)},
    )
    db.close()
    conn.close()
