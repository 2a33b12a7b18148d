"""Bulk insert of 1M streamed rows of (int, text, jsonb, vector(384)).

- raw psycopg binary COPY, with pgvector's binary dumper and psycopg's Jsonb:
  the baseline (1.00);
- querykit ``db.insert_many(table, rows)`` of the same generator: every row
  checked against the table, encoded, streamed into binary COPY;
  target >= 0.95 of the baseline's rows per second;
- querykit's peak memory growth over the load (``ru_maxrss``, and the resident
  size sampled every 50k rows): target <= 64 MiB; held in a list, the rows
  alone would take over 3 GB;
- SQLAlchemy Core ``Connection.execute(insert(table), rows)`` (executemany),
  on a 10k-row subset, once: it is slow enough with 384-d vectors that it
  would dominate the run. Its ratio is per row, like the others.

Both loaders read the same generator (rows made on the fly, as a real load
reads a file), so neither holds the input. They run interleaved in rounds
(A B, B A, ...) on one CPU with their server backends pinned to it (see
``_harness.pin_backend``); the ratio is the median of the per-round ratios,
with its bootstrap interval and verdict (``_harness.compare_runs``: at least
``QUERYKIT_BENCH_BULK_ROUNDS`` rounds, more while the interval straddles the
target and the time budget lasts). ``QUERYKIT_BENCH_BULK_ROWS`` and
``QUERYKIT_BENCH_BULK_ROUNDS`` make a quicker run.

Wall time on a shared 2-CPU machine swings with the other load; so each round
also takes the CPU time each load cost, the client's and its server backend's
(``/proc/<pid>/stat``, when the server runs on this machine). Pinned to one CPU,
their sum is what the load would take on an idle machine: its ratio, printed
beside, moves far less with the load than the wall-time ratio. ``QUERYKIT_BENCH_BULK_PINNED=0`` leaves the backends free
to run on the other CPU, as a server beside its clients does: the client's
checks then overlap the server's work.

``QUERYKIT_BENCH_BULK_HNSW=100000`` adds the README's "load first, build the
HNSW index after" figure: that many random 384-d vectors into a table that has
an HNSW index, against the same load into a bare table followed by CREATE INDEX
(with ``maintenance_work_mem`` large enough to hold the graph).
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import sqlalchemy as sa
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB

import querykit
from querykit import raw, vector

from ._harness import RESULTS, Row, at_least, compare_runs, pin_backend, report

NAME = "bulk"
ROWS = int(os.environ.get("QUERYKIT_BENCH_BULK_ROWS", 1_000_000))
ROUNDS = int(os.environ.get("QUERYKIT_BENCH_BULK_ROUNDS", 4))
MAX_ROUNDS = 12
PINNED = os.environ.get("QUERYKIT_BENCH_BULK_PINNED", "1") != "0"
SA_ROWS = 10_000
DIM = 384
RSS_TARGET = 64 * 2**20
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")

metadata = sa.MetaData()
item = sa.Table(
    "bench_bulk",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("meta", JSONB, nullable=False),
    sa.Column("embedding", vector(DIM), nullable=False),
)
RAW_COPY = "COPY bench_bulk (id, content, meta, embedding) FROM STDIN (FORMAT BINARY)"

_rng = random.Random(7)
VECTORS = [Vector([_rng.random() for _ in range(DIM)]) for _ in range(256)]


def make_rows(n: int) -> Iterator[dict[str, Any]]:
    """The input both loaders read: a fresh dict per row, made on the fly."""
    for i in range(n):
        yield {
            "id": i,
            "content": f"document {i}",
            "meta": {"source": "bench", "n": i, "tags": ["a", "b"]},
            "embedding": VECTORS[i % len(VECTORS)],
        }


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def backend_cpu(pid: int) -> float | None:
    """Seconds of CPU a local server backend has used (user + system), or None if not visible."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_timed(into: list[float], pid: int, load: Callable[[], int]) -> Callable[[], int]:
    """``load``, appending to ``into`` its CPU seconds per row, client's and backend's."""

    def call() -> int:
        client, server = time.process_time(), backend_cpu(pid)
        n = load()
        server_after = backend_cpu(pid)
        if server is not None and server_after is not None:
            into.append((time.process_time() - client + server_after - server) / n)
        return n

    return call


