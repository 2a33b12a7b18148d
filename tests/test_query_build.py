"""Builder behaviour: immutability, composition, bad input, the compile cache."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import querykit.build.binding as qk_binding
import querykit.compile as qk_compile
import querykit.compile.shape as qk_shape
from querykit import (
    CompileError,
    SchemaError,
    ValidationError,
    columns_of,
    delete,
    eq,
    gt,
    in_array,
    insert,
    select,
    update,
)
from schema import Status, embedding, pipeline_run, pipeline_step
from tests.sqlassert import assert_sql
from tests.tables import everything, node

run, step = pipeline_run, pipeline_step


def snapshot(q: Any) -> dict[str, Any]:
    return {name: copy.copy(getattr(q, name)) for name in q._slot_names}


BUILDERS = [
    lambda q: q.where(eq(run.c.name, "x")),
    lambda q: q.from_(step),
    lambda q: q.join(step, eq(step.c.run_id, run.c.id)),
    lambda q: q.group_by(run.c.name),
    lambda q: q.having(gt(run.c.cost, 1)),  # type: ignore[misc]
    lambda q: q.order_by("-cost"),
    lambda q: q.limit(3),
    lambda q: q.offset(3),
    lambda q: q.distinct(),
    lambda q: q.distinct_on(run.c.name),
    lambda q: q.for_update(skip_locked=True),
    lambda q: q.with_settings({"work_mem": "64MB"}),
]


@pytest.mark.parametrize("build", BUILDERS)
def test_select_methods_return_a_new_query_and_leave_the_original(build: Any) -> None:
    original = select(run.c.id, run.c.name).from_(run).where(eq(run.c.status, Status.FAILED))
    before_state, before_sql = snapshot(original), original.to_sql()
    changed = build(original)
    assert changed is not original
    assert snapshot(original) == before_state
    assert original.to_sql() == before_sql
    assert changed.to_sql() != before_sql or changed.settings != original.settings


def test_dml_methods_return_new_queries() -> None:
    ins = insert(node).values(id=1, label="a")
    ins_sql = ins.to_sql().sql
    ins.on_conflict_do_nothing().returning(node.c.id)
    assert ins.to_sql().sql == ins_sql
    upd = update(node).set(label="b").all_rows()
    upd_sql = upd.to_sql().sql
    upd.where(eq(node.c.id, 1)).returning(node.c.id)
    upd.set(parent_id=2)
    assert upd.to_sql().sql == upd_sql
    dele = delete(node).all_rows()
    dele.where(eq(node.c.id, 1)).returning(node.c.id)
    assert dele.to_sql().sql == "DELETE FROM node"


def test_builders_cannot_grow_new_attributes() -> None:
    q = select(run.c.id)
    with pytest.raises(AttributeError):
        q.anything = 1  # type: ignore[attr-defined]


def test_one_shape_compiles_once() -> None:
    qk_compile.clear_cache()
    for name in ["a", "b", "c"]:
        select(run.c.id).where(eq(run.c.name, name), in_array(run.c.status, ["FAILED"])).limit(  # type: ignore[misc]
            5
        ).to_sql()
    info = qk_compile.cache_info()
    assert info["misses"] == 1 and info["hits"] == 2 and info["size"] == 1


def test_different_shapes_do_not_collide() -> None:
    a = select(run.c.id).where(eq(run.c.name, "a")).to_sql()
    b = select(run.c.id).where(eq(run.c.cost, 1)).to_sql()  # type: ignore[misc]
    c = select(run.c.id).where(eq(run.c.name, "a")).limit(1).to_sql()
    assert len({a.sql, b.sql, c.sql}) == 3


# -- bad input: a querykit error naming the column, before anything is sent -----------


def test_unknown_column_in_order_by() -> None:
    q = select(run.c.id).from_(run)
    with pytest.raises(SchemaError) as info:
        q.order_by("-creatd_at")
    assert info.value.column == "creatd_at"
    assert "started_at" in str(info.value)  # lists the valid names


@pytest.mark.parametrize(
    "spec",
    [
        "name; DROP TABLE x",
        "name desc",
        "lower(name)",
        "1",
        "",
        "pipeline_run.name.x",
        "--name",
        "na me",
    ],
)
def test_order_by_rejects_anything_but_a_column_name(spec: str) -> None:
    with pytest.raises(SchemaError):
        select(run.c.id).from_(run).order_by(spec)


def test_ambiguous_order_by_asks_for_the_table() -> None:
    q = select(run.c.id).from_(run).join(step, eq(step.c.run_id, run.c.id))
    with pytest.raises(SchemaError, match="ambiguous"):
        q.order_by("name")
    assert "ORDER BY pipeline_step.name" in q.order_by("pipeline_step.name").to_sql().sql


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        (step.c.tokens, "12", "expected an int"),
        (step.c.tokens, 2**40, "out of range for integer"),
        (step.c.tokens, True, "expected an int"),
        (run.c.name, 5, "expected a str"),
        (run.c.cost, "1.5", "expected a Decimal"),
        (run.c.status, "DONE", "expected one of PENDING, RUNNING, COMPLETED, FAILED"),
        (run.c.started_at, "2024-01-01", "expected a datetime"),
        (everything.c.uid, "not-a-uuid", "expected a UUID"),
        (everything.c.blob, "text", "expected bytes"),
        (everything.c.flag, 1, "expected a bool"),
        (everything.c.day, "today", "expected a date"),
        (run.c.name, "nul\x00byte", "NUL"),
    ],
)
def test_wrong_value_type_names_the_column(column: Any, value: Any, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        select(column).where(eq(column, value)).to_sql()
    label = f"{column.table.name}.{column.name}"
    assert info.value.column == label
    assert str(info.value).startswith(label) and expected in str(info.value)


def test_wrong_values_in_insert_and_update_name_the_column() -> None:
    with pytest.raises(ValidationError, match=r"^pipeline_step\.tokens: expected an int"):
        insert(step).values(run_id="r", name="n", tokens="many").to_sql()
    with pytest.raises(ValidationError, match=r"^pipeline_run\.cost"):
        update(run).set(cost="free").where(eq(run.c.id, "r")).to_sql()
    with pytest.raises(ValidationError, match=r"embedding\.embedding: expected 384 dimensions"):
        insert(embedding).values(content="c", embedding=[1.0, 2.0]).to_sql()


def test_unknown_columns_in_dml_and_column_lists() -> None:
    with pytest.raises(
        SchemaError, match="pipeline_run has no column 'nmae'; valid columns: id, name"
    ):
        insert(run).values(nmae="x")
    with pytest.raises(SchemaError, match="no column 'nmae'"):
        update(run).set(nmae="x")
    with pytest.raises(SchemaError, match="no column 'passwd'"):
        columns_of(run, "id", "passwd")
    assert [c.name for c in columns_of(run, "id", "name")] == ["id", "name"]
    with pytest.raises(SchemaError, match="is not a column of pipeline_run"):
        update(run).set({step.c.name: "x"})


def test_column_from_a_table_not_in_the_query() -> None:
    q = select(run.c.id).from_(run).where(eq(step.c.name, "x"))
    with pytest.raises(SchemaError) as info:
        q.to_sql()
    assert info.value.column == "pipeline_step.name"
    assert "FROM pipeline_run" in str(info.value)
    with pytest.raises(SchemaError, match=r"pipeline_step\.tokens"):
        select(run.c.id).order_by(step.c.tokens).to_sql()
    with pytest.raises(SchemaError, match=r"pipeline_run\.status"):
        delete(step).where(eq(run.c.status, Status.FAILED)).to_sql()
    # ...and fine once the table is part of the query
    delete(step).using(run).where(eq(run.c.status, Status.FAILED)).to_sql()


def test_comparing_with_none_points_to_is_null() -> None:
    with pytest.raises(CompileError, match="is_null"):
        eq(run.c.ended_at, None)


def test_limit_must_be_a_non_negative_int() -> None:
    for bad in (-1, "10", 1.5, True):
        with pytest.raises(CompileError, match="limit"):
            select(run.c.id).limit(bad)  # type: ignore[arg-type]


def test_conditions_have_no_truth_value() -> None:
    with pytest.raises(TypeError, match="no truth value"):
        bool(eq(run.c.name, "x"))


def test_settings_are_validated() -> None:
    with pytest.raises(CompileError, match="not a valid PostgreSQL setting name"):
        select(run.c.id).with_settings({"work_mem; RESET ALL": "1"})
    q = select(run.c.id).with_settings({"hnsw.ef_search": 100, "enable_seqscan": False})
    assert q.to_sql().settings == (("hnsw.ef_search", "100"), ("enable_seqscan", "off"))


def test_values_are_checked_but_not_altered() -> None:
    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    params = (
        select(run.c.id)
        .where(eq(run.c.started_at, when), eq(run.c.cost, Decimal("0.1")))
        .to_sql()
        .params
    )
    assert params == (when, Decimal("0.1"))


def test_generated_overloads_are_up_to_date() -> None:
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parent.parent / "tools" / "gen_overloads.py"
    result = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the compile cache's fast paths agree with the general rules ---------------------------


def test_tables_key_as_cores_own_cache_key() -> None:
    values: list[Any] = []
    assert qk_binding.operand_key(run, values) == run._generate_cache_key().key  # type: ignore[union-attr]
    assert values == []


def test_select_lists_of_plain_columns_key_as_each_column_would() -> None:
    from querykit.build.query import _keys

    plain = (run.c.id, run.c.name)
    assert _keys(plain, []) == tuple(qk_binding.operand_key(c, []) for c in plain)
    values: list[Any] = []
    mixed = _keys((run.c.id, run.c.cost + 1), values)
    assert mixed != (run.c.id, run.c.cost + 1) and values == [1]


def test_one_condition_keys_as_a_list_of_one_would() -> None:
    one, two = eq(run.c.name, "a"), gt(run.c.cost, 1)  # type: ignore[misc]
    assert select(run.c.id).where(one).where(two).to_sql() == (
        select(run.c.id).where(one, two).to_sql()
    )
    assert select(run.c.id).where(one).to_sql().sql != select(run.c.id).where(two).to_sql().sql


def test_generated_params_follow_the_general_rule() -> None:
    import sqlalchemy as sa

    from querykit import codecs

    slots = (2, -1, 0, 1, 0, 3, 4)  # out of order, a constant, a value used twice
    adapters = (
        codecs.adapter_for(sa.Integer()),
        codecs.adapter_for(sa.Text()),
        None,
        codecs.adapter_for(sa.Text()),
        codecs.adapter_for(sa.SmallInteger()),
        codecs.adapter_for(sa.Float()),
        codecs.adapter_for(sa.Boolean()),
    )
    labels = ("t.a", "t.b", "t.c", "t.d", "t.e", "t.f", "t.g")
    constants = ("fixed",)
    params = qk_shape.params_function(slots, adapters, labels, constants, False)
    for values in (
        [1, None, 7, 0.5, True],
        [1, "x", 7, 2, False],  # an int for a float passes, unchanged
        [True, "x", 7, 0.5, True],  # a bool is no int
        [1, 5, 7, 0.5, True],
        [2**40, "x", 7, 0.5, True],  # out of range for the integer, then the smallint
        [40000, "x", 7, 0.5, True],  # fits the integer, not the smallint
        [1, "x\x00", 7, 0.5, True],  # no NUL in text
        [1, "x", 7, "0.5", True],
        [1, "x", 7, 0.5, 1],
        [1, Status.FAILED, 7, Decimal("0.5"), None],  # a str subclass is text too
    ):
        try:
            expected: Any = qk_shape.adapt_params(values, slots, adapters, labels, constants)
        except ValidationError as exc:
            with pytest.raises(ValidationError) as info:
                params(values)
            assert (str(info.value), info.value.column) == (str(exc), exc.column)
        else:
            assert params(values) == expected
    same = qk_shape.params_function((0, 1), (None, None), ("a", "b"), (), True)
    values = [1, 2]  # type: ignore[assignment]
    assert same(values) is values


# -- update/delete without where -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "verb"),
    [
        (lambda: update(run).set(name="x"), "update"),
        (lambda: update(run).set(name="x").where(None), "update"),  # a filter that was dropped
        (lambda: update(run).set(name="x").returning(run.c.id), "update"),
        (lambda: delete(step), "delete"),
        (lambda: delete(step).using(run), "delete"),
        (lambda: delete(step).where(None, None).returning(step.c.id), "delete"),
    ],
)
def test_update_and_delete_without_where_are_refused(query: Any, verb: str) -> None:
    q = query()
    table = q._table.name
    for render in (lambda: q.to_sql(), lambda: q.statement, lambda: q.cte("c")):
        with pytest.raises(CompileError, match=rf"{verb} {table} has no where\(\).*all_rows\(\)"):
            render()  # type: ignore[no-untyped-call]


def test_all_rows_compiles_as_core_does() -> None:
    """all_rows() adds nothing to the SQL; where() still filters when both are given."""
    assert_sql(update(run).set(name="x").all_rows(), "UPDATE pipeline_run SET name=%s", ("x",))
    assert_sql(
        delete(step).all_rows().returning(step.c.id),
        "DELETE FROM pipeline_step RETURNING pipeline_step.id",
    )
    assert_sql(
        delete(step).all_rows().where(eq(step.c.name, "s")),
        "DELETE FROM pipeline_step WHERE pipeline_step.name = %s",
        ("s",),
    )


def test_a_compiled_all_rows_shape_does_not_let_a_filterless_one_through() -> None:
    qk_compile.clear_cache()
    assert update(run).set(name="x").all_rows().to_sql().sql.startswith("UPDATE pipeline_run")
    with pytest.raises(CompileError, match="has no where"):
        update(run).set(name="x").to_sql()
    delete(run).all_rows().to_sql()
    with pytest.raises(CompileError, match="has no where"):
        delete(run).to_sql()
