"""Pinned types of the vector, JSONB and full-text helpers (checked by mypy --strict, not run)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, assert_type

import sqlalchemy as sa
from pgvector import Vector
from sqlalchemy.sql.elements import ColumnElement

from querykit import (
    Condition,
    HybridSearchQuery,
    SelectQuery,
    UpdateQuery,
    cosine_distance,
    distance,
    has_key,
    hnsw_index,
    hybrid_search,
    index_sql,
    inner_product,
    json_contains,
    json_path,
    json_path_text,
    json_set,
    jsonb_index,
    knn_settings,
    l2_distance,
    matches,
    nearest,
    select,
    ts_rank,
    tsquery,
    tsvector_column,
    tsvector_index,
    update,
)
from schema import agent_context, embedding


@dataclasses.dataclass
class Usage:
    tokens: int


v = [0.0] * 384

# Distances are floats, usable in select() and comparisons.
assert_type(l2_distance(embedding.c.embedding, v), ColumnElement[float])
assert_type(cosine_distance(embedding.c.embedding, v), ColumnElement[float])
assert_type(inner_product(embedding.c.embedding, v), ColumnElement[float])
assert_type(select(embedding.c.id, l2_distance(embedding.c.embedding, v)), SelectQuery[int, float])
assert_type(distance(embedding.c.embedding, v, "l2"), ColumnElement[float])

# nearest(): the table's row plus the distance when columns= is the table.
assert_type(
    nearest(embedding.c.embedding, v, 10, columns=embedding),
    SelectQuery[int, str, Vector, dict[str, Any], dt.datetime, float],
)
assert_type(nearest(embedding.c.embedding, v, 10), SelectQuery[*tuple[Any, ...]])
assert_type(
    nearest(embedding.c.embedding, v, 10, columns=embedding).where(None),
    SelectQuery[int, str, Vector, dict[str, Any], dt.datetime, float],
)
assert_type(knn_settings(10, ef_search=40), dict[str, str])

# Indexes.
assert_type(hnsw_index(embedding.c.embedding, "cosine", m=16), sa.Index)
assert_type(index_sql(jsonb_index(agent_context.c.context), concurrently=True), str)

# JSONB.
assert_type(json_contains(agent_context.c.context, {"a": 1}), Condition)
assert_type(has_key(agent_context.c.context, "a"), Condition)
assert_type(json_path(agent_context.c.context, "a", 0), ColumnElement[Any])
assert_type(json_path(agent_context.c.context, "usage", returns=Usage), ColumnElement[Usage | None])
assert_type(json_path(agent_context.c.context, "n", returns=int), ColumnElement[int | None])
assert_type(json_path_text(agent_context.c.context, "a", "b"), ColumnElement[str | None])
assert_type(json_set(agent_context.c.context, ["a"], 1), ColumnElement[dict[str, Any]])
assert_type(
    select(agent_context.c.id, json_path_text(agent_context.c.context, "a")),
    SelectQuery[int, str | None],
)
assert_type(
    update(agent_context).set(context=json_set(agent_context.c.context, "a", 1)), UpdateQuery[()]
)

# Full text.
search_column = tsvector_column("content")
assert_type(search_column, sa.Column[str])
assert_type(matches(search_column, "fat cats"), Condition)
assert_type(ts_rank(search_column, "fat cats"), ColumnElement[float])
assert_type(tsquery("fat cats", mode="plain"), ColumnElement[str])
assert_type(tsvector_index(search_column), sa.Index)

# Hybrid search: the row, then score, vector_rank and text_rank.
assert_type(
    hybrid_search(embedding.c.embedding, v, search_column, "q", columns=embedding),
    HybridSearchQuery[int, str, Vector, dict[str, Any], dt.datetime, float, int | None, int | None],
)
assert_type(
    hybrid_search(embedding.c.embedding, v, search_column, "q"),
    HybridSearchQuery[*tuple[Any, ...]],
)
