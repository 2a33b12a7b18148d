"""The differential suite: generated compositions, querykit against independent oracles.

For every generated query (see ``recipes.py``):

1. querykit's rows (``db.all``) equal the rows of the same query built with plain
   SQLAlchemy Core and executed by SQLAlchemy's engine: an independent oracle;
2. querykit's parameters equal those of Core's own compilation of ``query.statement``,
   in order;
3. ``to_sql().inline()``, sent over the simple-query protocol, returns the same rows;
4. where the query has comparisons, ``db.prepare()`` with ``placeholder()``s in their
   place returns the same rows as the query with the values.

``QK_DIFF_EXAMPLES`` sets the number of generated compositions (default 600). The run
is derandomised: the same examples every time, so a failure reproduces; hypothesis
prints the failing recipe.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import psycopg
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import querykit
from tests.differential import recipes
from tests.sqlassert import check_against_core

SETTINGS = recipes.SETTINGS  # QK_DIFF_EXAMPLES sets the number of examples (600)
SEED = recipes.seed_rows


def norm(value: Any) -> Any:
    """A value in a form both sides agree on and that sorts: enums by name, JSON as text."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, list | tuple):
        return tuple(norm(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def rows_of(rows: Any) -> list[tuple[Any, ...]]:
    return [tuple(norm(v) for v in row) for row in rows]


def same_rows(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]], ordered: bool) -> bool:
    if ordered:
        return ours == theirs
    return sorted(ours, key=repr) == sorted(theirs, key=repr)


def run_core(engine: sa.Engine, statement: Any) -> list[tuple[Any, ...]]:
    with engine.begin() as c:
        return rows_of(c.execute(statement))


def is_ordered(recipe: Any) -> bool:
    """Whether the recipe's order is total, so row order itself can be compared."""
    return isinstance(recipe, recipes.Select) and recipe._order_all()


@SETTINGS
@given(recipe=recipes.compositions())
def test_compositions_agree_with_core(
    recipe: Any, db: querykit.Database, engine: sa.Engine, simple: psycopg.Connection[Any]
) -> None:
    query = recipe.qk()
    compiled = query.to_sql()
    check_against_core(query, compiled)
    ours = rows_of(db.all(query))
    core = run_core(engine, recipe.core())
    ordered = is_ordered(recipe)
    assert same_rows(ours, core, ordered), f"querykit {ours}\n    core {core}\n{compiled.sql}"
    inline = rows_of(simple.execute(compiled.inline()).fetchall())
    assert same_rows(inline, core, ordered), f"inline {inline}\n  core {core}"


@SETTINGS
@given(select=recipes.selects(), data=st.data())
def test_placeholders_agree_with_values(
    select: recipes.Select, data: Any, db: querykit.Database, engine: sa.Engine
) -> None:
    values: dict[str, Any] = {}
    where = recipes.with_placeholders(select.where, values) if select.where else None
    if not values:
        where = recipes.Cmp("small", ">=", querykit.placeholder("p0"))
        values["p0"] = data.draw(st.sampled_from(recipes.INTS))
        select = recipes.Select(
            **{**select.__dict__, "where": recipes.Cmp("small", ">=", values["p0"])}
        )
    prepared_select = recipes.Select(**{**select.__dict__, "where": where})
    prepared = db.prepare(prepared_select.qk())
    ours = rows_of(prepared.all(**values))
    core = run_core(engine, select.core())
    assert same_rows(ours, core, is_ordered(select)), f"prepared {ours}\n    core {core}"
