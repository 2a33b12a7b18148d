"""Select one row by primary key on a warm connection.

Cases, each on one pooled (or plain) connection pinned with its server backend
to one CPU:

- raw psycopg with a prepared statement on a held connection: the baseline (1.00);
- for scale, the same through psycopg_pool (``with pool.connection()``), no target;
- querykit ``db.prepare(q)`` called with the id: target <= 1.05;
- the same with the pool's fast path off, i.e. psycopg_pool's public
  ``getconn``/``putconn`` only: what reading psycopg_pool's internals saves;
- querykit with the query built and run on every call: target <= 1.25;
- SQLAlchemy Core ``Connection.execute`` of a statement built on every call;
- for the breakdown, no target: the query built and compiled by querykit on
  every call, then sent by raw psycopg (what building and compiling cost alone);
- the libpq floor: a bare ``SELECT 1`` through ``psycopg.pq``.

Under the table, the targets' CPU-time ratios (client plus its pinned backend),
a second reading beside the wall-time verdict.

Then the curve: a key range of 1, 10, 100 and 10,000 rows, ``db.prepare`` next to
raw psycopg prepared, with the cost per row.
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg_pool import ConnectionPool

import querykit
from querykit import eq, gte, lte, placeholder, raw, select
from querykit.compile import compile_query

from ._harness import at_most, compare, curve, curve_point, pin_backend

NAME = "select"


def run(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_item")
        conn.execute(
            "CREATE TABLE bench_item (id int PRIMARY KEY, name text NOT NULL, score float8)"
        )
        conn.execute(
            "INSERT INTO bench_item SELECT g, 'item ' || g, g * 0.5 FROM generate_series(1, 10000) g"
        )
        conn.execute("ANALYZE bench_item")

    raw_conn = psycopg.connect(url, autocommit=True)
    pin_backend(raw_conn.info.backend_pid)
    cur = raw_conn.cursor()

    def raw_prepared() -> object:
        return cur.execute(
            "SELECT id, name, score FROM bench_item WHERE id = %s", (42,), prepare=True
        ).fetchone()

    metadata = sa.MetaData()
    item = sa.Table(
        "bench_item",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("score", sa.Float),
    )
    engine = sa.create_engine(_sa_url(url), pool_size=1)
    sa_conn = engine.connect()
    backend = sa_conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    pin_backend(int(backend))

    def sqlalchemy_core() -> object:
        stmt = sa.select(item.c.id, item.c.name, item.c.score).where(item.c.id == 42)
        return sa_conn.execute(stmt).one()

    # One connection per querykit pool, so the pinned backend is the one that serves.
    db = querykit.connect(url, min_size=1, max_size=1)
    pin_backend(db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    by_id = db.prepare(
        select(item.c.id, item.c.name, item.c.score).where(eq(item.c.id, placeholder("id")))
    )

    # The same raw SQL through psycopg_pool's own pool (one connection), for scale: what
    # "raw psycopg on a warm pool" costs when the pool is psycopg_pool's.
    raw_pool = ConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True})
    with raw_pool.connection() as pooled:
        pin_backend(pooled.info.backend_pid)

    def raw_psycopg_pool() -> object:
        with raw_pool.connection() as pooled:
            return pooled.execute(
                "SELECT id, name, score FROM bench_item WHERE id = %s", (42,), prepare=True
            ).fetchone()

    def querykit_prepared() -> object:
        return by_id.one(id=42)

    # The same through psycopg_pool's public getconn()/putconn() only: the pool's fast
    # path (which reads psycopg_pool's internals, pinned in pyproject.toml) turned off.
    public_db = querykit.connect(url, min_size=1, max_size=1)
    public_db._pool._qk_fast = False
    pin_backend(public_db.scalar(raw("SELECT pg_backend_pid()").returns(int)))
    public_by_id = public_db.prepare(
        select(item.c.id, item.c.name, item.c.score).where(eq(item.c.id, placeholder("id")))
    )

    def querykit_prepared_public_pool() -> object:
        return public_by_id.one(id=42)

    def querykit_built() -> object:
        return db.one(select(item.c.id, item.c.name, item.c.score).where(eq(item.c.id, 42)))

    def built_then_raw() -> object:
        shape, values = compile_query(
            select(item.c.id, item.c.name, item.c.score).where(eq(item.c.id, 42))
        )
        return cur.execute(shape.sql, shape.params(values), prepare=True).fetchone()

    compare(
        "select by primary key (warm connection)",
        {
            "raw psycopg, prepared": raw_prepared,
            "raw psycopg through psycopg_pool, prepared": raw_psycopg_pool,
            "querykit db.prepare(q)": querykit_prepared,
            "querykit db.prepare(q), psycopg_pool public API only": querykit_prepared_public_pool,
            "querykit, built per call": querykit_built,
            "SQLAlchemy Core execute, built per call": sqlalchemy_core,
            "(querykit build+compile, raw psycopg send)": built_then_raw,
        },
        baseline="raw psycopg, prepared",
        number=50,
        floor=True,
        cpu=True,
        target={"querykit db.prepare(q)": at_most(1.05), "querykit, built per call": at_most(1.25)},
    )
    _rows_curve(db, cur, item)
    db.close()
    public_db.close()
    raw_pool.close()
    sa_conn.close()
    engine.dispose()
    raw_conn.close()


def _rows_curve(db: querykit.Database, cur: psycopg.Cursor[Any], item: sa.Table) -> None:
    """Rows 1 -> 10 -> 100 -> 10k by a key range: where the cost per row settles."""
    sql = "SELECT id, name, score FROM bench_item WHERE id BETWEEN %s AND %s"
    by_range = db.prepare(
        select(item.c.id, item.c.name, item.c.score).where(
            gte(item.c.id, placeholder("lo")), lte(item.c.id, placeholder("hi"))
        )
    )
    points = []
    for n in (1, 10, 100, 10_000):

        def raw_range(n: int = n) -> object:
            return cur.execute(sql, (1, n), prepare=True).fetchall()

        def querykit_range(n: int = n) -> object:
            return by_range.all(lo=1, hi=n)

        assert raw_range() == [tuple(r) for r in querykit_range()]  # type: ignore[union-attr]
        rows = compare(
            f"select by key range, {n:,} rows",
            {"raw psycopg, prepared": raw_range, "querykit db.prepare(q)": querykit_range},
            baseline="raw psycopg, prepared",
            number=max(1, 50 // n),
            min_rounds=20,
            max_rounds=200,
            budget=12,
            show=False,
        )
        points.append(curve_point(n, rows))
    curve(
        "curve: select by key range, db.prepare vs raw psycopg prepared",
        ("rows", "raw psycopg", "querykit", "querykit per row", "ratio [95% interval]"),
        points,
    )


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
