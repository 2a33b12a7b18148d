"""Generated compositions, each rendered twice: through querykit and through plain Core.

A *recipe* is a small description of a query: which source it reads (a table, a
subquery, a CTE, a LATERAL join, a recursive or data-modifying CTE), which
conditions filter it (comparisons, IN lists, subqueries in WHERE, EXISTS, scalar
comparisons, raw fragments), what it selects (columns, scalar subqueries, window
functions) and how it ends (DISTINCT ON, ORDER BY, LIMIT/OFFSET, set operations).

``recipe.qk()`` builds it with querykit's builders; ``recipe.core()`` builds the same
query with SQLAlchemy Core alone, never touching querykit. The two are executed by
different code (querykit's executor, SQLAlchemy's engine), so a value bound in the
wrong slot, a subquery that lost its correlation or a condition rendered wrongly
shows up as different rows. Values are drawn so that they collide: the same value in
two places, different values in lookalike places.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

import querykit as qk
from tests.tables import Mood, everything, holder, node

E, H, N = everything, holder, node
H2 = holder.alias("h2")  # the holder a subquery looks up, apart from a LATERAL's outer holder

# -- how many, and how they are drawn -------------------------------------------------

EXAMPLES = int(os.environ.get("QK_DIFF_EXAMPLES", "600"))
"""Generated examples per test (``QK_DIFF_EXAMPLES=20000`` for a long run)."""
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples every run: a failure reproduces
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- values that collide ----------------------------------------------------------------

INTS = [0, 1, 2, 3, 5, -1]
TEXTS = ["a", "b", "ab", "A", "", "a%", "it's"]
DECIMALS = [Decimal("0"), Decimal("1.5"), Decimal("2"), Decimal("-1"), Decimal("2.50")]
FLOATS = [0.0, 1.5, 2.0, -1.0, 0.1]
DAYS = [dt.date(2026, 1, d) for d in (1, 2, 3, 5)]
TIMES = [dt.datetime(2026, 1, d, h, tzinfo=dt.UTC) for d in (1, 2) for h in (0, 12)]
TAGS = [["a"], ["b"], ["a", "b"], ["ab"], []]
DOCS = [{"k": 1}, {"k": "a"}, {"j": [1, 2]}, {"k": 1, "j": True}, {}]

# column -> values of its type
DOMAIN: dict[str, list[Any]] = {
    "id": list(range(1, 8)),
    "holder_id": INTS[:4],
    "small": INTS,
    "big": [*INTS, 2**40],
    "num": DECIMALS,
    "dbl": FLOATS,
    "flag": [True, False],
    "txt": TEXTS,
    "day": DAYS,
    "at": TIMES,
    "mood": list(Mood),
}
ORDERABLE = ["id", "holder_id", "small", "big", "num", "dbl", "txt", "day", "at"]
SELECTABLE = [*ORDERABLE, "flag", "mood", "tags", "nums", "doc"]


def seed_rows() -> dict[str, list[dict[str, Any]]]:
    """The seeded data: 5 holders, 12 nodes in a tree, 30 rows of ``everything``."""
    cycle = itertools.cycle
    pick = {c: cycle(DOMAIN[c] + [None]) for c in DOMAIN if c not in ("id", "holder_id")}
    holders = [{"id": i, "label": TEXTS[i % len(TEXTS)]} for i in range(1, 6)]
    nodes = [
        {"id": i, "parent_id": None if i == 1 else (i // 2), "label": TEXTS[i % 4]}
        for i in range(1, 13)
    ]
    rows = []
    for i in range(1, 31):
        row: dict[str, Any] = {"id": i, "holder_id": (i % 6) or None}
        for c, values in pick.items():
            for _ in range(i % 3):  # vary the phase between columns
                next(values)
            row[c] = next(values)
        row["tags"] = TAGS[i % len(TAGS)] if i % 7 else None
        row["nums"] = [INTS[i % 6], INTS[(i + 1) % 6]] if i % 5 else None
        row["doc"] = DOCS[i % len(DOCS)] if i % 6 else None
        row["parent_id"] = None
        rows.append(row)
    return {"holder": holders, "node": nodes, "everything": rows}


# -- recipes ------------------------------------------------------------------------------


class Ctx:
    """Names for subqueries and CTEs, unique within one recipe."""

    def __init__(self) -> None:
        self.n = 0

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"


@dataclass(frozen=True)
class Cmp:
    column: str
    op: str
    value: Any

    def qk(self, src: Any) -> Any:
        fn = {"=": qk.eq, "<>": qk.ne, ">": qk.gt, ">=": qk.gte, "<": qk.lt, "<=": qk.lte}
        return fn[self.op](src.c[self.column], self.value)

    def core(self, src: Any) -> Any:
        col = src.c[self.column]
        return {
            "=": col.__eq__,
            "<>": col.__ne__,
            ">": col.__gt__,
            ">=": col.__ge__,
            "<": col.__lt__,
            "<=": col.__le__,
        }[self.op](self.value)


@dataclass(frozen=True)
class Between:
    column: str
    low: Any
    high: Any

    def qk(self, src: Any) -> Any:
        return qk.between(src.c[self.column], self.low, self.high)

    def core(self, src: Any) -> Any:
        return src.c[self.column].between(self.low, self.high)


@dataclass(frozen=True)
class Like:
    pattern: str
    insensitive: bool

    def qk(self, src: Any) -> Any:
        return (qk.ilike if self.insensitive else qk.like)(src.c.txt, self.pattern)

    def core(self, src: Any) -> Any:
        col = src.c.txt
        return col.ilike(self.pattern) if self.insensitive else col.like(self.pattern)


@dataclass(frozen=True)
class IsNull:
    column: str
    negate: bool

    def qk(self, src: Any) -> Any:
        return (qk.is_not_null if self.negate else qk.is_null)(src.c[self.column])

    def core(self, src: Any) -> Any:
        col = src.c[self.column]
        return col.is_not(None) if self.negate else col.is_(None)


@dataclass(frozen=True)
class InList:
    column: str
    values: tuple[Any, ...]
    negate: bool
    core_form: bool
    """querykit side: True passes Core's ``col.in_()``; False uses ``in_array()``."""

    def qk(self, src: Any) -> Any:
        col = src.c[self.column]
        if self.core_form:
            return col.not_in(self.values) if self.negate else col.in_(self.values)
        return (qk.not_in_array if self.negate else qk.in_array)(col, self.values)

    def core(self, src: Any) -> Any:
        col = src.c[self.column]
        return col.not_in(self.values) if self.negate else col.in_(self.values)