def report_cpu(cpu: dict[str, list[float]], baseline: str, case: str) -> None:
    if not cpu[case] or len(cpu[case]) != len(cpu[baseline]):
        return  # a remote server: its backends' CPU time is not visible here
    ratios = [b / c for c, b in zip(cpu[case], cpu[baseline], strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"  CPU per row, client + server backend: raw COPY "
        f"{statistics.median(cpu[baseline]) * 1e6:.1f} µs, querykit "
        f"{statistics.median(cpu[case]) * 1e6:.1f} µs; ratio (raw's over querykit's, the "
        f"throughput ratio on an idle CPU) {ratio:.3f}, per round {min(ratios):.3f}-{max(ratios):.3f}"
    )
    RESULTS.append(
        {
            "benchmark": "bulk insert CPU per row, client + server backend",
            "case": case,  # not "name": the README's table lists the wall-time verdicts
            "ratio": ratio,
            "low": min(ratios),
            "high": max(ratios),
            "rounds": len(ratios),
        }
    )


def run(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bulk")
        conn.execute(
            f"CREATE TABLE bench_bulk (id int PRIMARY KEY, content text NOT NULL, "
            f"meta jsonb NOT NULL, embedding vector({DIM}) NOT NULL)"
        )
    raw_conn = psycopg.connect(url, autocommit=True)
    register_vector(raw_conn)
    db = querykit.connect(url, min_size=1, max_size=1)
    raw_pid = raw_conn.info.backend_pid
    querykit_pid = db.scalar(raw("SELECT pg_backend_pid()").returns(int))
    if PINNED:
        pin_backend(raw_pid)
        pin_backend(querykit_pid)

    def truncate() -> None:
        raw_conn.execute("TRUNCATE bench_bulk")
        raw_conn.execute("CHECKPOINT")

    def raw_copy(n: int) -> int:
        with raw_conn.transaction(), raw_conn.cursor() as cur, cur.copy(RAW_COPY) as copy:
            copy.set_types(["int4", "text", "jsonb", "vector"])
            for r in make_rows(n):
                copy.write_row((r["id"], r["content"], Jsonb(r["meta"]), r["embedding"]))
        return n

    def querykit_insert_many(n: int) -> int:
        return db.insert_many(item, make_rows(n))

    # -- memory: the first large load of the process, so ru_maxrss moves with it -------
    truncate()
    querykit_insert_many(20_000)  # warm up: generated encoders, buffers, the allocator
    truncate()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    baseline_rss = rss_bytes()
    sampled = baseline_rss

    def sampling(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal sampled
        for i, row in enumerate(rows):
            if i % 50_000 == 0:
                sampled = max(sampled, rss_bytes())
            yield row

    started = time.perf_counter()
    assert db.insert_many(item, sampling(make_rows(ROWS))) == ROWS
    first_load = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    growth = max(peak_after - max(peak_before, baseline_rss), sampled - baseline_rss, 0)

    # -- throughput: interleaved rounds, A B then B A ---------------------------------
    baseline = "raw psycopg binary COPY"
    streamed = "querykit insert_many (streamed COPY)"
    cpu: dict[str, list[float]] = {baseline: [], streamed: []}
    rows = compare_runs(
        f"bulk insert of {ROWS:,} streamed rows (int, text, jsonb, vector({DIM})), "
        f"{'pinned' if PINNED else 'backends not pinned'}; ratio = rows/s relative to raw COPY",
        {
            baseline: cpu_timed(cpu[baseline], raw_pid, lambda: raw_copy(ROWS)),
            streamed: cpu_timed(cpu[streamed], querykit_pid, lambda: querykit_insert_many(ROWS)),
        },
        baseline=baseline,
        before=truncate,
        min_rounds=ROUNDS,
        max_rounds=max(ROUNDS, MAX_ROUNDS),
        budget=max(120.0, 40 * ROWS / 1e6 * 2 * ROUNDS),  # the minimum rounds, at least
        target={streamed: at_least(0.95)},
    )
    for row in rows:
        print(f"    {row.name}: {1 / row.seconds:,.0f} rows/s")
    report_cpu(cpu, baseline, streamed)

    # -- SQLAlchemy executemany, once, on a subset ------------------------------------
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    sa.event.listen(engine, "connect", lambda dbapi_conn, _record: register_vector(dbapi_conn))
    sa_rows = list(make_rows(SA_ROWS))
    truncate()
    started = time.perf_counter()
    with engine.begin() as sa_conn:
        sa_conn.execute(sa.insert(item), sa_rows)
    sa_seconds = (time.perf_counter() - started) / SA_ROWS
    sa_name = f"SQLAlchemy Core executemany ({SA_ROWS // 1000}k rows)"
    report(
        f"SQLAlchemy Core executemany of {SA_ROWS:,} of those rows, once; ratio = rows/s "
        "relative to raw COPY's median above",
        [rows[0], Row(sa_name, sa_seconds, rows[0].seconds / sa_seconds, "row")],
        baseline,
        higher_is_better=True,
        legend="one run: no interval",
    )
    verdict = "ok" if growth <= RSS_TARGET else "MISSED"
    print(
        f"  querykit insert_many peak memory growth over {ROWS:,} streamed rows: "
        f"{growth / 2**20:.1f} MiB (≤ {RSS_TARGET // 2**20} MiB {verdict}); "
        f"that load took {first_load:.1f} s"
    )
    RESULTS.append(
        {
            "benchmark": "bulk insert peak memory growth",
            "case": streamed,  # not "name": the README's ratio table lists only ratio rows
            "bytes": growth,
            "rows": ROWS,
            "target": RSS_TARGET,
        }
    )
    db.close()
    engine.dispose()
    raw_conn.close()
    hnsw_rows = int(os.environ.get("QUERYKIT_BENCH_BULK_HNSW", 0))
    if hnsw_rows:
        index_after_load(url, hnsw_rows)


def index_after_load(url: str, n: int) -> None:
    """Loading into an HNSW-indexed table, against loading first and indexing after."""
    hnsw = "USING hnsw (embedding vector_cosine_ops)"
    rng = random.Random(11)
    vectors = [Vector([rng.gauss(0, 1) for _ in range(DIM)]) for _ in range(n)]

    def rows() -> Iterator[dict[str, Any]]:
        for i, v in enumerate(vectors):
            yield {"id": i, "content": f"c{i}", "meta": {"i": i}, "embedding": v}

    timings = {}
    with (
        querykit.connect(url, min_size=1, max_size=1) as db,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        for order in ("index first", "load first"):
            conn.execute("TRUNCATE bench_bulk")
            conn.execute("DROP INDEX IF EXISTS bench_bulk_hnsw")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            if order == "index first":
                conn.execute(f"CREATE INDEX bench_bulk_hnsw ON bench_bulk {hnsw}")
                db.insert_many(item, rows())
            else:
                db.insert_many(item, rows())
                conn.execute("SET maintenance_work_mem = '1GB'")  # the graph fits: one pass
                conn.execute(f"CREATE INDEX bench_bulk_hnsw ON bench_bulk {hnsw}")
            timings[order] = time.perf_counter() - started
        conn.execute("DROP INDEX bench_bulk_hnsw")
    first, after = timings["index first"], timings["load first"]
    print(
        f"  {n:,} rows of vector({DIM}) with an HNSW index: insert_many into the indexed "
        f"table {first:.1f} s; insert_many, then CREATE INDEX {after:.1f} s "
        f"({first / after:.1f}x faster)"
    )
    RESULTS.append({"benchmark": "HNSW index before/after load", "rows": n, **timings})
