"""JSONB helpers: golden SQL, real rows, GIN indexes, and keys that try to be SQL."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa
from psycopg.types.json import Jsonb

from querykit import (
    CompileError,
    SchemaError,
    ValidationError,
    eq,
    has_all_keys,
    has_any_key,
    has_key,
    index_sql,
    json_contained,
    json_contains,
    json_path,
    json_path_text,
    json_set,
    jsonb_index,
    select,
    update,
)
from querykit.columns import jsonb
from querykit.compile import compile_query
from schema import agent_context as ac
from tests.sqlassert import assert_sql

from ._support import Conn, create_tables, execute, explain


@dataclasses.dataclass
class Usage:
    tokens: int
    model: str


def _ctx_table() -> sa.Table:
    return sa.Table(
        "ctx",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("context", jsonb(dict[str, Any]), nullable=False),
    )


# -- golden SQL ---------------------------------------------------------------------------


def test_containment_and_key_tests() -> None:
    assert_sql(
        select(ac.c.id).where(json_contains(ac.c.context, {"channel": "web"})),
        "SELECT agent_context.id \nFROM agent_context \nWHERE agent_context.context @> %s",
        [{"channel": "web"}],
    )
    assert_sql(
        select(ac.c.id).where(json_contained(ac.c.context, {"a": 1, "b": [2]})),
        "SELECT agent_context.id \nFROM agent_context \nWHERE agent_context.context <@ %s",
        [{"a": 1, "b": [2]}],
    )
    assert_sql(
        select(ac.c.id).where(
            has_key(ac.c.context, "user"),
            has_any_key(ac.c.metadata, ["a", "b"]),
            has_all_keys(ac.c.context, ["c", "d"]),
        ),
        "SELECT agent_context.id \nFROM agent_context \nWHERE (agent_context.context ? %s) "
        "AND (agent_context.metadata ?| %s) AND (agent_context.context ?& %s)",
        ["user", ["a", "b"], ["c", "d"]],
    )


def test_the_contained_value_is_bound_as_jsonb() -> None:
    params = select(ac.c.id).where(json_contains(ac.c.context, {"a": 1})).to_sql().params
    assert isinstance(params[0], Jsonb)


def test_paths_bind_one_key_or_one_text_array() -> None:
    assert_sql(
        select(
            json_path(ac.c.context, "user").label("a"),
            json_path(ac.c.context, 0).label("b"),
            json_path(ac.c.context, "user", "tags", 0).label("c"),
            json_path_text(ac.c.context, "channel").label("d"),
            json_path_text(ac.c.context, "user", "name").label("e"),
        ),
        "SELECT agent_context.context -> %s AS a, agent_context.context -> %s AS b, "
        "agent_context.context #> %s AS c, agent_context.context ->> %s AS d, "
        "agent_context.context #>> %s AS e \nFROM agent_context",
        ["user", 0, ["user", "tags", "0"], "channel", ["user", "name"]],
    )


def test_comparing_a_path_binds_the_value_with_the_path_type() -> None:
    q = select(ac.c.id).where(
        eq(json_path(ac.c.context, "n"), 5), eq(json_path_text(ac.c.context, "c"), "web")
    )
    assert_sql(
        q,
        "SELECT agent_context.id \nFROM agent_context \nWHERE (agent_context.context -> %s) = %s "
        "AND (agent_context.context ->> %s) = %s",
        ["n", 5, "c", "web"],
    )
    params = q.to_sql().params
    assert isinstance(params[1], Jsonb) and isinstance(params[3], str)


def test_json_set_for_updates() -> None:
    assert_sql(
        update(ac)
        .set(context=json_set(ac.c.context, ["user", "name"], "Ada"))
        .where(eq(ac.c.id, 7)),
        "UPDATE agent_context SET context=jsonb_set(agent_context.context, %s, %s, true) "
        "WHERE agent_context.id = %s",
        [["user", "name"], "Ada", 7],
    )
    assert_sql(
        update(ac)
        .set(metadata=json_set(ac.c.metadata, "seen", True, create_missing=False))
        .all_rows(),
        "UPDATE agent_context SET metadata=jsonb_set(agent_context.metadata, %s, %s, false)",
        [["seen"], True],
    )


def test_inline_renders_paths_and_values_as_literals() -> None:
    q = update(ac).set(context=json_set(ac.c.context, ["a", "it's"], {"x": 1})).all_rows()
    assert q.to_sql().inline() == (
        "UPDATE agent_context SET context=jsonb_set(agent_context.context, "
        """ARRAY['a', 'it''s']::TEXT[], '{"x": 1}'::JSONB, true)"""
    )


def test_returns_types_the_path_and_decodes_it() -> None:
    path = json_path(ac.c.context, "usage", returns=Usage)
    shape, _ = compile_query(select(path))
    decode = shape.decoders[0]
    assert decode is not None
    assert decode({"tokens": 3, "model": "m"}) == Usage(3, "m")


def test_gin_index_helpers() -> None:
    ctx = _ctx_table()
    assert index_sql(jsonb_index(ctx.c.context)) == (
        "CREATE INDEX ctx_context_gin_path_idx ON ctx USING gin (context jsonb_path_ops)"
    )
    assert index_sql(jsonb_index(ctx.c.context, ops="jsonb_ops"), concurrently=True) == (
        "CREATE INDEX CONCURRENTLY ctx_context_gin_idx ON ctx USING gin (context jsonb_ops)"
    )
    with pytest.raises(CompileError, match="ops must be"):
        jsonb_index(ctx.c.context, ops="gin_trgm_ops")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: json_contains(ac.c.session, {"a": 1}), SchemaError, "needs a jsonb column"),
        (lambda: json_path(ac.c.id, "a"), SchemaError, "agent_context.id is BIGINT"),
        (lambda: json_path(ac.c.context), CompileError, "at least one key"),
        (lambda: json_path(ac.c.context, 1.5), CompileError, "a str key or an int index"),  # type: ignore[call-overload]
        (lambda: json_path(ac.c.context, True), CompileError, "a str key or an int index"),
        (lambda: json_path_text(ac.c.context, None), CompileError, "a str key or an int index"),  # type: ignore[arg-type]
        (lambda: has_key(ac.c.context, 1), CompileError, "takes a str key"),  # type: ignore[arg-type]
        (lambda: has_any_key(ac.c.context, "ab"), CompileError, "a non-empty list of keys"),
        (lambda: has_all_keys(ac.c.context, []), CompileError, "a non-empty list of keys"),
        (lambda: has_all_keys(ac.c.context, ["a", 1]), CompileError, "keys are str"),  # type: ignore[list-item]
        (lambda: json_contains(ac.c.context, None), CompileError, "needs a value"),
        (lambda: json_set(ac.c.context, [], 1), CompileError, "at least one key"),
        (lambda: jsonb_index(ac.c.session), SchemaError, "needs a jsonb column"),
    ],
)
def test_misuse_is_a_clear_error(build: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(
    "query",
    [
        lambda: select(json_path(ac.c.context, "a\x00b")),
        lambda: select(json_path_text(ac.c.context, "a", "b\x00")),
        lambda: select(ac.c.id).where(has_key(ac.c.context, "\x00")),
        lambda: select(ac.c.id).where(has_all_keys(ac.c.context, ["ok", "n\x00"])),
        lambda: select(ac.c.id).where(json_contains(ac.c.context, {"k": "v\x00"})),
        lambda: update(ac).set(context=json_set(ac.c.context, ["a\x00"], 1)).all_rows(),
        lambda: update(ac).set(context=json_set(ac.c.context, ["a"], "\x00")).all_rows(),
    ],
)
def test_nul_is_a_validation_error_naming_the_column(query: Any) -> None:
    with pytest.raises(ValidationError, match="NUL") as info:
        query().to_sql()
    assert info.value.column == "agent_context.context"


# -- real rows ------------------------------------------------------------------------------

ROWS: list[dict[str, Any]] = [
    {"user": {"name": "Ada", "tags": ["a", "b"]}, "channel": "web", "n": 5},
    {"user": {"name": "Bob"}, "channel": "api", "items": [10, 20, 30]},
    {"channel": "web", "flag": True},
]


@pytest.fixture
def ctx(vconn: Conn) -> sa.Table:
    from querykit import insert

    table = _ctx_table()
    create_tables(vconn, table)
    execute(vconn, insert(table).values([{"id": i, "context": c} for i, c in enumerate(ROWS, 1)]))
    return table


def _ids(conn: Conn, table: sa.Table, *conditions: Any) -> list[int]:
    rows = execute(conn, select(table.c.id).where(*conditions).order_by(table.c.id))
    return [r[0] for r in rows]


def test_conditions_on_real_rows(vconn: Conn, ctx: sa.Table) -> None:
    c = ctx.c.context
    assert _ids(vconn, ctx, json_contains(c, {"channel": "web"})) == [1, 3]
    assert _ids(vconn, ctx, json_contains(c, {"user": {"tags": ["a"]}})) == [1]
    assert _ids(vconn, ctx, json_contained(c, {"channel": "web", "flag": True, "x": 1})) == [3]
    assert _ids(vconn, ctx, has_key(c, "user")) == [1, 2]
    assert _ids(vconn, ctx, has_any_key(c, ["flag", "n"])) == [1, 3]
    assert _ids(vconn, ctx, has_all_keys(c, ["user", "n"])) == [1]
    assert _ids(vconn, ctx, eq(json_path(c, "n"), 5)) == [1]
    assert _ids(vconn, ctx, eq(json_path_text(c, "channel"), "api")) == [2]
    assert _ids(vconn, ctx, eq(json_path_text(c, "user", "name"), "Bob")) == [2]


def test_paths_on_real_rows(vconn: Conn, ctx: sa.Table) -> None:
    c = ctx.c.context
    rows = execute(
        vconn,
        select(
            json_path(c, "user"),
            json_path_text(c, "user", "name"),
            json_path(c, "items", -1),
            json_path(c, "items", 0),
            json_path_text(c, "n"),
            json_path(c, "user", "tags", 1),
        ).order_by(ctx.c.id),
    )
    assert rows == [
        ({"name": "Ada", "tags": ["a", "b"]}, "Ada", None, None, "5", "b"),
        ({"name": "Bob"}, "Bob", 30, 10, None, None),
        (None, None, None, None, None, None),
    ]


def test_json_set_updates_in_place(vconn: Conn, ctx: sa.Table) -> None:
    c = ctx.c.context
    execute(
        vconn,
        update(ctx).set(context=json_set(c, ["user", "name"], "Grace")).where(eq(ctx.c.id, 1)),
    )
    execute(
        vconn, update(ctx).set(context=json_set(c, "seen", {"at": [1, 2]})).where(eq(ctx.c.id, 2))
    )
    execute(
        vconn,
        update(ctx)
        .set(context=json_set(c, "gone", 1, create_missing=False))
        .where(eq(ctx.c.id, 3)),
    )
    rows = execute(vconn, select(c).order_by(ctx.c.id))
    assert rows[0][0]["user"] == {"name": "Grace", "tags": ["a", "b"]}
    assert rows[1][0]["seen"] == {"at": [1, 2]}
    assert rows[2][0] == ROWS[2]


def test_gin_indexes_serve_containment_and_key_tests(vconn: Conn, ctx: sa.Table) -> None:
    c = ctx.c.context
    vconn.execute(index_sql(jsonb_index(c)))
    contains = select(ctx.c.id).where(json_contains(c, {"channel": "web"}))
    key = select(ctx.c.id).where(has_key(c, "user"))
    off = {"enable_seqscan": "off"}  # three rows: make the planner show what it can use
    assert "ctx_context_gin_path_idx" in explain(vconn, contains.with_settings(off))
    assert "ctx_context_gin_path_idx" not in explain(vconn, key.with_settings(off))
    vconn.execute(index_sql(jsonb_index(c, ops="jsonb_ops")))
    assert "ctx_context_gin_idx" in explain(vconn, key.with_settings(off))
    assert execute(vconn, key.with_settings(off)) == [(1,), (2,)]


HOSTILE_KEYS = [
    "it's",
    'say "hi"',
    "a--b",
    "x'); DROP TABLE ctx; --",
    "$$",
    "$q$ body $q$",
    "back\\slash",
    "\\",
    "\u02bcmodifier apostrophe\u02bc",
    "\uff07fullwidth quote\uff07",
    "' OR '1'='1",
    "{a,b}",
    'a,"b"',
    "%s",
    "%(name)s",
    ":name",
    "?",
    "",
    " ",
    "NULL",
]


def test_keys_that_look_like_sql_are_only_keys(vconn: Conn, ctx: sa.Table) -> None:
    c = ctx.c.context
    document = {key: {"inner": key} for key in HOSTILE_KEYS}
    execute(vconn, update(ctx).set(context=document).where(eq(ctx.c.id, 1)))
    for key in HOSTILE_KEYS:
        rows = execute(
            vconn,
            select(json_path_text(c, key, "inner"), json_path(c, key), json_path_text(c, key))
            .where(has_key(c, key), json_contains(c, {key: {"inner": key}}))
            .order_by(ctx.c.id),
        )
        assert len(rows) == 1, key
        inner, value, text = rows[0]
        assert inner == key and value == {"inner": key}, key
        assert text is not None
        execute(
            vconn,
            update(ctx).set(context=json_set(c, [key, "inner"], "changed")).where(eq(ctx.c.id, 1)),
        )
    [(after,)] = execute(vconn, select(c).where(eq(ctx.c.id, 1)))
    assert after == {key: {"inner": "changed"} for key in HOSTILE_KEYS}
    assert _ids(vconn, ctx) == [1, 2, 3]  # the table is still there, with its rows