@dataclass(frozen=True)
class TagsOp:
    op: str
    values: tuple[str, ...]

    def qk(self, src: Any) -> Any:
        fn = {
            "@>": qk.array_contains,
            "<@": qk.array_contained,
            "&&": qk.array_overlaps,
        }[self.op]
        return fn(src.c.tags, list(self.values))

    def core(self, src: Any) -> Any:
        col = sa.type_coerce(src.c.tags, postgresql.ARRAY(sa.Text))
        values = sa.cast(
            sa.literal(list(self.values), postgresql.ARRAY(sa.Text)), postgresql.ARRAY(sa.Text)
        )
        return col.op(self.op, is_comparison=True)(values)


@dataclass(frozen=True)
class JsonOp:
    key: str
    value: Any
    contains: bool

    def qk(self, src: Any) -> Any:
        if self.contains:
            return qk.json_contains(src.c.doc, {self.key: self.value})
        return qk.has_key(src.c.doc, self.key)

    def core(self, src: Any) -> Any:
        col = sa.type_coerce(src.c.doc, postgresql.JSONB)
        if self.contains:
            return col.contains({self.key: self.value})
        return col.has_key(self.key)


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or / not
    parts: tuple[Any, ...]

    def qk(self, src: Any) -> Any:
        parts = [p.qk(src) for p in self.parts]
        if self.op == "not":
            return qk.not_(parts[0])
        return (qk.and_ if self.op == "and" else qk.or_)(*parts)

    def core(self, src: Any) -> Any:
        parts = [p.core(src) for p in self.parts]
        if self.op == "not":
            return sa.not_(parts[0])
        return (sa.and_ if self.op == "and" else sa.or_)(*parts)


