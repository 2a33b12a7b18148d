"""Generated nested queries (``find_many`` with per-level where, order, limit and offset),
both strategies, against an oracle of plain Core queries assembled in Python.

The oracle runs one SQLAlchemy Core SELECT per parent row and level (the N+1 way, which
is slow but obviously right) through SQLAlchemy's engine; querykit's json and batched
strategies must return exactly the same nested lists, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import querykit as qk
from querykit import find_many, include
from tests.differential.recipes import SETTINGS
from tests.tables import author, comment, post, post_tag, tag

NAMES = ["a", "b", "ab", "it's"]
SCORES = [0, 1, 2, 3]


def blog_rows() -> dict[str, list[dict[str, Any]]]:
    authors = [{"id": i, "name": NAMES[i % 4]} for i in range(1, 7)]
    posts = [
        {
            "id": i,
            "author_id": 1 + i % 5,
            "editor_id": None if i % 3 == 0 else 1 + (i * 2) % 6,
            "title": NAMES[i % 3],
            "score": SCORES[i % 4],
        }
        for i in range(1, 15)
    ]
    comments = [{"id": i, "post_id": 1 + (i * 7) % 13, "body": NAMES[i % 4]} for i in range(1, 31)]
    tags = [{"id": i, "name": NAMES[i % 4]} for i in range(1, 5)]
    post_tags = [
        {"post_id": p, "tag_id": t} for p in range(1, 15) for t in range(1, 5) if (p + t) % 3 == 0
    ]
    return {
        "author": authors,
        "post": posts,
        "comment": comments,
        "tag": tags,
        "post_tag": post_tags,
    }


SEED = blog_rows


@dataclass(frozen=True)
class Level:
    """One level of a nested query: its filter, order, page and children."""

    column: str | None  # the filtered column, or None for no filter
    op: str
    value: Any
    order: str
    descending: bool
    limit: int | None
    offset: int | None
    children: tuple[tuple[str, Level], ...]

    def where_qk(self, table: sa.Table) -> Any:
        if self.column is None:
            return None
        fn = {"=": qk.eq, "<>": qk.ne, ">=": qk.gte, "<": qk.lt}[self.op]
        return fn(table.c[self.column], self.value)

    def where_core(self, table: Any) -> Any:
        if self.column is None:
            return sa.true()
        col = table.c[self.column]
        return {"=": col.__eq__, "<>": col.__ne__, ">=": col.__ge__, "<": col.__lt__}[self.op](
            self.value
        )

    def order_qk(self, table: sa.Table) -> list[Any]:
        first = table.c[self.order]
        return [first.desc() if self.descending else first.asc(), table.c.id.asc()]

    def order_core(self, table: Any) -> list[Any]:
        first = table.c[self.order]
        return [first.desc() if self.descending else first.asc(), table.c.id.asc()]


# relation name -> (child table, how a child row belongs to its parent)
CHILDREN: dict[str, dict[str, tuple[sa.Table, Any]]] = {
    "author": {
        "posts_by_author": (post, lambda parent: post.c.author_id == parent["id"]),
        "posts_by_editor": (post, lambda parent: post.c.editor_id == parent["id"]),
    },
    "post": {
        "comments": (comment, lambda parent: comment.c.post_id == parent["id"]),
        "tags": (
            tag,
            lambda parent: tag.c.id.in_(
                sa.select(post_tag.c.tag_id).where(post_tag.c.post_id == parent["id"])
            ),
        ),
    },
    "comment": {},
    "tag": {},
}
FILTERS: dict[str, list[tuple[str, list[Any]]]] = {
    "author": [("name", NAMES), ("id", [1, 2, 3, 4])],
    "post": [("score", SCORES), ("title", NAMES), ("editor_id", [1, 2, 3])],
    "comment": [("body", NAMES), ("post_id", [1, 2, 5])],
    "tag": [("name", NAMES)],
}
ORDERS = {
    "author": ["name", "id"],
    "post": ["score", "title", "id"],
    "comment": ["body", "id"],
    "tag": ["name", "id"],
}


@st.composite
def levels(draw: st.DrawFn, table: str, depth: int = 0) -> Level:
    column, values = draw(st.sampled_from([(None, [None]), *FILTERS[table]]))
    children: list[tuple[str, Level]] = []
    if depth < 2:
        for name, (child, _) in CHILDREN[table].items():
            if draw(st.booleans()):
                children.append((name, draw(levels(child.name, depth + 1))))
    paged = draw(st.booleans())
    return Level(
        column=column,
        op=draw(st.sampled_from(["=", "<>", ">=", "<"])),
        value=draw(st.sampled_from(values)),
        order=draw(st.sampled_from(ORDERS[table])),
        descending=draw(st.booleans()),
        limit=draw(st.integers(0, 4)) if paged else None,
        offset=draw(st.none() | st.integers(0, 2)) if paged else None,
        children=tuple(children),
    )


def include_of(level: Level, table: sa.Table) -> Any:
    return include(
        where=level.where_qk(table),
        order_by=level.order_qk(table),
        limit=level.limit,
        offset=level.offset,
        with_={
            name: include_of(child, CHILDREN[table.name][name][0]) for name, child in level.children
        }
        or None,
    )


def oracle(
    conn: sa.Connection, table: sa.Table, level: Level, belongs: Any
) -> list[dict[str, Any]]:
    q = sa.select(table).where(belongs, level.where_core(table)).order_by(*level.order_core(table))
    if level.limit is not None:
        q = q.limit(level.limit)
    if level.offset is not None:
        q = q.offset(level.offset)
    rows = [dict(r._mapping) for r in conn.execute(q)]
    for row in rows:
        for name, child in level.children:
            child_table, child_belongs = CHILDREN[table.name][name]
            row[name] = oracle(conn, child_table, child, child_belongs(row))
    return rows


@SETTINGS
@given(top=levels("author"), strategy=st.sampled_from(["json", "batched"]))
def test_nested_queries_agree_with_plain_core(
    top: Level, strategy: str, db: qk.Database, engine: sa.Engine
) -> None:
    query = find_many(
        author,
        where=top.where_qk(author),
        order_by=top.order_qk(author),
        limit=top.limit,
        offset=top.offset,
        with_={name: include_of(child, CHILDREN["author"][name][0]) for name, child in top.children}
        or None,
        strategy=strategy,  # type: ignore[arg-type]
    )
    with engine.connect() as conn:
        expected = oracle(conn, author, top, sa.true())
    assert db.all(query) == expected
