"""pgvector helpers on a real PostgreSQL: values, KNN against exact scans, indexes, settings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from pgvector import Bit, HalfVector, SparseVector, Vector

from querykit import (
    CompileError,
    ValidationError,
    cosine_distance,
    eq,
    hamming_distance,
    hnsw_index,
    index_sql,
    inner_product,
    insert,
    ivfflat_index,
    jaccard_distance,
    l1_distance,
    l2_distance,
    lt,
    nearest,
    negative_inner_product,
    select,
)

from ._support import Conn, copy_vectors, create_tables, execute, explain, vector_table
from .test_vector_sql import OPCLASS_SUFFIX, VALID_INDEXES


def _insert(conn: Conn, table: sa.Table, vectors: list[Any]) -> None:
    rows = [{"id": i, "embedding": v} for i, v in enumerate(vectors)]
    execute(conn, insert(table).values(rows))


def _count(conn: Conn, table: sa.Table) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()
    assert row is not None
    return int(row[0])


# -- operator values -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vector", "halfvec", "sparsevec"])
def test_float_operators_compute_what_numpy_computes(vconn: Conn, kind: str) -> None:
    items = vector_table(kind, 4)
    create_tables(vconn, items)
    stored = [1.0, 0.0, 2.0, -1.5]
    query = [0.5, 1.0, 0.0, 2.0]
    _insert(vconn, items, [stored if kind != "sparsevec" else dict(enumerate(stored))])
    col = items.c.embedding
    [row] = execute(
        vconn,
        select(
            l2_distance(col, query),
            cosine_distance(col, query),
            negative_inner_product(col, query),
            inner_product(col, query),
            l1_distance(col, query),
        ),
    )
    a, b = np.array(stored), np.array(query)
    dot = float(a @ b)
    expected = [
        float(np.linalg.norm(a - b)),
        1 - dot / float(np.linalg.norm(a) * np.linalg.norm(b)),
        -dot,
        dot,
        float(np.abs(a - b).sum()),
    ]
    assert row == pytest.approx(expected, rel=1e-5)


def test_bit_operators_compute_hamming_and_jaccard(vconn: Conn) -> None:
    items = vector_table("bit", 8)
    create_tables(vconn, items)
    _insert(vconn, items, ["11001010"])
    query = "10011010"
    [row] = execute(
        vconn,
        select(
            hamming_distance(items.c.embedding, query), jaccard_distance(items.c.embedding, query)
        ),
    )
    both = sum(x == y == "1" for x, y in zip("11001010", query, strict=True))
    either = sum("1" in (x, y) for x, y in zip("11001010", query, strict=True))
    assert row == pytest.approx([2, 1 - both / either])


def test_every_accepted_input_form_round_trips(vconn: Conn) -> None:
    items = vector_table("vector", 3)
    create_tables(vconn, items)
    forms: list[Any] = [
        [1.0, 2.0, 3.0],
        (1, 2, 3),
        np.array([1.0, 2.0, 3.0]),
        np.array([1, 2, 3], dtype=np.int32),
        Vector([1.0, 2.0, 3.0]),
        HalfVector([1.0, 2.0, 3.0]),
    ]
    _insert(vconn, items, forms)
    rows = execute(vconn, select(items.c.embedding).order_by(items.c.id))
    assert [r[0] for r in rows] == [Vector([1.0, 2.0, 3.0])] * len(forms)


def test_halfvec_sparsevec_and_bit_columns_round_trip(vconn: Conn) -> None:
    tables = [
        (vector_table("halfvec", 3, "h"), [0.5, 1.5, -2.0], HalfVector([0.5, 1.5, -2.0])),
        (vector_table("sparsevec", 5, "s"), {1: 2.0, 4: -1.0}, SparseVector({1: 2.0, 4: -1.0}, 5)),
        (vector_table("bit", 4, "b"), "1011", Bit("1011")),
    ]
    for table, value, expected in tables:
        create_tables(vconn, table)
        _insert(vconn, table, [value])
        [(got,)] = execute(vconn, select(table.c.embedding))
        # psycopg loads bit as text; the column type's decoder (the executor's) makes a Bit.
        assert table.c.embedding.type.decode_value(got) == expected, table.name  # type: ignore[attr-defined]


# -- KNN equals an exact scan ---------------------------------------------------------------


def _exact(data: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    if metric == "l2":
        return np.linalg.norm(data - query, axis=1)  # type: ignore[no-any-return]
    if metric == "l1":
        return np.abs(data - query).sum(axis=1)  # type: ignore[no-any-return]
    if metric == "inner_product":
        return -(data @ query)  # type: ignore[no-any-return]
    norms = np.linalg.norm(data, axis=1) * np.linalg.norm(query)
    return 1 - (data @ query) / norms  # type: ignore[no-any-return]


@pytest.fixture
def small_set(vconn: Conn) -> tuple[sa.Table, np.ndarray]:
    items = vector_table("vector", 8)
    create_tables(vconn, items)
    data = np.random.default_rng(7).normal(size=(300, 8)).astype(np.float32)
    copy_vectors(vconn, items, data)
    vconn.execute("ANALYZE items")
    return items, data.astype(np.float64)


@pytest.mark.parametrize("metric", ["l2", "cosine", "inner_product", "l1"])
def test_knn_equals_an_exact_scan(
    vconn: Conn, small_set: tuple[sa.Table, np.ndarray], metric: str
) -> None:
    items, data = small_set
    rng = np.random.default_rng(11)
    for _ in range(5):
        query = rng.normal(size=8)
        expected = _exact(data, query, metric)
        order = np.argsort(expected)[:10]
        rows = execute(vconn, nearest(items.c.embedding, query, 10, metric=metric))  # type: ignore[call-overload]
        assert [r[0] for r in rows] == order.tolist()
        assert [r[-1] for r in rows] == pytest.approx(expected[order], rel=1e-4, abs=1e-5)


def test_a_table_column_named_distance_is_selected_under_another_name(vconn: Conn) -> None:
    from querykit.columns import vector

    items = sa.Table(
        "routes",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("distance", sa.Float),  # kilometres: nothing to do with the vectors
        sa.Column("embedding", vector(2)),
    )
    create_tables(vconn, items)
    rows = [{"id": i, "distance": 100.0 - i, "embedding": [float(i), 0.0]} for i in range(5)]
    execute(vconn, insert(items).values(rows))
    with pytest.raises(CompileError, match=r"routes has a column named distance.*label"):
        nearest(items.c.embedding, [0.0, 0.0], 2, metric="l2")
    renamed = [items.c.id, items.c.distance.label("km")]
    found = execute(vconn, nearest(items.c.embedding, [3.1, 0.0], 2, metric="l2", columns=renamed))
    assert [(i, km) for i, km, _ in found] == [(3, 97.0), (4, 96.0)]
    assert [d for _, _, d in found] == pytest.approx([0.1, 0.9])


@pytest.mark.parametrize("metric", ["l2", "cosine", "inner_product", "l1"])
def test_knn_through_an_hnsw_index_equals_the_exact_scan(
    vconn: Conn, small_set: tuple[sa.Table, np.ndarray], metric: str
) -> None:
    items, data = small_set
    vconn.execute(index_sql(hnsw_index(items.c.embedding, metric)))  # type: ignore[arg-type]
    rng = np.random.default_rng(13)
    for _ in range(5):
        query = rng.normal(size=8)
        q = nearest(items.c.embedding, query, 10, metric=metric, ef_search=300)  # type: ignore[call-overload]
        q = q.with_settings({"enable_seqscan": "off"})  # a 300-row table: make the planner use it
        assert "Index Scan using items_embedding_hnsw" in explain(vconn, q)
        expected = np.argsort(_exact(data, query, metric))[:10]
        assert [r[0] for r in execute(vconn, q)] == expected.tolist()


# -- indexes ------------------------------------------------------------------------------------


def test_every_operator_class_builds_and_serves_its_metric(vconn: Conn) -> None:
    samples: dict[str, Any] = {
        "vector": [[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [2.0, 2.0, 0.5]],
        "halfvec": [[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [2.0, 2.0, 0.5]],
        "sparsevec": [{0: 1.0, 2: 2.0}, {1: 1.0, 2: 1.0}, {0: 2.0, 1: 2.0, 2: 0.5}],
        "bit": ["101", "011", "110"],
    }
    for number, (kind, method, metric) in enumerate(VALID_INDEXES):
        name = f"t{number}"
        table = vector_table(kind, 3, name)
        create_tables(vconn, table)
        _insert(vconn, table, samples[kind])
        helper = hnsw_index if method == "hnsw" else ivfflat_index
        options = {"lists": 1} if method == "ivfflat" else {}
        vconn.execute(index_sql(helper(table.c.embedding, metric, **options)))  # type: ignore[arg-type]
        query = samples[kind][0]
        q = nearest(table.c.embedding, query, 2, columns=[table.c.id], metric=metric)  # type: ignore[call-overload]
        q = q.with_settings({"enable_seqscan": "off"})
        index = f"{name}_embedding_{method}_{OPCLASS_SUFFIX[metric][:-4]}_idx"
        assert f"Index Scan using {index}" in explain(vconn, q), (kind, method, metric)
        rows = execute(vconn, q)
        assert rows and rows[0][0] == 0, (kind, method, metric)


def test_indexes_build_concurrently_outside_a_transaction(vconn: Conn) -> None:
    items = vector_table("vector", 3)
    create_tables(vconn, items)
    _insert(vconn, items, [[1, 2, 3]])
    vconn.execute(index_sql(hnsw_index(items.c.embedding, m=8), concurrently=True))
    vconn.execute(index_sql(hnsw_index(items.c.embedding, m=8), if_not_exists=True))
    [(definition,)] = vconn.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'items_embedding_hnsw_cosine_idx'"
    ).fetchall()
    assert definition.endswith("USING hnsw (embedding vector_cosine_ops) WITH (m='8')")


# -- settings, filters and the planner ------------------------------------------------------------


@pytest.fixture
def filtered_set(vconn: Conn) -> sa.Table:
    """5,000 8-d vectors, each in one of 100 categories, with an HNSW l2 index."""
    items = vector_table("vector", 8)
    create_tables(vconn, items)
    data = np.random.default_rng(1).normal(size=(5000, 8)).astype(np.float32)
    copy_vectors(vconn, items, data, cats=np.arange(5000) % 100)
    vconn.execute(index_sql(hnsw_index(items.c.embedding, "l2")))
    vconn.execute("ANALYZE items")
    return items


QUERY8 = [0.3, -0.2, 1.1, 0.0, 0.5, -1.0, 0.2, 0.7]


def test_nearest_is_served_by_the_index(vconn: Conn, filtered_set: sa.Table) -> None:
    plan = explain(vconn, nearest(filtered_set.c.embedding, QUERY8, 10, metric="l2"))
    assert "Index Scan using items_embedding_hnsw_l2_idx" in plan
    assert "Order By: (embedding <-> " in plan
    assert "Sort" not in plan


def test_filtered_knn_finds_k_rows_only_with_an_iterative_scan(
    vconn: Conn, filtered_set: sa.Table
) -> None:
    col = filtered_set.c.embedding
    where = lt(filtered_set.c.cat, 5)  # 5% of the rows
    plain = nearest(col, QUERY8, 10, metric="l2", where=where, ef_search=40)
    assert "Index Scan using items_embedding_hnsw_l2_idx" in explain(vconn, plain)
    # ef_search=40 candidates hold about 2 rows of the 5%: the filter leaves fewer than k.
    assert len(execute(vconn, plain)) < 10
    for mode in ("relaxed_order", "strict_order"):
        rows = execute(
            vconn, nearest(col, QUERY8, 10, metric="l2", where=where, iterative_scan=mode)
        )
        assert len(rows) == 10, mode
        assert all(r[1] < 5 for r in rows)
    strict = execute(
        vconn, nearest(col, QUERY8, 10, metric="l2", where=where, iterative_scan="strict_order")
    )
    distances = [r[-1] for r in strict]
    assert distances == sorted(distances)


def test_search_settings_apply_to_that_query_only(vconn: Conn, filtered_set: sa.Table) -> None:
    probe = select(
        sa.func.current_setting("hnsw.ef_search", type_=sa.Text),
        sa.func.current_setting("hnsw.iterative_scan", type_=sa.Text),
    )
    q = probe.with_settings({"hnsw.ef_search": 77, "hnsw.iterative_scan": "relaxed_order"})
    assert execute(vconn, q) == [("77", "relaxed_order")]
    assert execute(vconn, probe) == [("40", "off")]
    execute(vconn, nearest(filtered_set.c.embedding, QUERY8, 5, metric="l2", ef_search=99))
    assert vconn.execute("SHOW hnsw.ef_search").fetchone() == ("40",)


def test_k_above_ef_search_still_returns_k_rows(vconn: Conn, filtered_set: sa.Table) -> None:
    col = filtered_set.c.embedding
    q = nearest(col, QUERY8, 60, metric="l2")
    assert "Index Scan" in explain(vconn, q)
    assert len(execute(vconn, q)) == 60
    # Without querykit raising ef_search to k, the same SQL returns pgvector's ef_search (40) rows.
    compiled = q.to_sql()
    assert len(vconn.execute(compiled.sql, compiled.params).fetchall()) == 40


# -- bad input ------------------------------------------------------------------------------------

BAD_VECTORS = [
    ([1.0, 2.0], "expected 3 dimensions for vector\\(3\\), got 2"),
    ([1.0, float("nan"), 2.0], "component 1 is nan"),
    ([1.0, 2.0, float("inf")], "component 2 is inf"),
    ([], "an empty vector is not allowed"),
    ([1.0, "2", 3.0], "component 1 is not a number"),
    ([1.0, None, 3.0], "component 1 is not a number"),
    (np.array([1.0, np.nan, 2.0]), "component 1 is nan"),
    (np.array(["a", "b", "c"]), "component 0 is not a number"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_VECTORS)
def test_a_bulk_insert_with_one_bad_vector_writes_nothing(
    vconn: Conn, bad: Any, message: str
) -> None:
    items = vector_table("vector", 3)
    create_tables(vconn, items)
    good = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    with pytest.raises(ValidationError, match=message) as info:
        _insert(vconn, items, [*good, bad, *good])
    assert info.value.column == "items.embedding"
    assert _count(vconn, items) == 0


@pytest.mark.parametrize(("bad", "message"), BAD_VECTORS)
def test_a_bad_query_vector_is_rejected_before_sending(vconn: Conn, bad: Any, message: str) -> None:
    items = vector_table("vector", 3)
    create_tables(vconn, items)
    with pytest.raises(ValidationError, match=message):
        execute(vconn, nearest(items.c.embedding, bad, 5))
    # The connection saw no failed statement: it is still usable, outside any transaction.
    assert vconn.info.transaction_status.name == "IDLE"


@pytest.mark.parametrize(
    ("kind", "bad", "message"),
    [
        ("halfvec", [1.0, 2.0], "expected 3 dimensions for halfvec\\(3\\)"),
        ("halfvec", [1.0, 70000.0, 2.0], "outside the range of halfvec"),
        ("halfvec", [1.0, float("nan"), 2.0], "component 1 is nan"),
        ("sparsevec", {0: 1.0, 5: 2.0}, "sparsevec index 5 is outside 0..2"),
        ("sparsevec", {0: float("inf")}, "NaN and infinity are not allowed"),
        ("sparsevec", [], "an empty sparsevec is not allowed"),
        ("bit", "10", "expected 3 bits, got 2"),
        ("bit", "1x1", "a string of 0 and 1"),
        ("bit", "", "a string of 0 and 1"),
    ],
)
def test_bad_values_for_every_vector_type(vconn: Conn, kind: str, bad: Any, message: str) -> None:
    items = vector_table(kind, 3)
    create_tables(vconn, items)
    good = {"halfvec": [1.0, 2.0, 3.0], "sparsevec": {0: 1.0}, "bit": "101"}[kind]
    with pytest.raises(ValidationError, match=message):
        _insert(vconn, items, [good, bad])
    assert _count(vconn, items) == 0


def test_nan_in_a_distance_never_reaches_the_server(vconn: Conn) -> None:
    items = vector_table("vector", 3)
    create_tables(vconn, items)
    q = select(items.c.id).where(lt(l2_distance(items.c.embedding, [math.nan, 0, 0]), 1))
    with pytest.raises(ValidationError, match=r"items\.embedding: vector component 0 is nan"):
        execute(vconn, q)
    assert execute(vconn, select(items.c.id).where(eq(items.c.id, 1))) == []
