"""Relational queries: naming rules, both strategies, lossless nesting, filters, bad input."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, TypedDict

import psycopg
import pytest
import sqlalchemy as sa

import querykit
from querykit import (
    CompileError,
    MappingError,
    SchemaError,
    count_of,
    desc,
    eq,
    every,
    find_first,
    find_many,
    gt,
    include,
    insert,
    none,
    raw,
    relations_of,
    select,
    some,
)
from querykit.compile import compile_query
from schema import Status, pipeline_run, pipeline_step
from tests.sqlassert import normalize_sql
from tests.tables import (
    ROWS,
    ROWS_FOR_RELATIONS,
    author,
    comment,
    everything,
    holder,
    node,
    post,
    post_tag,
    tag,
)

run, step = pipeline_run, pipeline_step
STRATEGIES = ["json", "batched"]


class Runner:
    """Runs nested queries through ``Database`` or ``AsyncDatabase`` (the same assertions)."""

    def __init__(self, url: str, mode: str) -> None:
        self.mode = mode
        self.db = querykit.connect(url)
        self.adb: Any = None
        self.loop = asyncio.new_event_loop()
        if mode == "async":
            self.adb = self.loop.run_until_complete(querykit.connect_async(url))

    def all(self, query: Any) -> list[Any]:
        if self.mode == "async":
            result: list[Any] = self.loop.run_until_complete(self.adb.all(query))
            return result
        return self.db.all(query)

    def close(self) -> None:
        if self.adb is not None:
            self.loop.run_until_complete(self.adb.close())
        self.loop.close()
        self.db.close()


def plain(runner: Runner, query: Any) -> list[dict[str, Any]]:
    """A plain select, through the executor, as dicts."""
    shape, _ = compile_query(query)
    return [dict(zip(shape.columns, row, strict=True)) for row in runner.db.all(query)]


# -- the relation graph ---------------------------------------------------------------------


def test_foreign_keys_name_relations_by_the_documented_rule() -> None:
    assert sorted(relations_of(run)) == ["steps"]
    assert sorted(relations_of(step)) == ["run"]
    steps, back = relations_of(run)["steps"], relations_of(step)["run"]
    assert (steps.many, steps.target, back.many, back.target) == (True, step, False, run)
    # two foreign keys to one table: the one-to-many side says which column
    assert sorted(relations_of(author)) == ["posts_by_author", "posts_by_editor"]
    assert {"author", "editor", "comments"} <= set(relations_of(post))
    # a table referencing itself
    assert sorted(relations_of(node)) == ["children", "parent"]


def test_plural_table_names_are_not_pluralised_again() -> None:
    meta = sa.MetaData()
    users = sa.Table("users", meta, sa.Column("id", sa.Integer, primary_key=True))
    # table name -> the one-to-many relation's name on users
    expected = {
        "orders": "orders",  # ends in s: kept as it is (not "orderses")
        "order_items": "order_items",
        "status": "status",  # the rule is about the last letter, not grammar
        "box": "boxes",
        "category": "categories",
        "day": "days",
        "invoice": "invoices",
    }
    for name in expected:
        sa.Table(
            name,
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("user_id", sa.ForeignKey("users.id")),
        )
    assert sorted(relations_of(users)) == sorted(expected.values())
    for name, relation_name in expected.items():
        assert relations_of(users)[relation_name].target is meta.tables[name]
        assert relations_of(meta.tables[name])["user"].target is users


def test_declared_relations_join_the_automatic_ones() -> None:
    items = relations_of(holder)["items"]
    assert items.many and items.target is everything
    tags = relations_of(post)["tags"]
    assert tags.many and tags.target is tag and tags.through is post_tag
    assert relations_of(tag)["posts"].target is post


# -- data --------------------------------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def blog(
    request: pytest.FixtureRequest, tables_conn: psycopg.Connection[Any], database_url: str
) -> Iterator[Runner]:
    for table, rows in ROWS_FOR_RELATIONS:
        compiled = insert(table).values(rows).to_sql()
        tables_conn.execute(compiled.sql, compiled.params)
    runner = Runner(database_url, request.param)
    yield runner
    runner.close()


# -- results -----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nested_results_equal_separate_plain_queries(blog: Runner, strategy: str) -> None:
    query = find_many(
        author,
        order_by=["name"],
        with_={
            "posts_by_author": include(
                order_by=[desc(post.c.score)], with_={"comments": include(order_by=["id"])}
            )
        },
        strategy=strategy,  # type: ignore[arg-type]
    )
    got = blog.all(query)
    expected = plain(blog, select(author).order_by(author.c.name))
    for a in expected:
        posts = plain(
            blog, select(post).where(eq(post.c.author_id, a["id"])).order_by(desc(post.c.score))
        )
        for p in posts:
            p["comments"] = plain(
                blog, select(comment).where(eq(comment.c.post_id, p["id"])).order_by(comment.c.id)
            )
        a["posts_by_author"] = posts
    assert got == expected
    assert sum(len(a["posts_by_author"]) for a in got) == 5


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_per_level_order_limit_and_offset(blog: Runner, strategy: str) -> None:
    query = find_many(
        author,
        columns=["id"],
        order_by=["-id"],
        limit=2,
        with_={
            "posts_by_author": include(
                columns=["title", "score"], order_by=["-score"], limit=2, offset=1
            )
        },
        strategy=strategy,  # type: ignore[arg-type]
    )
    got = blog.all(query)
    assert [a["id"] for a in got] == [3, 2]
    by_author = {a["id"]: [p["score"] for p in a["posts_by_author"]] for a in got}
    # author 2 has scores 30, 20, 10: skip the best, keep the next two
    assert by_author == {3: [], 2: [20, 10]}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_many_to_one_and_many_to_many(blog: Runner, strategy: str) -> None:
    query = find_many(
        post,
        columns=["id", "title"],
        order_by=["id"],
        with_={
            "author": include(columns=["name"]),
            "editor": include(columns=["name"]),
            "tags": include(columns=["name"], order_by=["name"]),
        },
        strategy=strategy,  # type: ignore[arg-type]
    )
    got = blog.all(query)
    assert got[0] == {
        "id": 1,
        "title": "first",
        "author": {"name": "ada"},
        "editor": {"name": "bob"},
        "tags": [{"name": "ai"}, {"name": "db"}],
    }
    assert got[1]["editor"] is None and got[1]["tags"] == [{"name": "db"}]
    assert all(isinstance(p["tags"], list) for p in got)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_self_reference_needs_and_follows_a_depth(blog: Runner, strategy: str) -> None:
    with pytest.raises(SchemaError, match="depth"):
        find_many(node, with_={"children": include()})
    query = find_many(
        node,
        columns=["label"],
        where=eq(node.c.id, 1),
        with_={"children": include(columns=["label"], order_by=["label"], depth=2)},
        strategy=strategy,  # type: ignore[arg-type]
    )
    assert blog.all(query) == [
        {
            "label": "root",
            "children": [
                {"label": "a", "children": [{"label": "a1"}]},
                {"label": "b", "children": []},
            ],
        }
    ]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_relation_filters_and_counts(blog: Runner, strategy: str) -> None:
    def names(**where: Any) -> list[str]:
        q = find_many(
            author,
            columns=["name"],
            order_by=["name"],
            strategy=strategy,  # type: ignore[arg-type]
            **where,
        )
        return [a["name"] for a in blog.all(q)]

    assert names(where=some("posts_by_author")) == ["ada", "bob"]
    assert names(where=some("posts_by_author", gt(post.c.score, 25))) == ["bob"]
    assert names(where=none("posts_by_author")) == ["cy"]
    assert names(where=every("posts_by_author", gt(post.c.score, 5))) == ["ada", "bob", "cy"]
    assert names(where=every("posts_by_author", gt(post.c.score, 15))) == ["cy"]
    counted = blog.all(
        find_many(
            author,
            columns=["name"],
            order_by=["name"],
            with_={
                "n": count_of("posts_by_author"),
                "good": count_of("posts_by_author", where=gt(post.c.score, 15)),
            },
            strategy=strategy,  # type: ignore[arg-type]
        ),
    )
    assert counted == [
        {"name": "ada", "n": 2, "good": 0},
        {"name": "bob", "n": 3, "good": 2},
        {"name": "cy", "n": 0, "good": 0},
    ]


def test_relation_filters_work_in_a_plain_select(blog: Runner) -> None:
    q = select(author.c.name).where(some("posts_by_author", gt(post.c.score, 25)))
    assert blog.db.all(q) == [("bob",)]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_find_first(blog: Runner, strategy: str) -> None:
    q = find_first(author, order_by=["-name"], columns=["name"], strategy=strategy)  # type: ignore[arg-type]
    assert blog.all(q) == [{"name": "cy"}]


# -- lossless nesting ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_type_is_lossless_at_depth_one_and_two(blog: Runner, strategy: str) -> None:
    query = find_many(
        holder,
        order_by=["id"],
        with_={
            "items": include(order_by=["id"], with_={"children": include(order_by=["id"], depth=1)})
        },
        strategy=strategy,  # type: ignore[arg-type]
    )
    got = blog.all(query)
    top = {r["id"]: r for r in plain(blog, select(everything))}
    seen = 0
    for h in got:
        for item in h["items"]:
            children = item.pop("children")
            assert item == top[item["id"]]
            assert _types(item) == _types(top[item["id"]])
            for child in children:
                assert child == top[child["id"]]
                assert _types(child) == _types(top[child["id"]])
                seen += 1
    assert seen >= 2


def _types(row: dict[str, Any]) -> dict[str, type]:
    return {k: type(v) for k, v in row.items()}


def test_lossless_values_in_detail(blog: Runner) -> None:
    got = blog.all(
        find_many(holder, where=eq(holder.c.id, 1), with_={"items": include(order_by=["id"])})
    )
    first, third = got[0]["items"][0], got[0]["items"][1]  # rows 0 and 2 belong to holder 1
    assert isinstance(first["at"], dt.datetime) and first["at"].tzinfo is not None
    assert first["at"] == ROWS[0]["at"]
    assert third["num"] == Decimal("123456789012345678.123456789") == ROWS[2]["num"]
    assert first["big"] == 2**62 and isinstance(first["big"], int)
    assert third["dbl"] == 1e300 and first["dbl"] == 1.5
    assert first["blob"] == ROWS[0]["blob"] and isinstance(first["blob"], bytes)
    assert first["span"] == ROWS[0]["span"]
    assert first["doc"]["nested"] == {"list": [1, "two", None]}
    assert first["mood"] is ROWS[0]["mood"]
    assert first["moods"] == ROWS[0]["moods"]
    assert type(first["vec"]).__name__ == "Vector"


# -- SQL you can see --------------------------------------------------------------------------------


def test_json_strategy_is_one_statement() -> None:
    q = find_many(
        run,
        where=eq(run.c.status, Status.FAILED),
        columns=["id"],
        with_={"steps": include(columns=["name"], order_by=["created_at"])},
    )
    assert normalize_sql(q.to_sql().sql) == normalize_sql(
        "SELECT pipeline_run.id, (SELECT CAST(coalesce(json_agg(json_build_array(pipeline_step.name) "
        "ORDER BY pipeline_step.created_at ASC), '[]'::json) AS TEXT) AS steps FROM pipeline_step "
        "WHERE pipeline_step.run_id = pipeline_run.id) AS steps "
        "FROM pipeline_run WHERE pipeline_run.status = %s"
    )
    assert q.to_sql().params == ("FAILED",)
    assert len(q.statements()) == 1


def test_json_strategy_limits_per_parent_in_a_numbered_subquery() -> None:
    """With a limit, the rows are limited first, then aggregated in their order (``qk_ord``)."""
    q = find_many(
        run,
        columns=["id"],
        with_={"steps": include(columns=["name"], order_by=["created_at"], limit=2)},
    )
    assert normalize_sql(q.to_sql().sql) == normalize_sql(
        "SELECT pipeline_run.id, (SELECT CAST(coalesce(json_agg(json_build_array(qk_steps.name) "
        "ORDER BY qk_steps.qk_ord), '[]'::json) AS TEXT) AS steps FROM (SELECT pipeline_step.name AS name, "
        "row_number() OVER (ORDER BY pipeline_step.created_at ASC) AS qk_ord FROM pipeline_step "
        "WHERE pipeline_step.run_id = pipeline_run.id ORDER BY pipeline_step.created_at ASC "
        "LIMIT %s) AS qk_steps) AS steps FROM pipeline_run"
    )
    assert q.to_sql().params == (2,)


def test_batched_strategy_shows_every_statement() -> None:
    q = find_many(
        run,
        columns=["id"],
        with_={"steps": include(columns=["name"], order_by=["created_at"])},
        strategy="batched",
    )
    plans = [normalize_sql(p.sql) for p in q.statements()]
    assert plans == [
        "SELECT pipeline_run.id FROM pipeline_run",
        "SELECT pipeline_step.run_id AS qk_parent, pipeline_step.name FROM pipeline_step "
        "WHERE pipeline_step.run_id = ANY (CAST(%s AS TEXT[])) ORDER BY pipeline_step.created_at ASC",
    ]


def test_batched_reads_the_parent_link_from_a_selected_join_column() -> None:
    """A join column the level selects anyway is not sent twice (no ``qk_parent``)."""
    q = find_many(
        run,
        columns=["id"],
        with_={"steps": include(columns=["run_id", "name"], order_by=["created_at"])},
        strategy="batched",
    )
    assert normalize_sql(q.statements()[1].sql) == (
        "SELECT pipeline_step.run_id, pipeline_step.name FROM pipeline_step "
        "WHERE pipeline_step.run_id = ANY (CAST(%s AS TEXT[])) ORDER BY pipeline_step.created_at ASC"
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_to_one_and_to_many_read_through_a_selected_join_column(
    blog: Runner, strategy: str
) -> None:
    """The link column among the selected ones, last or not, for a to-one and a to-many relation."""
    query = find_many(
        post,
        columns=["id", "title", "author_id"],
        order_by=["id"],
        with_={
            "author": include(columns=["name", "id"]),
            "comments": include(columns=["body", "post_id"], order_by=["-id"]),
        },
        strategy=strategy,  # type: ignore[arg-type]
    )
    expected = []
    for p in plain(blog, select(post.c.id, post.c.title, post.c.author_id).order_by(post.c.id)):
        found = plain(
            blog, select(author.c.name, author.c.id).where(eq(author.c.id, p["author_id"]))
        )
        p["author"] = found[0] if found else None
        p["comments"] = plain(
            blog,
            select(comment.c.body, comment.c.post_id)
            .where(eq(comment.c.post_id, p["id"]))
            .order_by(desc(comment.c.id)),
        )
        expected.append(p)
    assert blog.all(query) == expected
    assert any(p["comments"] for p in expected) and all(p["author"] for p in expected)


# -- typed results -------------------------------------------------------------------------------------


@dataclasses.dataclass
class CommentRow:
    body: str


@dataclasses.dataclass
class PostRow:
    title: str
    comments: list[CommentRow]


class AuthorRow(TypedDict):
    name: str
    posts_by_author: list[PostRow]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_as_maps_every_level(blog: Runner, strategy: str) -> None:
    q = find_many(
        author,
        columns=["name"],
        where=eq(author.c.name, "ada"),
        with_={
            "posts_by_author": include(
                columns=["title"],
                order_by=["id"],
                with_={"comments": include(columns=["body"], order_by=["id"])},
            )
        },
        strategy=strategy,  # type: ignore[arg-type]
        as_=AuthorRow,
    )
    got = blog.all(q)
    assert got == [
        {
            "name": "ada",
            "posts_by_author": [
                PostRow("first", [CommentRow("nice"), CommentRow("meh")]),
                PostRow("second", []),
            ],
        }
    ]


# -- bad input: clear errors before any SQL runs ----------------------------------------------------------


def test_unknown_relation() -> None:
    with pytest.raises(SchemaError) as info:
        find_many(run, with_={"stepz": include()})
    assert "pipeline_run has no relation 'stepz'; its relations: steps" in str(info.value)
    with pytest.raises(SchemaError, match="no relation 'nope'"):
        select(author.c.id).where(some("nope")).to_sql()


def test_where_on_a_column_of_the_wrong_table() -> None:
    q = find_many(run, with_={"steps": include(where=eq(run.c.name, "x"))})
    with pytest.raises(SchemaError, match=r"pipeline_run\.name is not from a table in this query"):
        q.to_sql()
    with pytest.raises(SchemaError, match=r"pipeline_step\.name"):
        find_many(run, where=eq(step.c.name, "x")).to_sql()


def test_columns_and_order_must_belong_to_the_level() -> None:
    with pytest.raises(SchemaError, match="no column 'nmae'"):
        find_many(run, columns=["nmae"])
    with pytest.raises(SchemaError, match=r"pipeline_run\.name is not a column of pipeline_step"):
        find_many(run, with_={"steps": include(columns=[run.c.name])})
    with pytest.raises(SchemaError, match="no such column"):
        find_many(run, with_={"steps": include(order_by=["-cost"])})


def test_bad_options() -> None:
    with pytest.raises(CompileError, match="depth"):
        include(depth=0)
    with pytest.raises(CompileError, match="strategy"):
        find_many(run, strategy="eager")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="clashes"):
        find_many(run, with_={"name": count_of("steps")})


def test_as_must_match_the_selected_fields() -> None:
    with pytest.raises(MappingError, match="nothing selected for posts_by_author"):
        find_many(author, columns=["name"], as_=AuthorRow)
    with pytest.raises(MappingError, match="no field for id"):
        find_many(
            author, columns=["id", "name"], with_={"posts_by_author": include()}, as_=AuthorRow
        )
    # nested levels are checked too: PostRow wants comments
    with pytest.raises(MappingError, match="nothing selected for comments"):
        find_many(
            author,
            columns=["name"],
            with_={"posts_by_author": include(columns=["title"])},
            as_=AuthorRow,
        )


@pytest.mark.parametrize(
    "span",
    [
        "1 year 2 mons 3 days 04:05:06.789",
        "-1 year -2 mons +3 days -04:05:06.000001",
        "13 mons",
        "-25 hours",
        "0",
    ],
)
def test_intervals_nest_as_psycopg_reads_them(blog: Runner, span: str) -> None:
    blog.db.execute(
        raw("INSERT INTO everything (id, holder_id, span) VALUES (900, 2, :s::interval)", s=span)
    )
    q = find_many(
        holder,
        where=eq(holder.c.id, 2),
        with_={"items": include(columns=["span"], where=eq(everything.c.id, 900))},
    )
    nested = blog.all(q)[0]["items"][0]["span"]
    assert nested == blog.db.scalar(select(everything.c.span).where(eq(everything.c.id, 900)))


def test_batched_siblings_share_a_pipeline_in_and_out_of_transactions(blog: Runner) -> None:
    query = find_many(
        post,
        columns=["id"],
        order_by=["id"],
        with_={
            "author": include(columns=["name"]),
            "tags": include(columns=["name"]),
            "comments": include(),
        },
        strategy="batched",
    )
    seen: list[str] = []
    blog.db.on_query(lambda record: seen.append(record.sql))
    outside = blog.db.all(query)
    with blog.db.transaction():
        inside = blog.db.all(query)
    assert outside == inside and len(outside) == 5
    assert len(seen) == 8  # the posts, then three sibling levels, twice


def test_a_relation_declared_on_a_copied_table_stays_on_the_copy() -> None:
    from querykit.schema.relations import relation

    meta = sa.MetaData()
    run_copy, step_copy = pipeline_run.to_metadata(meta), pipeline_step.to_metadata(meta)
    on = [(run_copy.c.id, step_copy.c.run_id)]
    relation(run_copy, "copied_steps", step_copy, on=on, many=True)
    assert "copied_steps" in relations_of(run_copy)
    assert "copied_steps" not in relations_of(pipeline_run)


def test_the_relation_graph_is_cached_and_follows_metadata_changes() -> None:
    # Built once per table while the MetaData is unchanged; a table added later with a
    # foreign key to it shows up at once (the cache is keyed by the MetaData's shape).
    md = sa.MetaData()
    parent = sa.Table("parent", md, sa.Column("id", sa.Integer, primary_key=True))
    first = querykit.relations_of(parent)
    assert first == {}
    assert querykit.relations_of(parent) == first
    assert parent.info["querykit.relations.graph"][2] == {}
    sa.Table(
        "parent_note",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.ForeignKey("parent.id")),
    )
    assert sorted(querykit.relations_of(parent)) == ["parent_notes"]
    querykit.relation(
        parent,
        "first_note",
        md.tables["parent_note"],
        on=[(parent.c.id, md.tables["parent_note"].c.parent_id)],
        many=False,
    )
    assert sorted(querykit.relations_of(parent)) == ["first_note", "parent_notes"]