@dataclass(frozen=True)
class InSub:
    """``column IN (SELECT small FROM everything WHERE ...)``, the subquery with its own values."""

    column: str
    where: Any
    negate: bool
    how: str  # core_in (Core's in_ of a querykit query) / subquery / raw

    def qk(self, src: Any) -> Any:
        sub = qk.select(E.c.small).where(self.where.qk(E), qk.is_not_null(E.c.small))
        col = src.c[self.column]
        if self.how == "raw":
            cond = qk.sql(":col IN (:sub)", col=col, sub=sub)
            return qk.not_(cond) if self.negate else cond
        target = sub if self.how == "core_in" else sa.select(sub.subquery().c.small)
        return col.not_in(target) if self.negate else col.in_(target)

    def core(self, src: Any) -> Any:
        sub = sa.select(E.c.small).where(self.where.core(E), E.c.small.is_not(None))
        col = src.c[self.column]
        return col.not_in(sub) if self.negate else col.in_(sub)


@dataclass(frozen=True)
class Exists:
    """EXISTS (a holder of this row whose label matches), correlated to the outer row."""

    label: str
    negate: bool

    def qk(self, src: Any) -> Any:
        sub = qk.select(H2.c.id).where(
            qk.eq(H2.c.id, src.c.holder_id), qk.ne(H2.c.label, self.label)
        )
        return (qk.not_exists if self.negate else qk.exists)(sub)

    def core(self, src: Any) -> Any:
        sub = sa.select(H2.c.id).where(H2.c.id == src.c.holder_id, H2.c.label != self.label)
        cond = sa.exists(sub)
        return ~cond if self.negate else cond


@dataclass(frozen=True)
class ScalarCmp:
    """``column > (SELECT max(column) FROM everything WHERE ...)``."""

    column: str
    op: str
    where: Any

    def qk(self, src: Any) -> Any:
        sub = qk.select(qk.fn.max(E.c[self.column])).where(self.where.qk(E)).scalar_subquery()
        return Cmp(self.column, self.op, sub).qk(src)

    def core(self, src: Any) -> Any:
        sub = sa.select(sa.func.max(E.c[self.column])).where(self.where.core(E)).scalar_subquery()
        return Cmp(self.column, self.op, sub).core(src)


@dataclass(frozen=True)
class RawCond:
    """A ``sql()`` fragment with its own values."""

    column: str
    value: Any

    def qk(self, src: Any) -> Any:
        return qk.sql(":col = :v OR :col IS NULL", col=src.c[self.column], v=self.value)

    def core(self, src: Any) -> Any:
        col = src.c[self.column]
        return sa.or_(col == self.value, col.is_(None))


