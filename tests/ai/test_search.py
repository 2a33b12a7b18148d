"""Full-text search and hybrid search: golden SQL and real rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from querykit import (
    CompileError,
    SchemaError,
    desc,
    hnsw_index,
    hybrid_search,
    index_sql,
    insert,
    matches,
    ne,
    select,
    ts_rank,
    ts_rank_cd,
    tsquery,
    tsvector_column,
    tsvector_index,
)
from querykit.codecs.dialect import DIALECT
from querykit.columns import vector
from tests.sqlassert import assert_sql

from ._support import Conn, create_tables, execute, explain


def doc_table(dim: int = 3) -> sa.Table:
    """Documents with a generated, weighted tsvector and an embedding (own MetaData)."""
    return sa.Table(
        "doc",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("embedding", vector(dim), nullable=False),
        tsvector_column("title", "body", weights=["A", "B"], name="search"),
    )


DOC = doc_table()


# -- golden SQL: full text ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "parser"),
    [
        ("websearch", "websearch_to_tsquery"),
        ("plain", "plainto_tsquery"),
        ("phrase", "phraseto_tsquery"),
        ("raw", "to_tsquery"),
    ],
)
def test_matches_parses_the_bound_text_by_mode(mode: str, parser: str) -> None:
    assert_sql(
        select(DOC.c.id).where(matches(DOC.c.search, "fat cats", mode=mode)),  # type: ignore[arg-type]
        f"SELECT doc.id \nFROM doc \nWHERE doc.search @@ {parser}('english', %s)",
        ["fat cats"],
    )


def test_config_and_tsquery_expressions() -> None:
    assert_sql(
        select(DOC.c.id).where(matches(DOC.c.search, "chat", config="pg_catalog.french")),
        "SELECT doc.id \nFROM doc \nWHERE doc.search @@ websearch_to_tsquery('pg_catalog.french', %s)",
        ["chat"],
    )
    assert_sql(
        select(DOC.c.id).where(
            matches(DOC.c.search, tsquery("a b", mode="plain", config="simple"))
        ),
        "SELECT doc.id \nFROM doc \nWHERE doc.search @@ plainto_tsquery('simple', %s)",
        ["a b"],
    )


def test_rank_and_order_by_its_label() -> None:
    rank = ts_rank(DOC.c.search, "fat cats").label("rank")
    assert_sql(
        select(DOC.c.id, rank).where(matches(DOC.c.search, "fat cats")).order_by(desc(rank)),
        "SELECT doc.id, ts_rank(doc.search, websearch_to_tsquery('english', %s)) AS rank \n"
        "FROM doc \nWHERE doc.search @@ websearch_to_tsquery('english', %s) ORDER BY rank DESC",
        ["fat cats", "fat cats"],
    )
    assert_sql(
        select(ts_rank_cd(DOC.c.search, "x", mode="plain", normalization=32).label("r")),
        "SELECT ts_rank_cd(doc.search, plainto_tsquery('english', %s), 32) AS r \nFROM doc",
        ["x"],
    )


def test_generated_tsvector_column_ddl() -> None:
    table = sa.Table(
        "note",
        sa.MetaData(),
        sa.Column("Title", sa.Text),
        sa.Column("body", sa.Text),
        tsvector_column("Title", "body", config="simple", name="search"),
        tsvector_column("Title", "body", weights=["A", "C"], name="weighted"),
    )
    ddl = str(CreateTable(table).compile(dialect=DIALECT))
    assert (
        "search TSVECTOR GENERATED ALWAYS AS "
        """(to_tsvector('simple', coalesce("Title", '') || ' ' || coalesce(body, ''))) STORED"""
    ) in ddl
    assert (
        "weighted TSVECTOR GENERATED ALWAYS AS "
        """(setweight(to_tsvector('english', coalesce("Title", '')), 'A') || """
        "setweight(to_tsvector('english', coalesce(body, '')), 'C')) STORED"
    ) in ddl


def test_tsvector_column_is_not_null_and_typed() -> None:
    column = tsvector_column("body")
    assert column.nullable is False
    assert column.computed is not None and column.computed.persisted is True


def test_gin_index_for_full_text() -> None:
    table = doc_table()
    assert index_sql(tsvector_index(table.c.search)) == (
        "CREATE INDEX doc_search_gin_idx ON doc USING gin (search)"
    )


@pytest.mark.parametrize(
    "config",
    [
        "English",
        "english'; DROP TABLE doc; --",
        "a b",
        "",
        "1english",
        "a.b.c",
        "english)",
        None,
        3,
    ],
)
def test_a_config_must_be_a_plain_identifier(config: Any) -> None:
    with pytest.raises(CompileError, match="config must be a text search configuration name"):
        matches(DOC.c.search, "x", config=config)
    with pytest.raises(CompileError, match="config must be"):
        tsvector_column("body", config=config)
    with pytest.raises(CompileError, match="config must be"):
        ts_rank(DOC.c.search, "x", config=config)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: matches(DOC.c.search, "x", mode="fuzzy"), CompileError, "mode must be one of"),  # type: ignore[arg-type]
        (lambda: matches(DOC.c.title, "x"), SchemaError, "needs a tsvector column"),
        (lambda: matches(DOC.c.search, None), CompileError, "needs the search text as a str"),  # type: ignore[arg-type]
        (lambda: ts_rank(DOC.c.search, "x", normalization=64), CompileError, "0 to 63"),
        (lambda: ts_rank(DOC.c.body, "x"), SchemaError, "needs a tsvector"),
        (lambda: tsvector_column(), CompileError, "at least one source"),
        (lambda: tsvector_column("a", weights=["E"]), CompileError, "one of A, B, C, D"),
        (lambda: tsvector_column("a", "b", weights=["A"]), CompileError, "for each of the 2"),
        (lambda: tsvector_index(DOC.c.body), SchemaError, "needs a tsvector"),
    ],
)
def test_full_text_misuse_is_a_clear_error(
    build: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        build()


def test_nul_in_the_search_text_is_a_validation_error() -> None:
    from querykit import ValidationError

    with pytest.raises(ValidationError, match="NUL") as info:
        select(DOC.c.id).where(matches(DOC.c.search, "a\x00b")).to_sql()
    assert info.value.column == "doc.search"


# -- golden SQL: hybrid search ----------------------------------------------------------------

HYBRID_SQL = (
    "WITH vector_hits AS \n"
    "(SELECT knn.key AS key, row_number() OVER (ORDER BY knn.distance) AS rank \n"
    "FROM (SELECT doc.id AS key, doc.embedding <=> %s AS distance \n"
    "FROM doc \nWHERE doc.title != %s ORDER BY distance \n LIMIT %s) AS knn), \n"
    "text_hits AS \n"
    "(SELECT fts.key AS key, row_number() OVER (ORDER BY fts.score DESC, fts.key) AS rank \n"
    "FROM (SELECT doc.id AS key, ts_rank(doc.search, websearch_to_tsquery('english', %s)) "
    "AS score \nFROM doc \n"
    "WHERE (doc.search @@ websearch_to_tsquery('english', %s)) AND doc.title != %s "
    "ORDER BY score DESC, doc.id \n LIMIT %s) AS fts), \n"
    "fused AS \n"
    "(SELECT coalesce(vector_hits.key, text_hits.key) AS key, "
    "coalesce(%s / (%s + vector_hits.rank), 0) + coalesce(%s / (%s + text_hits.rank), 0) "
    "AS score, vector_hits.rank AS vector_rank, text_hits.rank AS text_rank \n"
    "FROM vector_hits FULL OUTER JOIN text_hits ON vector_hits.key = text_hits.key)\n"
    " SELECT doc.id, doc.title, fused.score, fused.vector_rank, fused.text_rank \n"
    "FROM fused JOIN doc ON doc.id = fused.key ORDER BY fused.score DESC, fused.key \n"
    " LIMIT %s"
)


def test_hybrid_search_is_one_statement_with_bound_values() -> None:
    q = hybrid_search(
        DOC.c.embedding,
        [1, 0, 0],
        DOC.c.search,
        "vacuum tuning",
        columns=[DOC.c.id, DOC.c.title],
        where=ne(DOC.c.title, "draft"),
        k=50,
        vector_weight=2.0,
        text_weight=0.5,
        vector_candidates=30,
        text_candidates=20,
        limit=5,
    )
    assert_sql(
        q,
        HYBRID_SQL,
        [
            [1.0, 0.0, 0.0],
            "draft",
            30,
            "vacuum tuning",
            "vacuum tuning",
            "draft",
            20,
            2.0,
            50.0,
            0.5,
            50.0,
            5,
        ],
    )
    # The vector candidates are an HNSW scan too: querykit's default ef_search for recall.
    assert q.to_sql().settings == (("hnsw.ef_search", "100"),)


def test_hybrid_search_defaults_and_settings() -> None:
    q = hybrid_search(
        DOC.c.embedding,
        [1, 0, 0],
        DOC.c.search,
        "x",
        metric="l2",
        mode="plain",
        vector_candidates=100,
    )
    compiled = q.to_sql()
    assert "doc.embedding <-> %s AS distance" in compiled.sql
    assert "plainto_tsquery('english', %s)" in compiled.sql
    assert compiled.sql.count("%s") == 10  # vector, n, text twice, n, w, k, w, k, limit
    assert compiled.params[-5:] == (1.0, 60.0, 1.0, 60.0, 10)
    assert compiled.settings == (("hnsw.ef_search", "100"),)
    explicit = hybrid_search(
        DOC.c.embedding,
        [1, 0, 0],
        DOC.c.search,
        "x",
        ef_search=200,
        iterative_scan="relaxed_order",
        probes=4,
    )
    assert dict(explicit.to_sql().settings) == {
        "hnsw.ef_search": "200",
        "hnsw.iterative_scan": "relaxed_order",
        "ivfflat.iterative_scan": "relaxed_order",
        "ivfflat.probes": "4",
    }


def test_hybrid_search_caches_one_shape() -> None:
    from querykit import cache_info

    hybrid_search(DOC.c.embedding, [1, 0, 0], DOC.c.search, "a").to_sql()
    hits = cache_info()["hits"]
    hybrid_search(DOC.c.embedding, [0, 1, 0], DOC.c.search, "b", k=10, limit=3).to_sql()
    assert cache_info()["hits"] == hits + 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"vector_weight": 0, "text_weight": 0}, CompileError, "cannot both be 0"),
        ({"vector_weight": -1}, CompileError, "vector_weight must be a finite number >= 0"),
        ({"k": float("nan")}, CompileError, "k must be a finite number"),
        ({"text_weight": "1"}, CompileError, "text_weight must be"),
        ({"vector_candidates": 0}, CompileError, "vector_candidates must be an int >= 1"),
        ({"text_candidates": 1.5}, CompileError, "text_candidates must be an int >= 1"),
        ({"limit": 0}, CompileError, "limit must be an int >= 1"),
        ({"metric": "hamming"}, SchemaError, "hamming metric does not apply"),
        ({"mode": "regex"}, CompileError, "mode must be one of"),
        ({"config": "x;y"}, CompileError, "config must be"),
        ({"ef_search": 10}, CompileError, "ef_search=10 is less than k=40"),
        ({"key": sa.column("id")}, SchemaError, "needs a column of a Table"),
    ],
)
def test_hybrid_search_checks_its_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        hybrid_search(DOC.c.embedding, [1, 0, 0], DOC.c.search, "x", **kwargs)


def test_hybrid_search_needs_one_table_and_a_key() -> None:
    other = doc_table()
    with pytest.raises(SchemaError, match="searches one table"):
        hybrid_search(DOC.c.embedding, [1, 0, 0], other.c.search, "x")
    no_pk = sa.Table("t", sa.MetaData(), sa.Column("e", vector(3)), tsvector_column("x", name="s"))
    with pytest.raises(SchemaError, match="has no primary key: pass key="):
        hybrid_search(no_pk.c.e, [1, 0, 0], no_pk.c.s, "x")
    with pytest.raises(CompileError, match="needs the search text as a str"):
        hybrid_search(DOC.c.embedding, [1, 0, 0], DOC.c.search, None)  # type: ignore[call-overload]
    with pytest.raises(CompileError, match="needs a query vector"):
        hybrid_search(DOC.c.embedding, None, DOC.c.search, "x")


# -- real rows ----------------------------------------------------------------------------------

DOCS: list[tuple[int, str, str | None, list[float]]] = [
    (1, "Fresh pasta at home", "Flour, eggs and patience.", [1.0, 0.0, 0.0]),
    (2, "Vacuum tuning in PostgreSQL", "Autovacuum settings explained.", [0.9, 0.3, 0.0]),
    (3, "Vacuum tuning, vacuum tuning", "Vacuum and tuning for every vacuum.", [0.0, 0.0, 1.0]),
    (4, "Gardening basics", "Soil, water and tuning the light.", [0.0, 1.0, 0.2]),
    (5, "Bread", None, [0.7, 0.7, 0.1]),
]


@pytest.fixture
def docs(vconn: Conn) -> sa.Table:
    table = doc_table()
    create_tables(vconn, table)
    rows = [{"id": i, "title": t, "body": b, "embedding": e} for i, t, b, e in DOCS]
    execute(vconn, insert(table).values(rows))
    return table


def _ids(conn: Conn, table: sa.Table, condition: Any) -> list[int]:
    return [r[0] for r in execute(conn, select(table.c.id).where(condition).order_by(table.c.id))]


def test_the_generated_column_and_each_mode(vconn: Conn, docs: sa.Table) -> None:
    s = docs.c.search
    assert _ids(vconn, docs, matches(s, "vacuum")) == [2, 3]
    assert _ids(vconn, docs, matches(s, '"vacuum tuning"')) == [2, 3]
    assert _ids(vconn, docs, matches(s, "pasta or gardening")) == [1, 4]
    assert _ids(vconn, docs, matches(s, "tuning -postgresql")) == [3, 4]
    assert _ids(vconn, docs, matches(s, "tuning light", mode="plain")) == [4]
    assert _ids(vconn, docs, matches(s, "tuning the light", mode="phrase")) == [4]
    assert _ids(vconn, docs, matches(s, "light tuning", mode="phrase")) == []
    assert _ids(vconn, docs, matches(s, "vacuum & !postgresql", mode="raw")) == [3]
    assert _ids(vconn, docs, matches(s, "bread")) == [5]  # a NULL body counts as empty
    assert _ids(vconn, docs, matches(s, "flour", config="simple")) == [1]
    assert _ids(vconn, docs, matches(s, "eggs", config="simple")) == []  # stored: english 'egg'


def test_websearch_never_fails_on_odd_input_but_raw_mode_can(vconn: Conn, docs: sa.Table) -> None:
    for text in ["'; DROP TABLE doc; --", '"unclosed', "a & | !", "$$", "\\", ""]:
        execute(vconn, select(docs.c.id).where(matches(docs.c.search, text)))
    with pytest.raises(psycopg.errors.SyntaxError):
        execute(vconn, select(docs.c.id).where(matches(docs.c.search, "a & (", mode="raw")))
    assert _ids(vconn, docs, matches(docs.c.search, "vacuum")) == [2, 3]


def test_ts_rank_orders_title_matches_first(vconn: Conn, docs: sa.Table) -> None:
    rank = ts_rank(docs.c.search, "tuning").label("rank")
    rows = execute(
        vconn,
        select(docs.c.id, rank)
        .where(matches(docs.c.search, "tuning"))
        .order_by(desc(rank), docs.c.id),
    )
    assert [r[0] for r in rows] == [3, 2, 4]  # weight A (title) beats B (body)
    assert rows[0][1] > rows[1][1] > rows[2][1] > 0


def test_hybrid_search_ranks_first_the_document_both_searches_find(
    vconn: Conn, docs: sa.Table
) -> None:
    q = hybrid_search(
        docs.c.embedding,
        [1.0, 0.0, 0.0],
        docs.c.search,
        "vacuum tuning",
        columns=[docs.c.id],
        vector_candidates=3,
    )
    rows = execute(vconn, q)
    # Vector order: 1, 2, 5 (3 candidates). Text order: 3, 2.
    assert [r[0] for r in rows] == [2, 1, 3, 5]
    ranks = {r[0]: (r[2], r[3]) for r in rows}
    assert ranks == {2: (2, 2), 1: (1, None), 3: (None, 1), 5: (3, None)}
    assert [r[1] for r in rows] == pytest.approx([2 / 62, 1 / 61, 1 / 61, 1 / 63])


def test_hybrid_search_weights_k_filter_and_limit(vconn: Conn, docs: sa.Table) -> None:
    base = {"columns": [docs.c.id], "vector_candidates": 3}
    vec, text = [1.0, 0.0, 0.0], "vacuum tuning"

    def ids(**kwargs: Any) -> list[int]:
        q = hybrid_search(docs.c.embedding, vec, docs.c.search, text, **{**base, **kwargs})
        return [r[0] for r in execute(vconn, q)]

    assert ids(text_weight=0) == [1, 2, 5, 3]  # text adds nothing: vector order, then the rest
    assert ids(vector_weight=0) == [3, 2, 1, 5]
    assert ids(vector_weight=3) == [2, 1, 5, 3]
    assert ids(where=ne(docs.c.id, 2), vector_candidates=2) == [1, 3, 5]
    assert ids(limit=2) == [2, 1]
    for k, vw, tw in [(0, 1.0, 1.0), (10, 0.3, 2.0)]:
        q = hybrid_search(  # type: ignore[call-overload]
            docs.c.embedding,
            vec,
            docs.c.search,
            text,
            k=k,
            vector_weight=vw,
            text_weight=tw,
            **base,
        )
        for _, score, vector_rank, text_rank in execute(vconn, q):
            expected = (vw / (k + vector_rank) if vector_rank else 0) + (
                tw / (k + text_rank) if text_rank else 0
            )
            assert score == pytest.approx(expected)


def test_hybrid_search_uses_both_indexes_in_one_statement(vconn: Conn) -> None:
    table = doc_table(dim=16)
    create_tables(vconn, table)
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(400)]
    rows = [
        {
            "id": i,
            "title": " ".join(rng.choice(words, 3)),
            "body": " ".join(rng.choice(words, 12)),
            "embedding": rng.normal(size=16),
        }
        for i in range(3000)
    ]
    execute(vconn, insert(table).values(rows))
    vconn.execute(index_sql(hnsw_index(table.c.embedding)))
    vconn.execute(index_sql(tsvector_index(table.c.search)))
    vconn.execute("ANALYZE doc")
    q = hybrid_search(
        table.c.embedding, rng.normal(size=16), table.c.search, "w7 w8", columns=[table.c.id]
    )
    plan = explain(vconn, q)
    assert "Index Scan using doc_embedding_hnsw_cosine_idx" in plan
    assert "Bitmap Index Scan on doc_search_gin_idx" in plan
    assert len(execute(vconn, q)) == 10


def test_hybrid_search_returns_the_table_columns_then_score_and_ranks(
    vconn: Conn, docs: sa.Table
) -> None:
    rows = execute(vconn, hybrid_search(docs.c.embedding, [1, 0, 0], docs.c.search, "vacuum"))
    assert len(rows[0]) == len(docs.c) + 3
    assert rows[0][:3] == (2, "Vacuum tuning in PostgreSQL", "Autovacuum settings explained.")


def test_hybrid_statement_binds_the_values_where_the_placeholders_are() -> None:
    # The key walk and the Core build must meet the values in the same order.
    q = hybrid_search(
        DOC.c.embedding,
        [1, 0, 0],
        DOC.c.search,
        "vacuum",
        where=ne(DOC.c.title, "t"),
        k=7,
        vector_weight=0.25,
        text_weight=4,
        vector_candidates=11,
        text_candidates=13,
        limit=3,
    )
    core = q.statement.compile(dialect=DIALECT)
    assert core.string == q.to_sql().sql
    values = [core.params[name] for name in core.positiontup]
    assert values[1:] == ["t", 11, "vacuum", "vacuum", "t", 13, 0.25, 7.0, 4.0, 7.0, 3]
