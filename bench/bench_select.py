"""Select one row by primary key on a warm connection."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from ._harness import compare, pin_backend

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

    raw = psycopg.connect(url, autocommit=True)
    pin_backend(raw.info.backend_pid)
    cur = raw.cursor()

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

    compare(
        "select by primary key (warm connection, built per call)",
        {"raw psycopg, prepared": raw_prepared, "SQLAlchemy Core execute": sqlalchemy_core},
        baseline="raw psycopg, prepared",
        number=2000,
    )
    sa_conn.close()
    engine.dispose()
    raw.close()


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
