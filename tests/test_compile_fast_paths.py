"""The compile-cache hit's shortcuts agree with the general rules they skip.

A cache hit is a key walk, one lookup and the parameters. To keep it short, some
work moved: a table's own column is recognised by one set lookup
(``binding.TABLE_COLUMNS``), the usual conditions and ORDER BY items make their key
when they are made (``_known``), and the parameter adapters of enums and ``text[]``
take a fast path. Each test here holds a shortcut to the general rule: the same key
and values as ``operand_key`` gives, the same SQL as a cold compile, the same
parameters (or the same error) as the general adapter.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

import querykit.build.binding as qk_binding
import querykit.compile as qk_compile
from querykit import asc, codecs, desc, eq, gte, in_array, not_in_array, placeholder, select
from querykit.build.operators import Condition, _Compare, _InArray
from querykit.build.query import Order
from querykit.codecs import ValueRejected
from querykit.codecs.base import describe_value
from querykit.errors import ValidationError
from schema import Status, pipeline_run, pipeline_step

run, step = pipeline_run, pipeline_step


class Shade(enum.Enum):
    DARK = "dark"


OPERANDS: list[Any] = [
    run.c.name,
    step.c.name,  # the same name in another table
    run.alias("r").c.name,  # an alias's column: not a table's own
    sa.literal_column("x"),
    run.c.cost + 1,
    placeholder("p"),
    "a",
    5,
    Status.FAILED,
    Shade.DARK,
    ["a", "b"],  # unhashable: a value, never a column
    {"k": 1},
]


def test_a_table_column_is_known_by_identity_only() -> None:
    """``TABLE_COLUMNS`` holds columns, hashed by identity: no value is taken for one,
    even one whose hash equals a column's (an int), or that claims equality to all."""
    column = run.c.duration  # an unbounded numeric: any int fits
    assert qk_binding.is_table_column(column) and column in qk_binding.TABLE_COLUMNS

    class Equal:
        def __hash__(self) -> int:
            return hash(column)

        def __eq__(self, other: object) -> bool:
            return True

    for impostor in (hash(column), Equal(), run.alias("r").c.duration, ["x"], sa.literal(1)):
        assert not qk_binding.is_table_column(impostor)
        assert impostor is not column
    values: list[Any] = []
    assert qk_binding.operand_key(hash(column), values) == qk_binding.VALUE
    assert values == [hash(column)]
    cold = select(run.c.id).where(gte(column, hash(column))).to_sql()
    assert cold.sql.endswith("WHERE pipeline_run.duration >= %s")
    assert cold.params == (hash(column),)


def test_the_known_keys_are_the_general_keys() -> None:
    """Conditions and ORDER BY items keyed when made give the key and values that the
    general ``operand_key`` walk gives, for every pairing of operands."""
    for left in OPERANDS:
        for right in OPERANDS:
            for op in ("=", ">=", "<>"):
                condition = _Compare(left, op, right)
                general: list[Any] = []
                expected = (
                    op,
                    qk_binding.operand_key(left, general),
                    qk_binding.operand_key(right, general),
                )
                walked: list[Any] = []
                assert condition._key(walked) == expected and walked == general
                if condition._known is not None:
                    assert (condition._known, [condition._value]) == (expected, general)
    for column in OPERANDS:
        for items in (["a", "b"], [], ("a",)):
            for negate in (False, True):
                in_ = _InArray(column, items, negate)
                walked = []
                key = in_._key(walked)
                if in_._known is not None:
                    assert (in_._known, [in_._value]) == (key, walked)
                    assert qk_binding.is_table_column(column) and walked == [list(items)]
        for descending in (False, True):
            for nulls in (None, "first", "last"):
                order = Order(column, descending, nulls)
                general = []
                expected_order = (
                    "order",
                    descending,
                    nulls,
                    qk_binding.operand_key(column, general),
                )
                walked = []
                assert order._key(walked) == expected_order and walked == general
                assert order._known in (None, expected_order)