# -- selects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Select:
    """A SELECT over ``everything`` (or a source made from one) with the parts drawn."""

    source: str  # table / subquery / cte / lateral / lateral_flag / modifying_cte
    inner_where: Any  # the source's own condition (None for the table)
    where: Any
    columns: tuple[str, ...]
    extra: str | None  # scalar / window / None
    extra_value: Any
    distinct_on: str | None
    order: tuple[tuple[str, bool], ...]
    limit: int | None
    offset: int | None

    # the source ---------------------------------------------------------------------

    def _qk_source(self, ctx: Ctx) -> tuple[Any, Any]:
        """(what to select from, what to join first or None)."""
        if self.source == "table":
            return E, None
        inner_cols = [E.c[c] for c in SELECTABLE]
        if self.source in ("subquery", "cte"):
            q = qk.select(*inner_cols).where(self.inner_where.qk(E))
            name = ctx.name(self.source)
            return (q.subquery(name) if self.source == "subquery" else q.cte(name)), None
        if self.source == "modifying_cte":
            upd = qk.update(E).set(txt=E.c.txt).where(self.inner_where.qk(E)).returning(*inner_cols)
            return upd.cte(ctx.name("upd")), None
        # LATERAL: holders, each with its rows of everything
        q = (
            qk.select(*inner_cols)
            .where(qk.eq(E.c.holder_id, H.c.id), self.inner_where.qk(E))
            .order_by(qk.asc(E.c.id))
            .limit(3)
        )
        name = ctx.name("lat")
        return (q.lateral(name) if self.source == "lateral" else q.subquery(name)), H

    def _core_source(self, ctx: Ctx) -> tuple[Any, Any]:
        if self.source == "table":
            return E, None
        inner_cols = [E.c[c] for c in SELECTABLE]
        if self.source in ("subquery", "cte"):
            q = sa.select(*inner_cols).where(self.inner_where.core(E))
            name = ctx.name(self.source)
            return (q.subquery(name) if self.source == "subquery" else q.cte(name)), None
        if self.source == "modifying_cte":
            upd = (
                sa.update(E)
                .values(txt=E.c.txt)
                .where(self.inner_where.core(E))
                .returning(*inner_cols)
            )
            return upd.cte(ctx.name("upd")), None
        q = (
            sa.select(*inner_cols)
            .where(E.c.holder_id == H.c.id, self.inner_where.core(E))
            .order_by(E.c.id.asc())
            .limit(3)
        )
        return q.lateral(ctx.name("lat")), H

    # the query ------------------------------------------------------------------------

    def output(self) -> tuple[str, ...]:
        return self.columns + (("x",) if self.extra else ())

    def _order_all(self) -> bool:
        return self.limit is not None or self.offset is not None or self.distinct_on is not None

    def qk(self, ctx: Ctx | None = None) -> Any:
        ctx = ctx or Ctx()
        src, left = self._qk_source(ctx)
        cols: list[Any] = [src.c[c] for c in self.columns]
        if self.extra == "scalar":
            sub = qk.select(qk.count()).where(
                qk.eq(H2.c.id, src.c.holder_id), qk.ne(H2.c.label, self.extra_value)
            )
            cols.append(sub.scalar_subquery().label("x"))
        elif self.extra == "window":
            cols.append(sa.func.sum(src.c.small).over(partition_by=src.c.holder_id).label("x"))
        q = qk.select(*cols)
        if left is not None:
            lateral = self.source == "lateral_flag"
            q = q.from_(left).join(src, sa.true(), lateral=lateral)
        elif self.source != "table":
            q = q.from_(src)
        if self.where is not None:
            q = q.where(self.where.qk(src))
        order = self._order(src)
        if self.distinct_on:
            q = q.distinct_on(src.c[self.distinct_on])
        if order:
            q = q.order_by(*[(qk.desc if d else qk.asc)(e, nulls="first") for e, d in order])
        if self.limit is not None:
            q = q.limit(self.limit)
        if self.offset is not None:
            q = q.offset(self.offset)
        return q

    def core(self, ctx: Ctx | None = None) -> Any:
        ctx = ctx or Ctx()
        src, left = self._core_source(ctx)
        cols: list[Any] = [src.c[c] for c in self.columns]
        if self.extra == "scalar":
            sub = sa.select(sa.func.count()).where(
                H2.c.id == src.c.holder_id, H2.c.label != self.extra_value
            )
            cols.append(sub.scalar_subquery().label("x"))
        elif self.extra == "window":
            cols.append(sa.func.sum(src.c.small).over(partition_by=src.c.holder_id).label("x"))
        q = sa.select(*cols)
        if left is not None:
            q = q.select_from(left.join(src, sa.true()))
        elif self.source != "table":
            q = q.select_from(src)
        if self.where is not None:
            q = q.where(self.where.core(src))
        order = self._order(src)
        if self.distinct_on:
            q = q.ext(postgresql.distinct_on(src.c[self.distinct_on]))
        if order:
            q = q.order_by(*[(e.desc() if d else e.asc()).nulls_first() for e, d in order])
        if self.limit is not None:
            q = q.limit(self.limit)
        if self.offset is not None:
            q = q.offset(self.offset)
        return q

    def _order(self, src: Any) -> list[tuple[Any, bool]]:
        """The drawn order; with LIMIT, OFFSET or DISTINCT ON, every output column after it,
        so that the rows kept do not depend on the plan."""
        order: list[tuple[Any, bool]] = []
        if self.distinct_on:
            order.append((src.c[self.distinct_on], False))
        order += [(src.c[c], d) for c, d in self.order]
        if self._order_all():
            order += [(src.c[c], False) for c in self.columns if c in [*ORDERABLE, "flag", "mood"]]
            order += [(src.c.id, False)]
        return order


