"""pgvector: KNN through querykit against raw psycopg, and HNSW against an exact scan.

1. A KNN query built, compiled and run through querykit's executor
   (``db.all(nearest(...))``, its settings applied with ``set_config(..., true)``
   in the query's transaction) next to the same statements sent by psycopg on
   its own connection: with the default settings (ef_search 100) and with an
   explicit ef_search=200. Target: within 3%.
2. 100,000 clustered 384-d vectors (1,000 Gaussian centres): HNSW build time,
   latency per query of HNSW and of an exact scan, and recall@10 (with a
   bootstrap interval over the 200 queries) at pgvector's ef_search 40, at
   querykit's default (the line ``nearest() default settings``: target recall
   >= 0.95) and at 200, against exact neighbours computed with numpy.
3. The curve: the same at 10,000 vectors and 100,000 (and 1,000,000 with
   ``python -m bench vector --long``).

Set ``QK_BENCH_VECTORS`` to use another size for 1 and 2.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from pgvector import Vector
from pgvector.psycopg import register_vector

import querykit
from querykit import hnsw_index, index_sql, nearest, raw
from querykit.columns import vector

from ._harness import (
    RESULTS,
    Row,
    at_least,
    at_most,
    compare,
    curve,
    mean_interval,
    note,
    pin_backend,
    report,
)

DIM = 384
CENTRES = 1000
QUERIES = 600  # enough for a recall interval of about +-0.01
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
    turn = {"raw": 0, "qk": 0, "raw200": 0, "qk200": 0}

    def next_query(case: str) -> np.ndarray:
        turn[case] += 1
        return queries[turn[case] % len(queries)]

    def raw_with(ef: str, case: str) -> Callable[[], object]:
        def run() -> object:
            with conn.transaction():
                cur.execute("SELECT set_config(%s, %s, true)", ("hnsw.ef_search", ef))
                return cur.execute(sql, (next_query(case), K)).fetchall()

        return run

    raw_knn, raw_ef200 = raw_with("100", "raw"), raw_with("200", "raw200")

    def querykit_knn() -> object:
        return db.all(nearest(embedding, next_query("qk"), K, columns=columns))

    def querykit_ef200() -> object:
        q = nearest(embedding, next_query("qk200"), K, columns=columns, ef_search=200)
        return db.all(q)

    # Both sides return the same rows (then the turns start again from the same query).
    assert raw_knn() == querykit_knn() and raw_ef200() == querykit_ef200()
    turn.update(dict.fromkeys(turn, 0))
    compare(
        f"KNN, k={K}, HNSW (cosine), default settings (ef_search 100 by set_config in the "
        f"query's transaction), {len(queries)} query vectors rotating",
        {"raw psycopg, same statements": raw_knn, "querykit nearest()": querykit_knn},
        baseline="raw psycopg, same statements",
        number=5,
        floor=True,
        target={"querykit nearest()": at_most(1.03)},
    )
    compare(
        "KNN with ef_search=200 (set_config in the query's transaction)",
        {
            "raw psycopg, set_config + same SQL": raw_ef200,
            "querykit nearest(ef_search=200)": querykit_ef200,
        },
        baseline="raw psycopg, set_config + same SQL",
        number=5,
        floor=True,
        target={"querykit nearest(ef_search=200)": at_most(1.03)},
    )
    db.close()
    conn.close()


def _recall_latency(
    db: querykit.Database, queries: np.ndarray, truth: list[set[int]], ef: int | None
) -> tuple[list[float], float]:
    """Per-query recall@10 and the median latency of ``nearest()`` at ``ef`` (None: the default)."""
    columns = [items.c.id]

    def knn(query: np.ndarray) -> list[tuple[Any, ...]]:
        if ef is None:
            return db.all(nearest(items.c.embedding, query, K, columns=columns))
        return db.all(nearest(items.c.embedding, query, K, columns=columns, ef_search=ef))

    for query in queries[:20]:  # warm up at this setting
        knn(query)
    recalls, times = [], []
    for i, query in enumerate(queries):
        started = time.perf_counter()
        result = knn(query)
        times.append(time.perf_counter() - started)
        recalls.append(len({r[0] for r in result} & truth[i]) / K)
    return recalls, statistics.median(times)


def _hnsw_vs_exact(url: str, queries: np.ndarray, truth: list[set[int]], n: int) -> None:
    columns = [items.c.id]
    db = querykit.connect(url, min_size=1, max_size=1)
    pin_backend(db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    hnsw: list[tuple[str, float, list[float]]] = []
    for ef, label in ((40, "HNSW ef_search=40 (pgvector's default)"), (None, None), (200, None)):
        recalls, seconds = _recall_latency(db, queries, truth, ef)
        recall = float(np.mean(recalls))
        name = (
            f"nearest() default settings (recall@10 {recall:.3f})"
            if ef is None
            else f"{label or f'HNSW ef_search={ef}'} (recall@10 {recall:.3f})"
        )
        hnsw.append((name, seconds, recalls))

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
    rows += [Row(name, seconds, seconds / exact_time, "query") for name, seconds, _ in hnsw]
    report(f"HNSW vs exact scan, {n:,} clustered {DIM}-d vectors, k={K}", rows, rows[0].name)
    # recall@10 of the default, with a bootstrap interval over the queries: the target.
    name, _, recalls = hnsw[1]
    mean, low, high = mean_interval(recalls)
    recall_row = Row(
        "nearest() default settings: recall@10", mean, mean, "recall", low, high, len(recalls)
    )
    report(
        f"nearest() default settings (recall@10 {mean:.3f}), {n:,} vectors, {len(recalls)} queries",
        [recall_row],
        "",
        target={recall_row.name: at_least(0.95)},
        higher_is_better=True,
        legend=f"recall@10 averaged over {len(recalls)} queries, [95% bootstrap interval]",
    )
    db.close()


def _dataset(
    url: str, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[set[int]], float, float]:
    """``n`` clustered vectors loaded and indexed; query vectors, their true neighbours, times."""
    data = _clustered(rng, n)
    picks = rng.choice(n, size=QUERIES, replace=False)
    queries = data[picks] + rng.normal(scale=0.3, size=(QUERIES, DIM)).astype(np.float32)
    with psycopg.connect(url, autocommit=True) as setup:
        register_vector(setup)
        loaded, built = _load(setup, data)
    return queries, _exact_neighbours(data, queries), loaded, built


def _knn_point(url: str, n: int, rng: np.random.Generator) -> tuple[str, ...]:
    """One point of the KNN curve: load ``n`` vectors, build HNSW, time and score the default."""
    queries, truth, _, built = _dataset(url, n, rng)
    db = querykit.connect(url, min_size=1, max_size=1)
    pin_backend(db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    r40, t40 = _recall_latency(db, queries, truth, 40)
    rdef, tdef = _recall_latency(db, queries, truth, None)
    db.close()
    return _curve_row(n, built, t40, r40, tdef, rdef)


def _curve_row(
    n: int, built: float, t40: float, r40: list[float], tdef: float, rdef: list[float]
) -> tuple[str, ...]:
    note(
        "vector curve",
        vectors=n,
        hnsw_build_s=built,
        ef40_s=t40,
        ef40_recall=float(np.mean(r40)),
        default_s=tdef,
        default_recall=float(np.mean(rdef)),
    )
    return (
        f"{n:,}",
        f"{built:.1f} s",
        f"{t40 * 1e3:.2f} ms",
        f"{np.mean(r40):.3f}",
        f"{tdef * 1e3:.2f} ms",
        f"{np.mean(rdef):.3f}",
    )


CURVE_HEADER = (
    "vectors",
    "HNSW build",
    "ef_search 40",
    "recall@10",
    "default (100)",
    "recall@10",
)


def run(url: str) -> None:
    n = int(os.environ.get("QK_BENCH_VECTORS", "100000"))
    long = bool(os.environ.get("QK_BENCH_LONG"))
    points = [_knn_point(url, 10_000, np.random.default_rng(10))] if n > 10_000 else []
    queries, truth, loaded, built = _dataset(url, n, np.random.default_rng(42))
    print(
        f"\nloaded {n:,} x {DIM}-d vectors by binary COPY in {loaded:.1f} s; HNSW (m=16, "
        f"ef_construction=64, cosine) built in {built:.1f} s"
    )
    RESULTS.append(
        {"benchmark": "vector setup", "vectors": n, "copy_s": loaded, "hnsw_build_s": built}
    )

    _querykit_vs_raw(url, queries)
    _hnsw_vs_exact(url, queries, truth, n)
    db = querykit.connect(url, min_size=1, max_size=1)
    pin_backend(db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    r40, t40 = _recall_latency(db, queries, truth, 40)
    rdef, tdef = _recall_latency(db, queries, truth, None)
    db.close()
    points.append(_curve_row(n, built, t40, r40, tdef, rdef))
    del truth
    if long:
        points.append(_knn_point(url, 1_000_000, np.random.default_rng(1000)))
    curve(
        "curve: KNN k=10 through nearest(), median latency and recall@10 by table size"
        + ("" if long else " (1,000,000 with --long)"),
        CURVE_HEADER,
        points,
    )
