"""pgvector: KNN through querykit against raw psycopg, and HNSW against an exact scan.

1. A KNN query built, compiled and run through querykit's executor
   (``db.all(nearest(...))``, its settings applied with ``set_config(..., true)``
   in the query's transaction) next to the same SQL and parameters sent by
   psycopg on its own connection. Target: within 5%.
2. 100,000 clustered 384-d vectors (1,000 Gaussian centres): HNSW build time,
   latency per query of HNSW and of an exact scan, and recall@10 of HNSW at
   ef_search 40 and 100 against exact neighbours computed with numpy.

Set ``QK_BENCH_VECTORS`` to use another size.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from pgvector import Vector
from pgvector.psycopg import register_vector

import querykit
from querykit import hnsw_index, index_sql, nearest, raw
from querykit.columns import vector

from ._harness import RESULTS, Row, compare, pin_backend, report

DIM = 384
CENTRES = 1000
QUERIES = 200
K = 10

items = sa.Table(
    "bench_vector",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("embedding", vector(DIM), nullable=False),
)


def _clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = rng.normal(size=(CENTRES, DIM))
    members = rng.integers(0, CENTRES, size=n)
    return (centres[members] + rng.normal(scale=0.3, size=(n, DIM))).astype(np.float32)


def _load(conn: psycopg.Connection[Any], data: np.ndarray) -> tuple[float, float]:
    conn.execute("DROP TABLE IF EXISTS bench_vector")
    conn.execute(
        f"CREATE TABLE bench_vector (id int PRIMARY KEY, embedding vector({DIM}) NOT NULL)"
    )
    started = time.perf_counter()
    with conn.cursor().copy(
        "COPY bench_vector (id, embedding) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int4", "vector"])
        for i, row in enumerate(data):
            copy.write_row((i, Vector(row)))
    loaded = time.perf_counter() - started
    # The graph of 100k x 384 fits in 1GB; one parallel worker besides the leader on 2 vCPUs.
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET max_parallel_maintenance_workers = 1")
    started = time.perf_counter()
    conn.execute(index_sql(hnsw_index(items.c.embedding, "cosine")))
    built = time.perf_counter() - started
    conn.execute("ANALYZE bench_vector")
    return loaded, built


def _exact_neighbours(data: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    return [set(row.tolist()) for row in top]


def _querykit_vs_raw(url: str, queries: np.ndarray) -> None:
    """KNN through ``db.all(nearest(...))`` next to the same SQL through psycopg.

    Like with like: the same SQL text and parameters (a pgvector value sent in
    binary, and k), the same statements (with ef_search: BEGIN, one set_config,
    the query, COMMIT), each side on its own connection, pinned with its backend
    to the client's CPU. Raw psycopg runs at its best: one reused cursor, as the
    executor has.
    """
    # The columns are taken once, as an application keeps them: a Table.c attribute lookup
    # is SQLAlchemy's own cost (microseconds with the caches cold after a KNN query).
    embedding, columns = items.c.embedding, [items.c.id]
    sql = nearest(embedding, queries[0], K, columns=columns).to_sql().sql
    conn = psycopg.connect(url, autocommit=True)
    register_vector(conn)
    pin_backend(conn.info.backend_pid)
    cur = conn.cursor()
    # One connection per querykit pool, so the pinned backend is the one that serves.
    db = querykit.connect(url, min_size=1, max_size=1)
    pin_backend(db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    turn = {"raw": 0, "qk": 0, "raw100": 0, "qk100": 0}

    def next_query(case: str) -> np.ndarray:
        turn[case] += 1
        return queries[turn[case] % len(queries)]

    def raw_knn() -> object:
        return cur.execute(sql, (next_query("raw"), K)).fetchall()

    def querykit_knn() -> object:
        return db.all(nearest(embedding, next_query("qk"), K, columns=columns))

    def raw_ef100() -> object:
        with conn.transaction():
            cur.execute("SELECT set_config(%s, %s, true)", ("hnsw.ef_search", "100"))
            return cur.execute(sql, (next_query("raw100"), K)).fetchall()

    def querykit_ef100() -> object:
        q = nearest(embedding, next_query("qk100"), K, columns=columns, ef_search=100)
        return db.all(q)

    # Both sides return the same rows (then the turns start again from the same query).
    assert raw_knn() == querykit_knn() and raw_ef100() == querykit_ef100()
    turn.update(dict.fromkeys(turn, 0))
    compare(
        f"KNN, k={K}, HNSW (cosine) on {len(queries)} query vectors rotating",
        {"raw psycopg, same SQL": raw_knn, "querykit nearest()": querykit_knn},
        baseline="raw psycopg, same SQL",
        number=200,
        target={"querykit nearest()": 1.05},
    )
    compare(
        "KNN with ef_search=100 (SET LOCAL in the query's transaction)",
        {
            "raw psycopg, set_config + same SQL": raw_ef100,
            "querykit nearest(ef_search=100)": querykit_ef100,
        },
        baseline="raw psycopg, set_config + same SQL",
        number=200,
        target={"querykit nearest(ef_search=100)": 1.05},
    )
    db.close()
    conn.close()


def _hnsw_vs_exact(url: str, queries: np.ndarray, truth: list[set[int]], n: int) -> None:
    columns = [items.c.id]
    db = querykit.connect(url, min_size=1, max_size=1)
    pin_backend(db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    hnsw: list[tuple[str, float]] = []
    for ef in (40, 100):
        for query in queries[:20]:  # warm up at this setting
            db.all(nearest(items.c.embedding, query, K, columns=columns, ef_search=ef))
        found = 0
        times = []
        for i, query in enumerate(queries):
            q = nearest(items.c.embedding, query, K, columns=columns, ef_search=ef)
            started = time.perf_counter()
            result = db.all(q)
            times.append(time.perf_counter() - started)
            found += len({r[0] for r in result} & truth[i])
        hnsw.append(
            (
                f"HNSW ef_search={ef} (recall@10 {found / (len(queries) * K):.3f})",
                statistics.median(times),
            )
        )

    # Last: an exact scan reads the whole table, which pushes the index out of shared_buffers.
    exact_queries = queries[:20]

    def exact(query: np.ndarray) -> list[tuple[Any, ...]]:
        q = nearest(items.c.embedding, query, K, columns=columns).with_settings(
            {"enable_indexscan": "off"}
        )
        return db.all(q)

    for query in exact_queries[:2]:  # warm the buffers and the plan
        exact(query)
    found = 0
    times = []
    for i, query in enumerate(exact_queries):
        started = time.perf_counter()
        result = exact(query)
        times.append(time.perf_counter() - started)
        found += len({r[0] for r in result} & truth[i])
    exact_time = statistics.median(times)
    rows = [
        Row(
            f"exact scan (recall@10 {found / (len(exact_queries) * K):.3f})",
            exact_time,
            1.0,
            "query",
        )
    ]
    rows += [Row(name, seconds, seconds / exact_time, "query") for name, seconds in hnsw]
    report(f"HNSW vs exact scan, {n:,} clustered {DIM}-d vectors, k={K}", rows, rows[0].name)
    db.close()


def run(url: str) -> None:
    n = int(os.environ.get("QK_BENCH_VECTORS", "100000"))
    rng = np.random.default_rng(42)
    data = _clustered(rng, n)
    picks = rng.choice(n, size=QUERIES, replace=False)
    queries = data[picks] + rng.normal(scale=0.3, size=(QUERIES, DIM)).astype(np.float32)

    with psycopg.connect(url, autocommit=True) as setup:
        register_vector(setup)
        loaded, built = _load(setup, data)
    print(
        f"\nloaded {n:,} x {DIM}-d vectors by binary COPY in {loaded:.1f} s; HNSW (m=16, "
        f"ef_construction=64, cosine) built in {built:.1f} s"
    )
    RESULTS.append(
        {"benchmark": "vector setup", "vectors": n, "copy_s": loaded, "hnsw_build_s": built}
    )
    truth = _exact_neighbours(data, queries)

    _querykit_vs_raw(url, queries)
    _hnsw_vs_exact(url, queries, truth, n)