@dataclass(frozen=True)
class SetOp:
    op: str
    left: Select
    right: Select

    def output(self) -> tuple[str, ...]:
        return self.left.output()

    def qk(self) -> Any:
        ctx = Ctx()
        fn = {
            "union": qk.union,
            "union_all": qk.union_all,
            "intersect": qk.intersect,
            "except": qk.except_,
        }
        return fn[self.op](self.left.qk(ctx), self.right.qk(ctx))

    def core(self) -> Any:
        ctx = Ctx()
        fn = {
            "union": sa.union,
            "union_all": sa.union_all,
            "intersect": sa.intersect,
            "except": sa.except_,
        }
        return fn[self.op](self.left.core(ctx), self.right.core(ctx))


@dataclass(frozen=True)
class Recursive:
    """Walk the node tree from a root label, skipping a label on the way down."""

    start: str
    skip: str
    keep: str

    def output(self) -> tuple[str, ...]:
        return ("id",)

    def qk(self) -> Any:
        tree = (
            qk.select(N.c.id, N.c.label)
            .where(qk.eq(N.c.id, 1), qk.ne(N.c.label, self.start))
            .cte("tree", recursive=True)
        )
        down = (
            qk.select(N.c.id, N.c.label)
            .from_(tree)
            .join(N, qk.eq(N.c.parent_id, tree.c.id))
            .where(qk.ne(N.c.label, self.skip))
        )
        tree = tree.union_all(down.statement)
        return qk.select(tree.c.id).where(qk.ne(tree.c.label, self.keep))

    def core(self) -> Any:
        tree = (
            sa.select(N.c.id, N.c.label)
            .where(N.c.id == 1, N.c.label != self.start)
            .cte("tree", recursive=True)
        )
        down = (
            sa.select(N.c.id, N.c.label)
            .select_from(tree.join(N, N.c.parent_id == tree.c.id))
            .where(N.c.label != self.skip)
        )
        tree = tree.union_all(down)
        return sa.select(tree.c.id).where(tree.c.label != self.keep)


@dataclass(frozen=True)
class RawQuery:
    """A whole ``raw()`` statement embedding a querykit query and values of its own."""

    value: int
    inner: Any

    def output(self) -> tuple[str, ...]:
        return ("id",)

    def qk(self) -> Any:
        sub = qk.select(E.c.id).where(self.inner.qk(E))
        return qk.raw(
            "SELECT id FROM everything WHERE (small <> :v OR small IS NULL) AND id IN (:sub)",
            v=self.value,
            sub=sub,
        )

    def core(self) -> Any:
        sub = sa.select(E.c.id).where(self.inner.core(E))
        return sa.select(E.c.id).where(
            sa.or_(E.c.small != self.value, E.c.small.is_(None)), E.c.id.in_(sub)
        )


# -- strategies ---------------------------------------------------------------------------

_CMP_COLUMNS = [c for c in DOMAIN if c not in ("flag", "mood")]


