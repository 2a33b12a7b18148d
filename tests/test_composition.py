"""Queries that embed other queries: each value lands in its own slot.

Named regression tests for composed queries that once bound the wrong values
(an embedded query numbered its parameters from zero again, so the outer query's
values filled its slots) or joined the wrong thing (a subquery joined with
``lateral=True`` landed uncorrelated in FROM as well). Every case is checked three
ways: querykit's rows, the same statement executed by SQLAlchemy Core, and the
query written by hand in SQL.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

import querykit
from querykit import desc, eq, find_many, gt, include, ne, raw, select, update
from querykit.codecs.dialect import DIALECT
from schema import pipeline_run as run
from schema import pipeline_step as step
from tests.sqlassert import check_against_core


@pytest.fixture
def seeded(tables_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Three runs; ``download`` steps only under r1 and r3; two runs named ``ingest``."""
    tables_conn.execute(
        "INSERT INTO pipeline_run (id, name, status, cost) VALUES "
        "('r1', 'ingest', 'COMPLETED', 1), ('r2', 'ingest', 'FAILED', 2), "
        "('r3', 'download', 'COMPLETED', 3), ('r4', 'embed', 'RUNNING', 4)"
    )
    tables_conn.execute(
        "INSERT INTO pipeline_step (id, run_id, name, tokens, created_at) VALUES "
        "('s1', 'r1', 'download', 10, '2026-01-01'), ('s2', 'r1', 'parse', 20, '2026-01-02'), "
        "('s3', 'r2', 'ingest', 30, '2026-01-01'), ('s4', 'r3', 'download', 40, '2026-01-03'), "
        "('s5', 'r3', 'embed', 50, '2026-01-04')"
    )
    return tables_conn


@pytest.fixture
def db(database_url: str, seeded: psycopg.Connection[Any]) -> Iterator[querykit.Database]:
    with querykit.connect(database_url) as database:
        yield database


@pytest.fixture
def engine(sa_url: str, seeded: psycopg.Connection[Any]) -> Iterator[sa.Engine]:
    eng = sa.create_engine(sa_url)
    yield eng
    eng.dispose()


def check(
    db: querykit.Database,
    engine: sa.Engine,
    conn: psycopg.Connection[Any],
    query: Any,
    by_hand: str,
    params: tuple[Any, ...],
) -> list[tuple[Any, ...]]:
    """querykit's rows equal Core's and the hand-written SQL's; the params are these."""
    compiled = query.to_sql()
    assert compiled.params == params
    check_against_core(query, compiled)
    ours = sorted(db.all(query))
    with engine.connect() as c:
        core = sorted(tuple(r) for r in c.execute(query.statement))
    hand = sorted(conn.execute(by_hand).fetchall())
    assert ours == core == hand
    return ours


def test_a_query_in_an_in_list_keeps_its_values(db: Any, engine: Any, seeded: Any) -> None:
    inner = select(step.c.run_id).where(eq(step.c.name, "download"))
    q = select(run.c.id).where(eq(run.c.name, "ingest"), run.c.id.in_(inner))  # type: ignore[arg-type]
    rows = check(
        db,
        engine,
        seeded,
        q,
        "SELECT id FROM pipeline_run WHERE name = 'ingest' "
        "AND id IN (SELECT run_id FROM pipeline_step WHERE name = 'download')",
        ("ingest", "download"),
    )
    assert rows == [("r1",)]


def test_a_scalar_subquery_keeps_its_values(db: Any, engine: Any, seeded: Any) -> None:
    most = (
        select(sa.func.max(step.c.tokens))
        .where(eq(step.c.name, "download"), eq(step.c.run_id, run.c.id))
        .scalar_subquery()
    )
    q = select(run.c.id).where(eq(run.c.name, "ingest"), gt(most, 5))
    rows = check(
        db,
        engine,
        seeded,
        q,
        "SELECT id FROM pipeline_run WHERE name = 'ingest' "
        "AND (SELECT max(tokens) FROM pipeline_step WHERE name = 'download' "
        "AND run_id = pipeline_run.id) > 5",
        ("ingest", "download", 5),
    )
    assert rows == [("r1",)]


