"""Golden SQL for the pgvector helpers: operators, nearest(), settings, index DDL (no database)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from pgvector import Bit, HalfVector, SparseVector, Vector
from sqlalchemy.schema import CreateTable

import querykit
from querykit import (
    CompileError,
    SchemaError,
    ValidationError,
    cosine_distance,
    distance,
    eq,
    gt,
    hamming_distance,
    hnsw_index,
    index_sql,
    inner_product,
    ivfflat_index,
    jaccard_distance,
    jsonb_index,
    knn_settings,
    l1_distance,
    l2_distance,
    lt,
    nearest,
    negative_inner_product,
    select,
    tsvector_column,
    tsvector_index,
)
from querykit.build.query import SelectQuery
from querykit.columns import halfvec, jsonb, vector
from querykit.schema.indexes import ddl_text
from schema import embedding
from tests.sqlassert import assert_sql

from ._support import vector_table

V384 = [0.25] * 384
ALL_COLUMNS = (
    "embedding.id, embedding.content, embedding.embedding, embedding.metadata, embedding.created_at"
)


def test_the_column_types_keep_their_public_names() -> None:
    # querykit.vector and querykit.jsonb are the column types (the modules are vectors, json_ops).
    assert querykit.vector(3).get_col_spec() == "vector(3)"
    assert querykit.jsonb(dict).payload_type is dict


# -- nearest ----------------------------------------------------------------------------


def test_nearest_orders_by_the_distance_and_limits_with_bound_values() -> None:
    q = nearest(embedding.c.embedding, V384, 5)
    assert_sql(
        q,
        f"SELECT {ALL_COLUMNS}, embedding.embedding <=> %s AS distance \n"
        "FROM embedding ORDER BY distance \n LIMIT %s",
        [V384, 5],
    )
    assert q.to_sql().settings == (("hnsw.ef_search", "100"),)  # the default for recall


def test_nearest_with_a_filter_columns_metric_and_search_settings() -> None:
    q = nearest(
        embedding.c.embedding,
        np.full(384, 0.25, dtype=np.float32),
        10,
        columns=[embedding.c.id, embedding.c.content],
        metric="l2",
        where=eq(embedding.c.content, "x"),
        ef_search=100,
        iterative_scan="relaxed_order",
        max_scan_tuples=5000,
        probes=3,
    )
    assert_sql(
        q,
        "SELECT embedding.id, embedding.content, embedding.embedding <-> %s AS distance \n"
        "FROM embedding \nWHERE embedding.content = %s ORDER BY distance \n LIMIT %s",
        [V384, "x", 10],
    )
    assert q.to_sql().settings == (
        ("hnsw.ef_search", "100"),
        ("hnsw.iterative_scan", "relaxed_order"),
        ("ivfflat.iterative_scan", "relaxed_order"),
        ("hnsw.max_scan_tuples", "5000"),
        ("ivfflat.probes", "3"),
    )


@pytest.mark.parametrize(
    ("metric", "operator"),
    [("l2", "<->"), ("cosine", "<=>"), ("inner_product", "<#>"), ("l1", "<+>")],
)
def test_nearest_uses_the_operator_of_the_metric(metric: str, operator: str) -> None:
    q = nearest(embedding.c.embedding, V384, 3, columns=[embedding.c.id], metric=metric)  # type: ignore[call-overload]
    assert_sql(
        q,
        f"SELECT embedding.id, embedding.embedding {operator} %s AS distance \n"
        "FROM embedding ORDER BY distance \n LIMIT %s",
        [V384, 3],
    )


def test_nearest_is_a_select_query_that_composes_and_never_mutates() -> None:
    q = nearest(embedding.c.embedding, V384, 3, columns=[embedding.c.id])
    narrowed = q.where(lt(embedding.c.id, 100))
    assert narrowed is not q
    assert "WHERE" not in q.to_sql().sql
    assert_sql(
        narrowed,
        "SELECT embedding.id, embedding.embedding <=> %s AS distance \n"
        "FROM embedding \nWHERE embedding.id < %s ORDER BY distance \n LIMIT %s",
        [V384, 100, 3],
    )


def test_nearest_shares_one_compiled_shape_across_query_vectors() -> None:
    first = nearest(embedding.c.embedding, V384, 3).to_sql()
    before = querykit.cache_info()["hits"]
    second = nearest(embedding.c.embedding, [0.5] * 384, 3).to_sql()
    assert querykit.cache_info()["hits"] == before + 1
    assert first.sql == second.sql
    assert second.params[0] == Vector([0.5] * 384)


# -- nearest() made per call: one template per arguments, a key learned once -----------------


def walked_key(query: SelectQuery[*tuple[object, ...]]) -> tuple[object, list[object]]:
    """The key walk of ``query`` itself, as if no key had been memoised."""
    values: list[object] = []
    return query._clone()._key(values), values


def test_nearest_queries_of_one_template_take_the_walked_key_and_their_own_values() -> None:
    vectors = [V384, [0.5] * 384, np.full(384, 0.75, dtype=np.float32), tuple([0.125] * 384)]
    for v in vectors:
        q = nearest(embedding.c.embedding, v, 3, columns=[embedding.c.id])
        values: list[object] = []
        assert q._key(values) == walked_key(q)[0]
        assert values == walked_key(q)[1] and values[0] is v
        assert_sql(
            q,
            "SELECT embedding.id, embedding.embedding <=> %s AS distance \n"
            "FROM embedding ORDER BY distance \n LIMIT %s",
            [Vector(list(v)), 3],  # type: ignore[call-overload]
        )


def test_copies_of_a_nearest_query_walk_their_own_key() -> None:
    for _ in range(2):  # the second query comes from the template, with a memoised key
        q = nearest(embedding.c.embedding, V384, 3, columns=[embedding.c.id])
    fetch = "SELECT embedding.id, embedding.embedding <=> %s AS distance \nFROM embedding"
    assert_sql(q.limit(5), f"{fetch} ORDER BY distance \n LIMIT %s", [V384, 5])
    assert_sql(
        q.where(lt(embedding.c.id, 100)),
        f"{fetch} \nWHERE embedding.id < %s ORDER BY distance \n LIMIT %s",
        [V384, 100, 3],
    )
    assert_sql(
        q.order_by(embedding.c.id),
        f"{fetch} ORDER BY distance, embedding.id ASC \n LIMIT %s",
        [V384, 3],
    )
    assert_sql(q, f"{fetch} ORDER BY distance \n LIMIT %s", [V384, 3])  # unchanged


def test_each_argument_of_nearest_makes_its_own_template() -> None:
    items = vector_table("vector")
    v = [1.0, 2.0, 3.0]
    for _ in range(2):
        assert nearest(items.c.embedding, v, 2, columns=[items.c.id]).to_sql().params[1] == 2
        assert nearest(items.c.embedding, v, 4, columns=[items.c.id]).to_sql().params[1] == 4
        by_cat = nearest(items.c.embedding, v, 2, columns=[items.c.cat]).to_sql().sql
        assert by_cat.startswith("SELECT items.cat, items.embedding <=> %s")
        l2 = nearest(items.c.embedding, v, 2, columns=[items.c.id], metric="l2").to_sql().sql
        assert "items.embedding <-> %s" in l2
        wide = nearest(items.c.embedding, v, 2, columns=[items.c.id], ef_search=50).to_sql()
        assert wide.settings == (("hnsw.ef_search", "50"),)
        whole = nearest(items.c.embedding, v, 2).to_sql().sql
        assert whole.startswith("SELECT items.id, items.cat, items.embedding, items.embedding <=>")
        once = nearest(items.c.embedding, v, 2, columns=iter([items.c.cat, items.c.id]))  # type: ignore[call-overload]
        assert once.to_sql().sql.startswith("SELECT items.cat, items.id, items.embedding <=>")


@pytest.mark.parametrize("k", [True, 3.0, np.int64(3)])
def test_a_k_equal_to_a_known_int_is_still_checked(k: object) -> None:
    for _ in range(2):
        nearest(embedding.c.embedding, V384, 1 if k is True else 3)
    with pytest.raises(CompileError, match="must be"):
        nearest(embedding.c.embedding, V384, k)  # type: ignore[call-overload]


def test_query_vectors_that_are_expressions_key_themselves() -> None:
    items = vector_table("vector")
    for v in ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]):
        literal = sa.literal(Vector(v), items.c.embedding.type)
        q = nearest(items.c.embedding, literal, 2, columns=[items.c.id])
        assert q.to_sql().params == (Vector(v), 2)
    other = vector_table("vector", name="other")
    q = nearest(items.c.embedding, other.c.embedding, 2, columns=[items.c.id])
    assert "items.embedding <=> other.embedding AS distance" in q.to_sql().sql
    assert q.to_sql().params == (2,)


def test_checked_vectors_keep_the_binary_form_they_were_checked_in() -> None:
    from querykit.codecs import pgvector as vector_codecs
    from querykit.codecs.pgvector import CheckedVector

    assert vector_codecs._LAZY_COMPONENTS  # else arrays convert the slower way: pgvector changed
    values = np.random.default_rng(7).normal(size=768).astype(np.float32)
    inputs = [
        values[:384],
        values[::2],  # not contiguous
        values[:384].astype(">f4"),  # big-endian
        values[:384].astype(np.float16),
        values[:384].tolist(),
        tuple(values[:384].tolist()),
    ]
    for v in inputs:
        param = nearest(embedding.c.embedding, v, 3).to_sql().params[0]
        plain = Vector(np.asarray(v, dtype=np.float32))
        assert isinstance(param, CheckedVector)
        assert param == plain and plain == param
        assert param.to_binary() == plain.to_binary()
        assert param.to_list() == plain.to_list() and param.to_text() == plain.to_text()
        assert param.dimensions() == 384 and repr(param) == repr(plain)
        assert np.array_equal(param.to_numpy(), plain.to_numpy())


def test_only_types_without_attributes_of_their_own_key_as_values() -> None:
    from querykit.build.binding import keys_as_value

    class Slotted:
        __slots__ = ()

    class Dynamic:
        def __getattr__(self, name: str) -> object:
            return None

    assert all(map(keys_as_value, (list, tuple, np.ndarray, Slotted, int, str)))
    assert not any(map(keys_as_value, (Vector, Dynamic, sa.Column, SelectQuery)))


def test_the_short_distance_label_matches_sqlalchemys() -> None:
    from querykit.build import vector as vectors

    assert vectors._FAST_LABEL  # else nearest() is slower: SQLAlchemy's Label changed
    label = nearest(embedding.c.embedding, V384, 3)._columns[-1]
    core = sa.sql.elements.Label("distance", label.distance, label.distance.type)
    assert {k: v for k, v in vars(label).items() if k != "distance"} == vars(core)


def test_nearest_inline_renders_the_vector_as_a_cast_literal() -> None:
    items = vector_table("vector")
    q = nearest(items.c.embedding, [1, 2.5, -3], 2, columns=[items.c.id])
    assert q.to_sql().inline() == (
        "SELECT items.id, items.embedding <=> '[1.0,2.5,-3.0]'::vector(3) AS distance \n"
        "FROM items ORDER BY distance \n LIMIT 2"
    )


def test_the_default_ef_search_is_100_or_k_when_k_is_larger() -> None:
    assert nearest(embedding.c.embedding, V384, 1).to_sql().settings == (("hnsw.ef_search", "100"),)
    assert nearest(embedding.c.embedding, V384, 100).to_sql().settings == (
        ("hnsw.ef_search", "100"),
    )
    assert nearest(embedding.c.embedding, V384, 101).to_sql().settings == (
        ("hnsw.ef_search", "101"),
    )
    assert nearest(embedding.c.embedding, V384, 10, ef_search=40).to_sql().settings == (
        ("hnsw.ef_search", "40"),
    )
    assert knn_settings(5000) == {"hnsw.ef_search": "1000"}


def test_strict_order_applies_to_hnsw_only() -> None:
    assert knn_settings(5, iterative_scan="strict_order") == {
        "hnsw.ef_search": "100",
        "hnsw.iterative_scan": "strict_order",
    }
    assert knn_settings(5, iterative_scan="off") == {
        "hnsw.ef_search": "100",
        "hnsw.iterative_scan": "off",
        "ivfflat.iterative_scan": "off",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ef_search": 0}, "ef_search must be from 1 to 1000"),
        ({"ef_search": 1001}, "ef_search must be from 1 to 1000"),
        ({"ef_search": "40"}, "ef_search must be an int"),
        ({"ef_search": 5}, "ef_search=5 is less than k=10"),
        ({"probes": 0}, "probes must be from 1 to 32768"),
        ({"probes": 40000}, "probes must be from 1 to 32768"),
        ({"max_scan_tuples": 0}, "max_scan_tuples must be from 1"),
        ({"iterative_scan": "fast"}, "iterative_scan must be one of"),
        ({"ef_search": True}, "ef_search must be an int"),
    ],
)
def test_bad_search_settings_are_compile_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CompileError, match=message):
        nearest(embedding.c.embedding, V384, 10, **kwargs)  # type: ignore[call-overload]


def test_ef_search_below_k_is_allowed_with_an_iterative_scan() -> None:
    settings = knn_settings(10, ef_search=5, iterative_scan="relaxed_order")
    assert settings["hnsw.ef_search"] == "5"


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_k_must_be_a_positive_int(k: object) -> None:
    with pytest.raises(CompileError, match="k must be"):
        nearest(embedding.c.embedding, V384, k)  # type: ignore[call-overload]


def test_nearest_needs_a_table_column() -> None:
    with pytest.raises(SchemaError, match="nearest\\(\\) needs a column of a Table"):
        nearest(sa.cast(embedding.c.embedding, halfvec(384)), V384, 3)


# -- distance operators ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "operator"),
    [
        (l2_distance, "embedding.embedding <-> %s"),
        (cosine_distance, "embedding.embedding <=> %s"),
        (negative_inner_product, "embedding.embedding <#> %s"),
        (inner_product, "(embedding.embedding <#> %s) * -1"),
        (l1_distance, "embedding.embedding <+> %s"),
    ],
)
def test_distance_operators(function: object, operator: str) -> None:
    expr = function(embedding.c.embedding, V384).label("d")  # type: ignore[operator]
    assert_sql(
        select(embedding.c.id, expr),
        f"SELECT embedding.id, {operator} AS d \nFROM embedding",
        [V384],
    )


def test_bit_operators() -> None:
    items = vector_table("bit", 4)
    assert_sql(
        select(
            hamming_distance(items.c.embedding, "1010").label("h"),
            jaccard_distance(items.c.embedding, [True, False, True, True]).label("j"),
        ),
        "SELECT items.embedding <~> %s AS h, items.embedding <%%> %s AS j \nFROM items",
        ["1010", "1011"],
    )


def test_distances_group_correctly_inside_larger_expressions() -> None:
    d = l2_distance(embedding.c.embedding, V384)
    assert_sql(
        select(embedding.c.id).where(lt(d, 0.5)),
        "SELECT embedding.id \nFROM embedding \nWHERE embedding.embedding <-> %s < %s",
        [V384, 0.5],
    )
    assert_sql(
        select((d * 2).label("x")),
        "SELECT (embedding.embedding <-> %s) * %s AS x \nFROM embedding",
        [V384, 2],
    )
    assert_sql(
        select(embedding.c.id).where(gt(inner_product(embedding.c.embedding, V384), 0.8)),
        "SELECT embedding.id \nFROM embedding \nWHERE (embedding.embedding <#> %s) * -1 > %s",
        [V384, 0.8],
    )


def test_distance_between_two_columns_binds_nothing() -> None:
    other = embedding.alias("other")
    assert_sql(
        select(distance(embedding.c.embedding, other.c.embedding, "l2").label("d")).from_(
            embedding, other
        ),
        "SELECT embedding.embedding <-> other.embedding AS d \nFROM embedding, embedding AS other",
    )


def test_query_vectors_take_the_column_type() -> None:
    cases = [
        ("vector", [1, 2, 3], Vector),
        ("halfvec", (1.0, 2.0, 3.0), HalfVector),
        ("sparsevec", {0: 1.0, 2: 3.0}, SparseVector),
        ("bit", "101", Bit),
    ]
    for kind, value, cls in cases:
        items = vector_table(kind)
        params = select(items.c.id).order_by(distance(items.c.embedding, value)).to_sql().params
        assert isinstance(params[0], cls), kind


def test_a_metric_the_type_lacks_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="the hamming metric does not apply to embedding"):
        hamming_distance(embedding.c.embedding, V384)
    with pytest.raises(SchemaError, match=r"the l2 metric does not apply to items\.embedding"):
        l2_distance(vector_table("bit").c.embedding, "101")
    with pytest.raises(SchemaError, match="'dot' is not a metric"):
        distance(embedding.c.embedding, V384, "dot")  # type: ignore[arg-type]


def test_a_non_vector_column_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"embedding\.content is TEXT") as info:
        l2_distance(embedding.c.content, V384)
    assert info.value.column == "embedding.content"


def test_a_missing_query_vector_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="needs a query vector, not None"):
        cosine_distance(embedding.c.embedding, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([0.5] * 3, "expected 384 dimensions for vector\\(384\\), got 3"),
        ([], "an empty vector is not allowed"),
        ([0.5] * 383 + [float("nan")], "component 383 is nan"),
        ([float("-inf")] + [0.5] * 383, "component 0 is -inf"),
        ([0.5] * 100 + ["0.5"] + [0.5] * 283, "component 100 is not a number"),
        ([True] + [0.5] * 383, "component 0 is not a number: True"),
        ([1e39] + [0.5] * 383, "outside the range of vector"),
        # just beyond the float32 limit: it would round to the largest float32, not to inf
        ([0.5] * 10 + [-3.4028235e38] + [0.5] * 373, "component 10 is .*outside the range"),
        ([0.5] * 383 + [2**128], "component 383 is .*outside the range"),
        ([10**400] + [0.5] * 383, "component 0 is .*outside the range"),
        ([0.5] * 383 + [None], "component 383 is not a number"),
        (np.full(384, np.inf, dtype=np.float32), "component 0 is inf"),
        (np.full(384, 1e39), "component 0 is .*outside the range"),
        (np.zeros((2, 192)), "expected a 1-d array"),
        ("[1,2,3]", "expected a list of floats"),
    ],
)
def test_bad_query_vectors_fail_before_sending_and_name_the_column(
    value: object, message: str
) -> None:
    q = nearest(embedding.c.embedding, value, 3)
    with pytest.raises(ValidationError, match=message) as info:
        q.to_sql()
    assert info.value.column == "embedding.embedding"
    assert str(info.value).startswith("embedding.embedding: ")


def test_numpy_lists_tuples_and_pgvector_values_are_accepted() -> None:
    values = [
        [0.25] * 384,
        tuple([0.25] * 384),
        np.full(384, 0.25),
        np.full(384, 0.25, dtype=np.float32),
        np.full(384, 1, dtype=np.int64),
        np.full(384, 0.25, dtype=np.float16),
        np.full(384, 3e38, dtype=np.float32),  # finite, near the float32 limit
        [3.4028234663852886e38] * 384,  # the largest float32 exactly
        [1] * 384,
        Vector([0.25] * 384),
        HalfVector([0.25] * 384),
    ]
    for value in values:
        param = nearest(embedding.c.embedding, value, 1).to_sql().params[0]
        assert isinstance(param, Vector)
        assert len(param.to_list()) == 384


# -- index helpers --------------------------------------------------------------------------

# Every (type, method, metric) pgvector 0.8 has an operator class for.
VALID_INDEXES = [
    (kind, method, metric)
    for kind, method, metric in itertools.product(
        ("vector", "halfvec", "sparsevec", "bit"),
        ("hnsw", "ivfflat"),
        ("l2", "cosine", "inner_product", "l1", "hamming", "jaccard"),
    )
    if (kind == "bit") == (metric in ("hamming", "jaccard"))
    and not (method == "ivfflat" and (kind == "sparsevec" or metric in ("l1", "jaccard")))
]
OPCLASS_SUFFIX = {
    "l2": "l2_ops",
    "cosine": "cosine_ops",
    "inner_product": "ip_ops",
    "l1": "l1_ops",
    "hamming": "hamming_ops",
    "jaccard": "jaccard_ops",
}


def test_the_index_matrix_is_pgvectors() -> None:
    assert len(VALID_INDEXES) == 4 * 3 + 2 + 3 + 3 + 1  # HNSW: 4 metrics x 3 types + 2 bit


@pytest.mark.parametrize(("kind", "method", "metric"), VALID_INDEXES)
def test_index_helpers_pick_the_operator_class(kind: str, method: str, metric: str) -> None:
    items = vector_table(kind)
    helper = hnsw_index if method == "hnsw" else ivfflat_index
    index = helper(items.c.embedding, metric)  # type: ignore[arg-type]
    opclass = f"{kind}_{OPCLASS_SUFFIX[metric]}"
    assert index_sql(index) == (
        f"CREATE INDEX items_embedding_{method}_{OPCLASS_SUFFIX[metric][:-4]}_idx ON items "
        f"USING {method} (embedding {opclass})"
    )
    assert index in items.indexes  # joins the table's metadata, like any Index(...)


INVALID_INDEXES = [
    (kind, method, metric)
    for kind, method, metric in itertools.product(
        ("vector", "halfvec", "sparsevec", "bit"),
        ("hnsw", "ivfflat"),
        ("l2", "cosine", "inner_product", "l1", "hamming", "jaccard"),
    )
    if (kind, method, metric) not in VALID_INDEXES
]


@pytest.mark.parametrize(("kind", "method", "metric"), INVALID_INDEXES)
def test_index_helpers_refuse_pairs_without_an_operator_class(
    kind: str, method: str, metric: str
) -> None:
    items = vector_table(kind)
    helper = hnsw_index if method == "hnsw" else ivfflat_index
    with pytest.raises(SchemaError) as info:
        helper(items.c.embedding, metric)  # type: ignore[arg-type]
    assert info.value.column == "items.embedding"
    assert not items.indexes


def test_index_options_concurrently_and_if_not_exists() -> None:
    items = vector_table("vector")
    assert index_sql(
        hnsw_index(items.c.embedding, "l2", m=24, ef_construction=100, name="items_ann"),
        concurrently=True,
        if_not_exists=True,
    ) == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_ann ON items "
        "USING hnsw (embedding vector_l2_ops) WITH (m = 24, ef_construction = 100)"
    )
    assert index_sql(ivfflat_index(items.c.embedding, lists=250)) == (
        "CREATE INDEX items_embedding_ivfflat_cosine_idx ON items "
        "USING ivfflat (embedding vector_cosine_ops) WITH (lists = 250)"
    )
    assert index_sql(hnsw_index(vector_table("bit").c.embedding)) == (
        "CREATE INDEX items_embedding_hnsw_hamming_idx ON items "
        "USING hnsw (embedding bit_hamming_ops)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": 1}, "m must be from 2 to 100"),
        ({"m": 101}, "m must be from 2 to 100"),
        ({"ef_construction": 3}, "ef_construction must be from 4 to 1000"),
        ({"ef_construction": 1001}, "ef_construction must be from 4 to 1000"),
        ({"m": 16, "ef_construction": 31}, "must be at least 2 × m \\(32\\)"),
        ({"ef_construction": 20}, "must be at least 2 × m \\(32\\)"),
        ({"m": 40}, "m=40 needs ef_construction of at least 80"),
    ],
)
def test_hnsw_options_are_checked(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(CompileError, match=message):
        hnsw_index(vector_table("vector").c.embedding, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("lists", [0, 32769, 1.5])
def test_ivfflat_lists_are_checked(lists: object) -> None:
    with pytest.raises(CompileError, match="lists must be"):
        ivfflat_index(vector_table("vector").c.embedding, lists=lists)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "dim"), [("vector", 2001), ("halfvec", 4001), ("bit", 64001)])
def test_too_many_dimensions_for_an_index(kind: str, dim: int) -> None:
    with pytest.raises(SchemaError, match="indexes at most"):
        hnsw_index(vector_table(kind, dim).c.embedding)


def test_index_limits_that_fit() -> None:
    for kind, dim in [("vector", 2000), ("halfvec", 4000), ("bit", 64000)]:
        hnsw_index(vector_table(kind, dim).c.embedding)


def test_an_index_name_longer_than_postgresql_allows() -> None:
    items = vector_table("vector")
    with pytest.raises(SchemaError, match=r"hnsw_index\(\): the index name 'xx.* is 64 bytes"):
        hnsw_index(items.c.embedding, name="x" * 64)
    # 32 characters, 64 bytes: SQLAlchemy counts characters, PostgreSQL bytes
    with pytest.raises(SchemaError, match=r"ivfflat_index\(\): .* is 64 bytes"):
        ivfflat_index(items.c.embedding, name="é" * 32)
    assert hnsw_index(items.c.embedding, name="é" * 31 + "x").name == "é" * 31 + "x"


def test_an_index_name_with_a_nul_is_refused_by_every_helper() -> None:
    items = vector_table("vector")
    doc = sa.Table(
        "doc",
        sa.MetaData(),
        sa.Column("data", jsonb(dict[str, Any])),
        tsvector_column("data", name="search"),
    )
    helpers = {
        "hnsw_index()": lambda name: hnsw_index(items.c.embedding, name=name),
        "ivfflat_index()": lambda name: ivfflat_index(items.c.embedding, name=name),
        "jsonb_index()": lambda name: jsonb_index(doc.c.data, name=name),
        "tsvector_index()": lambda name: tsvector_index(doc.c.search, name=name),
    }
    for what, make in helpers.items():
        with pytest.raises(
            SchemaError, match=f"{re.escape(what)}: the index name 'a\\\\x00b' contains a NUL"
        ):
            make("a\x00b")  # type: ignore[no-untyped-call]


def test_index_sql_refuses_names_postgresql_would_cut_or_reject() -> None:
    items = vector_table("vector")
    for name, problem in [("x" * 70, "70 bytes"), ("a\x00b", "NUL")]:
        with pytest.raises(SchemaError, match=f"index_sql\\(\\): the index name .*{problem}"):
            index_sql(sa.Index(name, items.c.id))
    # a name made by a naming convention
    meta = sa.MetaData(naming_convention={"ix": "ix_%(column_0_N_label)s_" + "y" * 60})
    table = sa.Table("t", meta, sa.Column("id", sa.Integer), sa.Column("v", vector(3)))
    with pytest.raises(SchemaError, match=r"index_sql\(\): the index name 'ix_t_id_y+' is 68"):
        index_sql(sa.Index(None, table.c.id))
    # a constraint name SQLAlchemy refuses when it renders the DDL (querykit sql --ddl)
    table.append_constraint(sa.CheckConstraint("id > 0", name="c" * 70))
    with pytest.raises(SchemaError, match=r"the DDL: Identifier 'c+' exceeds .* shorter name"):
        ddl_text(CreateTable(table), "the DDL")


def test_index_helpers_need_a_vector_column_of_a_table() -> None:
    with pytest.raises(SchemaError, match="needs a pgvector column"):
        hnsw_index(embedding.c.content)
    with pytest.raises(SchemaError, match="needs a column of a Table"):
        hnsw_index(sa.column("embedding", vector(3)))


def test_distances_work_inside_plain_sqlalchemy_constructs() -> None:
    from sqlalchemy.sql import visitors

    from querykit import sql
    from querykit.codecs.dialect import DIALECT

    items = vector_table("vector")
    d = l2_distance(items.c.embedding, [1, 2, 3])
    stmt = sa.select(items.c.id, d.label("d")).where(d < 5)
    compiled = stmt.compile(dialect=DIALECT)
    assert compiled.string == (
        "SELECT items.id, items.embedding <-> %s AS d \nFROM items \n"
        "WHERE items.embedding <-> %s < %s"
    )
    assert [compiled.params[name] for name in compiled.positiontup] == [[1, 2, 3], [1, 2, 3], 5]  # type: ignore[union-attr]
    cloned = visitors.cloned_traverse(stmt, {}, {})
    assert cloned.compile(dialect=DIALECT).string == compiled.string
    assert_sql(
        select(items.c.id).where(sql(":d < 1", d=d)),
        "SELECT items.id \nFROM items \nWHERE items.embedding <-> %s < 1",
        [[1.0, 2.0, 3.0]],
    )


def test_the_core_statement_matches_the_compiled_sql() -> None:
    from querykit.codecs.dialect import DIALECT

    q = nearest(embedding.c.embedding, V384, 4, where=eq(embedding.c.content, "x"))
    core = q.statement.compile(dialect=DIALECT)
    assert core.string == q.to_sql().sql
    assert [core.params[name] for name in core.positiontup][1:] == ["x", 4]