def _value(column: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(DOMAIN[column])


@st.composite
def cmp(draw: st.DrawFn) -> Cmp:
    column = draw(st.sampled_from([*_CMP_COLUMNS, "flag", "mood"]))
    ops = ["=", "<>"] if column in ("flag", "mood") else ["=", "<>", ">", ">=", "<", "<="]
    return Cmp(column, draw(st.sampled_from(ops)), draw(_value(column)))


@st.composite
def leaf(draw: st.DrawFn, depth: int = 0) -> Any:
    kind = draw(
        st.sampled_from(
            ["cmp", "cmp", "between", "like", "null", "in", "tags", "json", "raw"]
            + (["insub", "exists", "scalar"] if depth == 0 else [])
        )
    )
    if kind == "cmp":
        return draw(cmp())
    if kind == "between":
        column = draw(st.sampled_from(ORDERABLE))
        low, high = sorted(draw(st.lists(_value(column), min_size=2, max_size=2)), key=_sort_key)
        return Between(column, low, high)
    if kind == "like":
        return Like(
            draw(st.sampled_from(["a%", "%b", "_", "A%", "%'%", "a\\%"])), draw(st.booleans())
        )
    if kind == "null":
        return IsNull(draw(st.sampled_from(SELECTABLE)), draw(st.booleans()))
    if kind == "in":
        column = draw(st.sampled_from([*_CMP_COLUMNS, "mood"]))
        values = draw(st.lists(_value(column), max_size=4, unique_by=repr))
        return InList(column, tuple(values), draw(st.booleans()), draw(st.booleans()))
    if kind == "tags":
        return TagsOp(draw(st.sampled_from(["@>", "<@", "&&"])), tuple(draw(st.sampled_from(TAGS))))
    if kind == "json":
        return JsonOp(
            draw(st.sampled_from(["k", "j"])),
            draw(st.sampled_from([1, "a", True])),
            draw(st.booleans()),
        )
    if kind == "raw":
        column = draw(st.sampled_from(["small", "txt", "num"]))
        return RawCond(column, draw(_value(column)))
    if kind == "insub":
        return InSub(
            draw(st.sampled_from(["small", "big", "holder_id"])),
            draw(condition(depth=1)),
            draw(st.booleans()),
            draw(st.sampled_from(["core_in", "subquery", "raw"])),
        )
    if kind == "exists":
        return Exists(draw(st.sampled_from(TEXTS)), draw(st.booleans()))
    column = draw(st.sampled_from(["small", "num", "txt", "day"]))
    return ScalarCmp(column, draw(st.sampled_from([">", "<=", "="])), draw(condition(depth=1)))


def _sort_key(v: Any) -> Any:
    return (str(type(v)), v)


@st.composite
def condition(draw: st.DrawFn, depth: int = 0) -> Any:
    if depth >= 2 or draw(st.integers(0, 2)) > 0:
        return draw(leaf(depth))
    op = draw(st.sampled_from(["and", "or", "not"]))
    n = 1 if op == "not" else draw(st.integers(2, 3))
    return BoolOp(op, tuple(draw(condition(depth + 1)) for _ in range(n)))


@st.composite
def selects(draw: st.DrawFn, columns: tuple[str, ...] | None = None, plain: bool = False) -> Select:
    source = (
        "table"
        if plain
        else draw(
            st.sampled_from(
                ["table", "table", "subquery", "cte", "lateral", "lateral_flag", "modifying_cte"]
            )
        )
    )
    if columns is None:
        columns = tuple(
            draw(st.lists(st.sampled_from(SELECTABLE), min_size=1, max_size=4, unique=True))
        )
    extra = None if plain else draw(st.sampled_from([None, None, "scalar", "window"]))
    distinct_on = None
    if not plain and draw(st.integers(0, 5)) == 0:
        distinct_on = draw(st.sampled_from(["holder_id", "small", "txt", "flag"]))
    order = tuple(
        (c, draw(st.booleans()))
        for c in draw(st.lists(st.sampled_from(ORDERABLE), max_size=2, unique=True))
    )
    limited = not plain and draw(st.booleans())
    return Select(
        source=source,
        inner_where=None if source == "table" else draw(condition(depth=1)),
        where=draw(st.none() | condition()),
        columns=columns,
        extra=extra,
        extra_value=draw(st.sampled_from(TEXTS)),
        distinct_on=distinct_on,
        order=order if not plain else (),
        limit=draw(st.integers(0, 6)) if limited else None,
        offset=draw(st.none() | st.integers(0, 4)) if limited else None,
    )


@st.composite
def compositions(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["select"] * 6 + ["setop", "recursive", "raw"]))
    if kind == "select":
        return draw(selects())
    if kind == "setop":
        columns = tuple(
            draw(st.lists(st.sampled_from(ORDERABLE), min_size=1, max_size=3, unique=True))
        )
        return SetOp(
            draw(st.sampled_from(["union", "union_all", "intersect", "except"])),
            draw(selects(columns=columns, plain=True)),
            draw(selects(columns=columns, plain=True)),
        )
    if kind == "recursive":
        return Recursive(*draw(st.lists(st.sampled_from(TEXTS), min_size=3, max_size=3)))
    return RawQuery(draw(st.sampled_from(INTS)), draw(condition(depth=1)))


@dataclass
class Prepared:
    """A plain select whose top-level comparison values become ``placeholder()``s."""

    select: Select
    values: dict[str, Any] = field(default_factory=dict)


def with_placeholders(cond: Any, values: dict[str, Any]) -> Any:
    """``cond`` with each top-level comparison's value replaced by a named placeholder."""
    if isinstance(cond, Cmp) and cond.column not in ("mood",):
        name = f"p{len(values)}"
        values[name] = cond.value
        return Cmp(cond.column, cond.op, qk.placeholder(name))
    if isinstance(cond, BoolOp):
        return BoolOp(cond.op, tuple(with_placeholders(p, values) for p in cond.parts))
    return cond
