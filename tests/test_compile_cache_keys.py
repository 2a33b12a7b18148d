"""The compile cache never hands one query the shape of another.

Each case is a pair of queries that differ in one small thing (an operator, a
column, a bound value against SQL text, a LIMIT against none...). The oracle is
the compiler itself with an empty cache: compiling the second query right after
the first, with the first's shape cached, must give exactly what compiling it
alone gives. The hot path's inline keys (``_Compare._key``, ``where()``,
``order_by()``, ``limit()``, learned value types) are checked against the general
rules they shortcut.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

import querykit.build.binding as qk_binding
import querykit.compile as qk_compile
from querykit import (
    CompileError,
    asc,
    desc,
    eq,
    gt,
    gte,
    in_array,
    lt,
    ne,
    not_in_array,
    placeholder,
    select,
)
from querykit.build.operators import _Compare
from querykit.build.sqltext import CompiledSQL, compiled_sql
from schema import Status, pipeline_run, pipeline_step

run, step = pipeline_run, pipeline_step

Build = Callable[[], Any]


def base() -> Any:
    return select(run.c.id, run.c.name).where(eq(run.c.status, Status.FAILED))


PAIRS: dict[str, tuple[Build, Build]] = {
    "operator": (
        lambda: select(run.c.id).where(gte(run.c.cost, 5)),  # type: ignore[misc]
        lambda: select(run.c.id).where(gt(run.c.cost, 5)),  # type: ignore[misc]
    ),
    "equal or not": (
        lambda: select(run.c.id).where(eq(run.c.name, "a")),
        lambda: select(run.c.id).where(ne(run.c.name, "a")),
    ),
    "column": (
        lambda: select(run.c.id).where(eq(run.c.name, "a")),
        lambda: select(run.c.id).where(eq(run.c.id, "a")),
    ),
    "column of another table": (
        lambda: select(run.c.id).from_(run).join(step).where(eq(run.c.name, "a")),
        lambda: select(run.c.id).from_(run).join(step).where(eq(step.c.name, "a")),
    ),
    "value or column": (
        lambda: select(run.c.id).where(eq(run.c.name, "a")),
        lambda: select(run.c.id).where(eq(run.c.name, run.c.id)),
    ),
    "value or SQL text": (
        lambda: select(run.c.id).where(gt(run.c.cost, 5)),  # type: ignore[misc]
        lambda: select(run.c.id).where(gt(run.c.cost, sa.literal_column("5"))),
    ),
    "value or a cast Core literal": (
        lambda: select(run.c.id).where(eq(run.c.name, "a")),
        lambda: select(run.c.id).where(eq(run.c.name, sa.cast(sa.literal("a"), sa.Text))),
    ),
    "value or SQL function": (
        lambda: select(run.c.id).where(lt(run.c.started_at, sa.func.now())),
        lambda: select(run.c.id).where(lt(run.c.started_at, sa.func.clock_timestamp())),
    ),
    "sides swapped": (
        lambda: select(run.c.id).where(eq(run.c.name, "a")),
        lambda: select(run.c.id).where(eq("a", run.c.name)),
    ),
    "enum value or text": (
        lambda: select(run.c.id).where(eq(run.c.status, Status.FAILED)),
        lambda: select(run.c.id).where(eq(run.c.name, Status.FAILED.value)),
    ),
    "a limit or none": (
        lambda: base().limit(10),
        lambda: base(),
    ),
    "a limit or an offset": (
        lambda: base().limit(10),
        lambda: base().offset(10),
    ),
    "limit removed": (
        lambda: base().limit(10),
        lambda: base().limit(10).limit(None),
    ),
    "limit as a placeholder": (
        lambda: base().limit(10),
        lambda: base().limit(placeholder("n", int)),
    ),
    "descending or ascending": (
        lambda: base().order_by(desc(run.c.started_at)),
        lambda: base().order_by(asc(run.c.started_at)),
    ),
    "nulls first or last": (
        lambda: base().order_by(desc(run.c.started_at, nulls="first")),
        lambda: base().order_by(desc(run.c.started_at, nulls="last")),
    ),
    "order by one column or another": (
        lambda: base().order_by(desc(run.c.started_at)),
        lambda: base().order_by(desc(run.c.cost)),
    ),
    "order by desc() or Core's desc()": (
        lambda: base().order_by(desc(run.c.started_at)),
        lambda: base().order_by(run.c.started_at.desc()),
    ),
    "in or not in": (
        lambda: base().where(in_array(run.c.name, ["a", "b"])),
        lambda: base().where(not_in_array(run.c.name, ["a", "b"])),
    ),
    "an empty list": (
        lambda: base().where(in_array(run.c.name, ["a"])),
        lambda: base().where(in_array(run.c.name, [])),
    ),
    "one where() or two": (
        lambda: base().where(eq(run.c.name, "a")),
        lambda: base().where(eq(run.c.name, "a"), eq(run.c.id, "b")),
    ),
    "a Core condition": (
        lambda: base().where(eq(run.c.name, "a")),
        lambda: base().where(run.c.name == "a"),
    ),
    "where or having": (
        lambda: select(run.c.name).group_by(run.c.name).where(eq(run.c.name, "a")),
        lambda: select(run.c.name).group_by(run.c.name).having(eq(run.c.name, "a")),
    ),
    "selected columns": (
        lambda: select(run.c.id, run.c.name).where(eq(run.c.name, "a")),
        lambda: select(run.c.name, run.c.id).where(eq(run.c.name, "a")),
    ),
}


# Pairs that are the same statement written two ways: their SQL and values agree.
SAME = {"limit as a placeholder", "order by desc() or Core's desc()", "a Core condition"}


def compiled(build: Build) -> tuple[str, tuple[int, ...], list[str]]:
    """What the executor would send: the SQL, which value feeds each ``%s``, the values."""
    shape, values = qk_compile.compile_query(build())
    return shape.sql, shape.slots, [repr(v) for v in values]


@pytest.mark.parametrize("case", PAIRS)
def test_a_cached_shape_is_never_another_querys(case: str) -> None:
    first, second = PAIRS[case]
    qk_compile.clear_cache()
    alone = [compiled(first), compiled(second)]
    for a, b in ((first, second), (second, first)):
        qk_compile.clear_cache()
        warm = [compiled(a), compiled(b), compiled(a), compiled(b)]  # each also from the cache
        expected = alone if a is first else alone[::-1]
        assert warm == expected * 2
    assert (alone[0][0] == alone[1][0]) == (case in SAME)


def test_the_inline_compare_key_is_operand_keys() -> None:
    """``_Compare._key`` keys a table's own column against a plain value inline; every
    pairing keys, and binds, as the general ``operand_key`` does."""
    operands = [
        run.c.name,
        "a",
        5,
        None,
        Status.FAILED,
        placeholder("p"),
        sa.literal_column("x"),
        run.c.cost + 1,
        run.alias("r").c.name,
    ]
    for left in operands:
        for right in operands:
            if left is None or right is None:
                continue
            condition = _Compare(left, "=", right)
            fast: list[Any] = []
            general: list[Any] = []
            expected = (
                "=",
                qk_binding.operand_key(left, general),
                qk_binding.operand_key(right, general),
            )
            assert condition._key(fast) == expected
            assert fast == general


class Colour(enum.Enum):
    RED = "red"


class Keyed(enum.Enum):
    """An enum whose members describe themselves: never a plain value."""

    ONE = 1

    def _key(self, values: list[Any]) -> Any:
        values.append("keyed")
        return "keyed"


class Carrier:
    """Instances have a __dict__: one of them may be given a ``_key`` of its own."""


def test_value_types_are_learned_only_when_every_instance_is_a_value() -> None:
    values: list[Any] = []
    assert qk_binding.operand_key(Colour.RED, values) == qk_binding.VALUE
    assert Colour in qk_binding.VALUE_TYPES and values == [Colour.RED]
    assert qk_binding.operand_key(Keyed.ONE, values) == "keyed"
    assert Keyed not in qk_binding.VALUE_TYPES
    plain, special = Carrier(), Carrier()
    assert qk_binding.operand_key(plain, values) == qk_binding.VALUE
    assert Carrier not in qk_binding.VALUE_TYPES
    special._key = lambda values: "mine"  # type: ignore[attr-defined]
    assert qk_binding.operand_key(special, values) == "mine"


def test_where_takes_conditions_as_given_and_anything_else_as_before() -> None:
    one, two = eq(run.c.name, "a"), gt(run.c.cost, 1)  # type: ignore[misc]
    mixed = select(run.c.id).where(one, None, run.c.id == "b", two).to_sql()
    assert mixed.sql.endswith(
        "WHERE pipeline_run.name = %s AND pipeline_run.id = %s AND pipeline_run.cost > %s"
    )
    assert mixed.params == ("a", "b", 1)
    q = select(run.c.id)
    assert q.where() is q and q.where(None, None) is q
    with pytest.raises(CompileError, match="plain Python bool"):
        q.where(one, True)  # type: ignore[arg-type]


def test_one_order_item_orders_as_a_list_of_them_would() -> None:
    item = desc(run.c.started_at, nulls="last")
    assert (
        base().order_by(item).to_sql()
        == base().order_by(item, None).to_sql()
        == base().order_by(None, item).to_sql()
    )


@pytest.mark.parametrize("bad", [-1, True, 1.5, "10", placeholder("n", str)])
def test_limit_checks_what_it_is_given(bad: Any) -> None:
    with pytest.raises(CompileError, match="limit"):
        base().limit(bad)


def test_the_fast_compiled_sql_is_the_dataclass() -> None:
    types = (sa.Integer(),)
    fast = compiled_sql("SELECT %s", (1,), types, (1,))
    slow = CompiledSQL("SELECT %s", (1,), types, (1,))
    assert fast == slow and repr(fast) == repr(slow) and fast.inline() == "SELECT 1"
    assert fast.settings == () and replace(fast, settings=(("a", "b"),)).settings == (("a", "b"),)
    with pytest.raises(AttributeError):
        fast.sql = "x"  # type: ignore[misc]


def test_for_update_of_names_the_alias_given_even_at_a_reused_address() -> None:
    # The key once held id(alias) for FOR UPDATE OF: an alias freed and another made at
    # the same address (CPython reuses it at once) took the first one's cached SQL.
    # (OF must name a FROM item to run; the compile cache alone is under test here)
    base = select(pipeline_run.c.id)
    for i in range(200):
        locked = pipeline_step.alias(f"locked_{i}")
        assert f"OF locked_{i}" in base.for_update(of=locked).to_sql().sql
        del locked