def test_the_select_walk_takes_known_keys_and_other_conditions_alike() -> None:
    """A select whose conditions mix known keys and Core conditions binds its values in
    SQL order, from the cache as when compiled alone."""

    def build(n: int) -> Any:
        return (
            select(run.c.id, run.c.name)
            .where(eq(run.c.status, Status.FAILED), run.c.name != f"x{n}", gte(run.c.cost, n))  # type: ignore[misc]
            .where(in_array(run.c.name, [f"a{n}"]), not_in_array(run.c.id, []))
            .order_by(desc(run.c.started_at), asc(run.c.cost + n), run.c.id)
            .limit(n)
        )

    qk_compile.clear_cache()
    cold = build(1).to_sql()
    warm = build(2).to_sql()
    assert qk_compile.cache_info()["hits"] == 1
    assert warm.sql == cold.sql
    assert cold.params == ("FAILED", "x1", 1, ["a1"], 1, 1)
    assert warm.params == ("FAILED", "x2", 2, ["a2"], 2, 2)


def test_in_array_keeps_the_list_it_was_given() -> None:
    """The list is copied when the condition is made: a later change to it is not seen,
    and the parameter sent is not the caller's list object."""
    names = ["a", "b"]
    query = select(run.c.id).where(in_array(run.c.name, names))
    names.append("c")
    compiled = query.to_sql()
    assert compiled.params == (["a", "b"],)
    assert compiled.params[0] is not names


def test_bound_values_never_enter_the_sql() -> None:
    """Values that look like SQL, or like the key's own markers, are parameters."""
    tricky = ["?", "'; DROP TABLE pipeline_run; --", "where", "order", "limit", "%s"]
    qk_compile.clear_cache()
    texts = set()
    for value in tricky:
        compiled = (
            select(run.c.id)
            .where(eq(run.c.name, value), in_array(run.c.id, [value]))
            .order_by(desc(run.c.started_at))
            .limit(1)
            .to_sql()
        )
        assert compiled.params == (value, [value], 1)
        assert "DROP" not in compiled.sql and "'" not in compiled.sql
        texts.add(compiled.sql)
    assert len(texts) == 1 and qk_compile.cache_info()["hits"] == len(tricky) - 1


