"""Bulk insert of (int, text, jsonb, timestamptz, vector(384)) rows.

- raw psycopg binary COPY, with pgvector's binary dumper: the baseline (1.00);
- querykit ``db.insert_many(table, rows)``: every row checked against the table,
  then binary COPY; target >= 0.85 of the baseline's rows per second;
- SQLAlchemy Core ``Connection.execute(insert(table), rows)`` (executemany),
  on a 10k-row subset: it is slow enough with 384-d vectors that the full
  100k would dominate the run. Its ratio is per row, like the others.

Ratios here are throughput: rows per second relative to raw COPY (higher is
better). The server backend is not pinned to the client's CPU: COPY streams,
and a real server runs beside its clients.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB

import querykit
from querykit import vector

from ._harness import Row, report

NAME = "bulk"
ROWS = 100_000
SA_ROWS = 10_000
DIM = 384
REPEATS = 3

metadata = sa.MetaData()
item = sa.Table(
    "bench_bulk",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("meta", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("embedding", vector(DIM), nullable=False),
)
COLUMNS = ("id", "content", "meta", "created_at", "embedding")


def make_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    vectors = [Vector([rng.random() for _ in range(DIM)]) for _ in range(256)]
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "id": i,
            "content": f"document {i}",
            "meta": {"source": "bench", "n": i, "tags": ["a", "b"]},
            "created_at": start + dt.timedelta(seconds=i),
            "embedding": vectors[i % len(vectors)],
        }
        for i in range(n)
    ]


def run(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bulk")
        conn.execute(
            f"CREATE TABLE bench_bulk (id int PRIMARY KEY, content text NOT NULL, "
            f"meta jsonb NOT NULL, created_at timestamptz NOT NULL, embedding vector({DIM}) NOT NULL)"
        )
    rows = make_rows(ROWS)
    tuples = [tuple(r[c] for c in COLUMNS) for r in rows]

    raw_conn = psycopg.connect(url, autocommit=True)
    register_vector(raw_conn)
    db = querykit.connect(url, min_size=1, max_size=1)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    sa.event.listen(engine, "connect", lambda dbapi_conn, _record: register_vector(dbapi_conn))

    def truncate() -> None:
        raw_conn.execute("TRUNCATE bench_bulk")
        raw_conn.execute("CHECKPOINT")

    def raw_copy() -> int:
        with raw_conn.transaction(), raw_conn.cursor() as cur:
            copy_sql = "COPY bench_bulk (id, content, meta, created_at, embedding) FROM STDIN (FORMAT BINARY)"
            with cur.copy(copy_sql) as copy:
                copy.set_types(["int4", "text", "jsonb", "timestamptz", "vector"])
                for r in tuples:
                    copy.write_row((r[0], r[1], Jsonb(r[2]), r[3], r[4]))
        return ROWS

    def querykit_insert_many() -> int:
        return db.insert_many(item, rows)

    sa_rows = rows[:SA_ROWS]

    def sqlalchemy_executemany() -> int:
        with engine.begin() as conn:
            conn.execute(sa.insert(item), sa_rows)
        return SA_ROWS

    cases: dict[str, Callable[[], int]] = {
        "raw psycopg binary COPY": raw_copy,
        "querykit insert_many (COPY)": querykit_insert_many,
        f"SQLAlchemy Core executemany ({SA_ROWS // 1000}k rows)": sqlalchemy_executemany,
    }
    per_row: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for repeat in range(REPEATS):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            truncate()
            started = time.perf_counter()
            count = cases[name]()
            per_row[name].append((time.perf_counter() - started) / count)
    baseline = names[0]
    result = []
    for name in names:
        ratios = [b / t for t, b in zip(per_row[name], per_row[baseline], strict=True)]
        result.append(Row(name, statistics.median(per_row[name]), statistics.median(ratios), "row"))
    report(
        f"bulk insert of {ROWS // 1000}k rows (int, text, jsonb, timestamptz, vector({DIM})); "
        "ratio = rows/s relative to raw COPY, higher is better",
        result,
        baseline,
        target={"querykit insert_many (COPY)": 0.85},
    )
    for r in result:
        print(f"    {r.name}: {1 / r.seconds:,.0f} rows/s")
    db.close()
    engine.dispose()
    raw_conn.close()