def test_a_recursive_cte_keeps_the_values_of_both_parts(db: Any, engine: Any, seeded: Any) -> None:
    from tests.tables import node

    seeded.execute(
        "INSERT INTO node (id, parent_id, label) VALUES (1, NULL, 'root'), (2, 1, 'a'), "
        "(3, 2, 'b'), (4, 1, 'skip'), (5, 4, 'c')"
    )
    tree = (
        select(node.c.id, node.c.label).where(eq(node.c.label, "root")).cte("tree", recursive=True)
    )
    step_down = (
        select(node.c.id, node.c.label)
        .from_(tree)
        .join(node, eq(node.c.parent_id, tree.c.id))
        .where(ne(node.c.label, "skip"))
    )
    tree = tree.union_all(step_down.statement)
    q = select(tree.c.id).where(ne(tree.c.label, "b"))
    rows = check(
        db,
        engine,
        seeded,
        q,
        "WITH RECURSIVE tree(id, label) AS (SELECT id, label FROM node WHERE label = 'root' "
        "UNION ALL SELECT node.id, node.label FROM tree JOIN node ON node.parent_id = tree.id "
        "WHERE node.label <> 'skip') SELECT id FROM tree WHERE label <> 'b'",
        ("root", "skip", "b"),
    )
    assert rows == [(1,), (2,)]


def test_raw_with_an_embedded_query_keeps_its_values(db: Any, engine: Any, seeded: Any) -> None:
    inner = select(step.c.run_id).where(eq(step.c.name, "download"))
    q = raw(
        "SELECT id FROM pipeline_run WHERE name = :name AND id IN (:sub)", name="ingest", sub=inner
    )
    compiled = q.to_sql()
    assert compiled.params == ("ingest", "download")
    check_against_core(q, compiled)
    assert db.all(q) == [("r1",)]


def test_an_update_returning_as_a_cte_keeps_its_values(
    db: querykit.Database, seeded: psycopg.Connection[Any]
) -> None:
    moved = (
        update(run).set(name="renamed").where(eq(run.c.name, "download")).returning(run.c.id)
    ).cte("moved")
    q = select(run.c.id).where(eq(run.c.name, "ingest"), run.c.id.notin_(sa.select(moved.c.id)))
    compiled = q.to_sql()
    assert compiled.params == ("renamed", "download", "ingest")
    check_against_core(q, compiled)
    assert sorted(db.all(q)) == [("r1",), ("r2",)]
    assert seeded.execute("SELECT name FROM pipeline_run WHERE id = 'r3'").fetchone() == (
        "renamed",
    )


@pytest.mark.parametrize("how", ["lateral_method", "join_lateral_true"])
def test_a_subquery_joined_lateral_is_correlated(
    db: Any, engine: Any, seeded: Any, how: str
) -> None:
    last = (
        select(step.c.name)
        .where(eq(step.c.run_id, run.c.id), step.c.tokens > 5)
        .order_by(desc(step.c.created_at))
        .limit(1)
    )
    if how == "lateral_method":
        sub = last.lateral("last")
        q = select(run.c.id, sub.c.name).from_(run).join(sub, sa.true())
    else:
        sub = last.subquery("last")
        q = select(run.c.id, sub.c.name).from_(run).join(sub, sa.true(), lateral=True)
    assert q.to_sql().sql.count("FROM pipeline_step") == 1  # no second, uncorrelated copy
    rows = check(
        db,
        engine,
        seeded,
        q,
        "SELECT r.id, last.name FROM pipeline_run r JOIN LATERAL (SELECT name FROM pipeline_step "
        "WHERE run_id = r.id AND tokens > 5 ORDER BY created_at DESC LIMIT 1) last ON true",
        (5, 1),
    )
    assert rows == [("r1", "parse"), ("r2", "ingest"), ("r3", "embed")]