def _outcome(adapt: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    try:
        return "ok", adapt(value)
    except ValueRejected as exc:
        return "rejected", str(exc)


class Number(enum.IntEnum):
    ONE = 1


class Other(enum.IntEnum):
    ONE = 1


def test_the_enum_adapter_agrees_with_its_general_rule() -> None:
    adapt = codecs.adapter_for(sa.Enum(Status, name="status"))
    assert adapt is not None
    for member in Status:
        assert adapt(member) == member.name
    assert adapt("FAILED") == "FAILED"
    assert _outcome(adapt, "failed")[0] == "rejected"
    assert _outcome(adapt, Shade.DARK)[0] == "rejected"
    assert _outcome(adapt, None)[0] == "rejected"
    int_adapt = codecs.adapter_for(sa.Enum(Number, name="number"))
    assert int_adapt is not None
    assert int_adapt(Number.ONE) == "ONE"
    # A member of another IntEnum equal in value is found as before (by equality).
    assert int_adapt(Other.ONE) == "ONE"


def _general_text_array(value: Any) -> Any:
    """The general rule the fast ``text[]`` adapter skips: every item through ``text``."""
    if not isinstance(value, list | tuple):
        raise ValueRejected(f"expected a list, got {describe_value(value)}")
    item = codecs.adapter_for(sa.Text())
    assert item is not None
    try:
        return [None if v is None else item(v) for v in value]
    except ValueRejected as exc:
        raise ValueRejected(f"array item: {exc}") from None


@pytest.mark.parametrize(
    "value",
    [
        ["a", "b"],
        [],
        ["a", None, "c"],
        ("a", "b"),
        ["é", "ü"],  # not ASCII: the general check
        ["a\x00b"],
        ["\ud800"],  # a lone surrogate
        ["a", 1],
        [Status.FAILED],  # not a str
        "ab",
        None,
        5,
    ],
)
def test_the_text_array_adapter_agrees_with_its_general_rule(value: Any) -> None:
    adapt = codecs.adapter_for(sa.ARRAY(sa.Text()))
    assert adapt is not None
    assert _outcome(adapt, value) == _outcome(_general_text_array, value)
    if isinstance(value, list) and _outcome(adapt, value)[0] == "ok":
        assert adapt(value) is not value  # a copy: the caller's list may change later


def test_generated_params_adapt_enums_and_text_arrays_as_the_general_rule() -> None:
    """The generated parameter function adapts an enum member and a list of plain text
    inline (``codecs.adapted_when``); every value gives what the general
    ``adapt_params`` gives: the same parameters, or the same error naming the column."""
    from querykit.compile import shape as qk_shape

    types = (
        sa.Enum(Status, name="status"),
        sa.ARRAY(sa.Text()),
        sa.ARRAY(sa.String(3)),  # no inline form: the adapter's call
        sa.ARRAY(sa.Integer()),
    )
    adapters = tuple(codecs.adapter_for(t) for t in types)
    assert codecs.adapted_when(adapters[0]) is not None  # type: ignore[arg-type]
    assert codecs.adapted_when(adapters[1]) is not None  # type: ignore[arg-type]
    slots, labels = (0, 1, 2, 3), ("t.status", "t.names", "t.codes", "t.ints")
    params = qk_shape.params_function(slots, adapters, labels, (), False)
    ok = [Status.FAILED, ["a", "b"], ["abc"], [1, 2]]
    variants: list[list[Any]] = [ok, [None, None, None, None], ["FAILED", [], [], []]]
    for position, bad in (
        (0, "failed"),
        (0, Shade.DARK),
        (0, 1),
        (1, ["a", None]),  # None items: the join fails, the adapter takes it
        (1, ["é"]),
        (1, ["a\x00"]),
        (1, ["\ud800"]),
        (1, ["a", 1]),
        (1, ("a", "b")),
        (1, "ab"),
        (1, [Status.FAILED]),
        (2, ["abcd"]),
        (3, [1, "2"]),
    ):
        variant = list(ok)
        variant[position] = bad
        variants.append(variant)
    for values in variants:
        try:
            expected: Any = qk_shape.adapt_params(values, slots, adapters, labels, ())
        except ValidationError as exc:
            with pytest.raises(ValidationError) as info:
                params(values)
            assert (str(info.value), info.value.column) == (str(exc), exc.column)
        else:
            got = params(values)
            assert got == expected and type(got) is tuple
            assert got[1] is not values[1] or values[1] is None  # a copy of the list


def test_to_sql_renders_as_compile_query_then_to_compiled_sql() -> None:
    """``to_sql()`` takes a shape's generated ``render`` (values in walk order) or the
    general path; either gives what ``compile_query`` + ``to_compiled_sql`` give."""
    queries = [
        select(run.c.id),  # no parameters
        select(run.c.id).where(eq(run.c.name, "a")),  # text: passes as is
        select(run.c.id).where(eq(run.c.status, Status.FAILED), in_array(run.c.name, ["a"])),
        select(run.c.id).where(eq(run.c.status, "FAILED")).limit(2),  # type: ignore[misc]
        select(run.c.id, sa.literal(7).label("n")).where(gte(run.c.cost, 1)),  # type: ignore[misc]
        select(run.c.id).where(in_array(run.c.name, ["a", None])),  # type: ignore[misc]
    ]
    for query in queries:
        for _ in range(2):  # compiled, then from the cache
            shape, values = qk_compile.compile_query(query)
            general = qk_compile.to_compiled_sql(shape, values)
            fast = qk_compile.to_sql(query)
            assert (shape.render is None) == (not shape.in_order)
            assert fast == general and fast.inline() == general.inline()
            assert type(fast.params) is tuple
    bad = select(run.c.id).where(in_array(run.c.name, ["a\x00"]))
    with pytest.raises(ValidationError, match=r"pipeline_run\.name"):
        bad.to_sql()


class Mimic(Condition):
    """A condition whose key is whatever it is given (a user's own Condition may be odd)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def _key(self, values: list[Any]) -> Any:
        return self.key

    def _core(self, binder: Any) -> Any:
        return sa.true()


def test_the_flat_key_counts_its_where_and_order_items() -> None:
    """WHERE and ORDER BY items sit in the select's key itself, after a mark: their count
    keeps a condition whose key looks like the ORDER BY mark and item from passing for
    them."""
    first = select(run.c.id).where(eq(run.c.name, "a")).order_by(run.c.id)
    second = select(run.c.id).where(
        eq(run.c.name, "a"), Mimic("order"), Mimic(asc(run.c.id)._key([]))
    )
    qk_compile.clear_cache()
    assert "ORDER BY" in first.to_sql().sql
    assert "ORDER BY" not in second.to_sql().sql
    assert qk_compile.cache_info()["misses"] == 2