@pytest.mark.parametrize(
    "order",
    [
        lambda: step.c.created_at.desc(),
        lambda: sa.desc(step.c.created_at),
        lambda: step.c.created_at.desc().nulls_last(),
        lambda: desc(step.c.created_at),
    ],
    ids=["method", "function", "nulls_last", "querykit"],
)
def test_include_takes_cores_desc(db: querykit.Database, order: Any) -> None:
    q = find_many(
        run,
        columns=[run.c.id],
        where=eq(run.c.id, "r3"),
        with_={"steps": include(columns=[step.c.id], order_by=[order()])},
    )
    assert " DESC ASC" not in q.to_sql().sql
    for strategy in ("json", "batched"):
        rows = db.all(
            find_many(
                run,
                columns=[run.c.id],
                where=eq(run.c.id, "r3"),
                strategy=strategy,
                with_={"steps": include(columns=[step.c.id], order_by=[order()])},
            )
        )
        assert rows == [{"id": "r3", "steps": [{"id": "s5"}, {"id": "s4"}]}]


# -- memory that only grows ----------------------------------------------------------------


def _growth(make: Any, warm: int, runs: int) -> tuple[int, int]:
    """Objects and resident bytes still held after ``runs`` more calls of ``make(i)``,
    past a warm-up that fills every cache. A leak of one object per call shows as
    ``runs`` blocks; caches that evict as they fill show as none."""
    for i in range(warm):
        make(i)
    gc.collect()
    blocks, rss = sys.getallocatedblocks(), _rss()
    for i in range(warm, warm + runs):
        make(i)
    gc.collect()
    return sys.getallocatedblocks() - blocks, _rss() - rss


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_in_lists_of_every_length_share_one_shape() -> None:
    from querykit.compile import cache_info, clear_cache

    clear_cache()
    lists = [[f"n{j}" for j in range(n)] for n in range(64)]

    def make(i: int) -> None:
        select(run.c.id).where(run.c.name.in_(lists[i % 64])).to_sql()

    blocks, rss = _growth(make, 1_000, 100_000)
    assert cache_info()["size"] == 1
    assert blocks < 1_000 and rss < 8 * 2**20, (blocks, rss)


def test_distinct_label_names_do_not_grow_memory() -> None:
    """SQLAlchemy caches every identifier it quotes; querykit's dialect keeps a bounded cache."""
    preparer = DIALECT.identifier_preparer
    for i in range(20_000):
        preparer.quote(f"label_{i}")
    assert len(preparer._strings) <= 4096

    def make(i: int) -> None:
        select(run.c.id.label(f"alias_{i}")).to_sql()

    # Every distinct label is a new shape, compiled anew (about 0.4 ms), so 20,000 calls
    # here; past the warm-up the compile cache and the quote cache are full and evict.
    blocks, rss = _growth(make, 5_000, 20_000)
    assert blocks < 2_000 and rss < 8 * 2**20, (blocks, rss)


def test_a_placeholder_in_a_condition_sqlalchemy_folds_away_is_accepted(db: Any) -> None:
    """``and_(eq(x, placeholder), in_array(x, []))`` is ``false``: the placeholder's value
    changes nothing, so the prepared query takes it and returns no rows (found by the
    differential suite; it used to be a CompileError)."""
    from querykit import and_, in_array, not_, placeholder

    folded = db.prepare(
        select(run.c.id).where(and_(eq(run.c.id, placeholder("p", str)), in_array(run.c.id, [])))
    )
    assert folded.all(p="r1") == []
    negated = db.prepare(
        select(run.c.id).where(
            not_(and_(eq(run.c.id, placeholder("p", str)), in_array(run.c.id, [])))
        )
    )
    assert sorted(negated.all(p="r1")) == [("r1",), ("r2",), ("r3",), ("r4",)]
