"""Golden SQL for every builder method and operator (no database needed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import func

from querykit import (
    and_,
    array_contained,
    array_contains,
    array_overlaps,
    asc,
    avg,
    between,
    count,
    count_distinct,
    delete,
    desc,
    eq,
    except_,
    excluded,
    exists,
    fn,
    gt,
    gte,
    ilike,
    in_array,
    insert,
    intersect,
    is_not_null,
    is_null,
    like,
    lt,
    lte,
    ne,
    not_,
    not_exists,
    not_ilike,
    not_in_array,
    not_like,
    or_,
    raw,
    select,
    sql,
    union,
    union_all,
    update,
)
from schema import Status, pipeline_run, pipeline_step
from tests.sqlassert import assert_sql
from tests.tables import everything, node

run, step = pipeline_run, pipeline_step


# -- select -------------------------------------------------------------------------


def test_select_columns() -> None:
    assert_sql(
        select(run.c.id, run.c.name), "SELECT pipeline_run.id, pipeline_run.name FROM pipeline_run"
    )


def test_select_whole_table_and_from() -> None:
    expected = "SELECT node.id, node.parent_id, node.label FROM node"
    assert_sql(select(node), expected)
    assert_sql(select().from_(node), expected)


def test_where_comparisons() -> None:
    q = select(run.c.id).where(
        eq(run.c.name, "a"),
        ne(run.c.name, "b"),
        gt(run.c.cost, Decimal("1")),
        gte(run.c.cost, 2),  # type: ignore[misc]
        lt(run.c.cost, 3.5),  # type: ignore[misc]
        lte(run.c.cost, Decimal("4")),
    )
    assert_sql(
        q,
        "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.name = %s "
        "AND pipeline_run.name != %s AND pipeline_run.cost > %s AND pipeline_run.cost >= %s "
        "AND pipeline_run.cost < %s AND pipeline_run.cost <= %s",
        ("a", "b", Decimal("1"), 2, 3.5, Decimal("4")),
    )


def test_column_to_column_and_value_on_the_left() -> None:
    assert_sql(
        select(run.c.id).where(eq(5, run.c.cost), lt(run.c.started_at, run.c.ended_at)),  # type: ignore[misc]
        "SELECT pipeline_run.id FROM pipeline_run WHERE %s = pipeline_run.cost "
        "AND pipeline_run.started_at < pipeline_run.ended_at",
        (5,),
    )


def test_enum_values_bind_as_labels() -> None:
    assert_sql(
        select(run.c.id).where(eq(run.c.status, Status.FAILED)),
        "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.status = %s",
        ("FAILED",),
    )


def test_and_or_not_and_operators() -> None:
    a, b, c = eq(run.c.name, "a"), eq(run.c.name, "b"), is_null(run.c.ended_at)
    expected = (
        "SELECT pipeline_run.id FROM pipeline_run WHERE (pipeline_run.name = %s "
        "OR pipeline_run.name = %s) AND pipeline_run.ended_at IS NOT NULL"
    )
    assert_sql(select(run.c.id).where(and_(or_(a, b), not_(c))), expected, ("a", "b"))
    assert_sql(select(run.c.id).where((a | b) & ~c), expected, ("a", "b"))


def test_none_conditions_are_dropped() -> None:
    status: Status | None = None
    q = select(run.c.id).where(
        and_(eq(run.c.status, status) if status else None, gte(run.c.cost, 1)),  # type: ignore[misc]
        None,
    )
    assert_sql(q, "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.cost >= %s", (1,))
    assert and_(None, None) is None and or_() is None and not_(None) is None
    assert_sql(select(run.c.id).where(and_(None)), "SELECT pipeline_run.id FROM pipeline_run")


def test_in_array_binds_one_array() -> None:
    assert_sql(
        select(run.c.id).where(in_array(run.c.name, ["a", "b", "c"])),
        "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.name = ANY (%s)",
        (["a", "b", "c"],),
    )
    assert_sql(
        select(run.c.id).where(not_in_array(run.c.name, ("a",))),
        "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.name != ALL (%s)",
        (["a"],),
    )
    short = select(run.c.id).where(in_array(run.c.name, ["a"])).to_sql().sql
    long = select(run.c.id).where(in_array(run.c.name, [str(i) for i in range(500)])).to_sql().sql
    assert short == long  # one SQL text, one prepared plan, any length


def test_in_array_of_enums_and_uuids_is_cast() -> None:
    assert_sql(
        select(run.c.id).where(in_array(run.c.status, [Status.FAILED, "RUNNING"])),  # type: ignore[misc]
        "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.status = ANY (CAST(%s AS status[]))",
        (["FAILED", "RUNNING"],),
    )


def test_empty_in_array_is_plain_false_or_true() -> None:
    assert_sql(
        select(run.c.id).where(in_array(run.c.name, [])),
        "SELECT pipeline_run.id FROM pipeline_run WHERE false",
    )
    assert_sql(
        select(run.c.id).where(not_in_array(run.c.name, [])),
        "SELECT pipeline_run.id FROM pipeline_run WHERE true",
    )


def test_null_between_like() -> None:
    q = select(run.c.id).where(
        is_null(run.c.ended_at),
        is_not_null(run.c.metadata),
        between(run.c.cost, 1, 2),  # type: ignore[misc]
        like(run.c.name, "a%"),
        ilike(run.c.name, "%B"),
        not_like(run.c.name, "x_"),
        not_ilike(run.c.name, "y"),
    )
    assert_sql(
        q,
        "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.ended_at IS NULL "
        "AND pipeline_run.metadata IS NOT NULL AND pipeline_run.cost BETWEEN %s AND %s "
        "AND pipeline_run.name LIKE %s AND pipeline_run.name ILIKE %s "
        "AND pipeline_run.name NOT LIKE %s AND pipeline_run.name NOT ILIKE %s",
        (1, 2, "a%", "%B", "x_", "y"),
    )


def test_exists_is_correlated() -> None:
    failed_steps = select(step.c.id).where(
        eq(step.c.run_id, run.c.id), eq(step.c.status, Status.FAILED)
    )
    assert_sql(
        select(run.c.id).where(exists(failed_steps)),
        "SELECT pipeline_run.id FROM pipeline_run WHERE EXISTS (SELECT pipeline_step.id "
        "FROM pipeline_step WHERE pipeline_step.run_id = pipeline_run.id "
        "AND pipeline_step.status = %s)",
        ("FAILED",),
    )
    assert_sql(
        select(run.c.id).where(not_exists(failed_steps)),
        "SELECT pipeline_run.id FROM pipeline_run WHERE NOT (EXISTS (SELECT pipeline_step.id "
        "FROM pipeline_step WHERE pipeline_step.run_id = pipeline_run.id "
        "AND pipeline_step.status = %s))",
        ("FAILED",),
    )


def test_array_operators() -> None:
    e = everything
    q = select(e.c.id).where(
        array_contains(e.c.tags, ["a"]),
        array_contained(e.c.tags, ["a", "b"]),
        array_overlaps(e.c.nums, [1]),
    )
    assert_sql(
        q,
        "SELECT everything.id FROM everything WHERE everything.tags @> CAST(%s AS TEXT[]) "
        "AND everything.tags <@ CAST(%s AS TEXT[]) AND everything.nums && CAST(%s AS INTEGER[])",
        (["a"], ["a", "b"], [1]),
    )


def test_aggregates_group_by_having() -> None:
    q = (
        select(
            run.c.name,
            fn.sum(run.c.cost),
            count(),
            avg(run.c.cost),
            fn.min(run.c.cost),
            fn.max(run.c.cost),
        )
        .where(eq(run.c.status, Status.COMPLETED))
        .group_by(run.c.name)
        .having(gt(count(), 1))
    )
    assert_sql(
        q,
        "SELECT pipeline_run.name, sum(pipeline_run.cost) AS sum_1, count(*) AS count_1, "
        "avg(pipeline_run.cost) AS avg_1, min(pipeline_run.cost) AS min_1, "
        "max(pipeline_run.cost) AS max_1 FROM pipeline_run WHERE pipeline_run.status = %s "
        "GROUP BY pipeline_run.name HAVING count(*) > %s",
        ("COMPLETED", 1),
    )
    assert_sql(
        select(count_distinct(step.c.model), count(step.c.model)),
        "SELECT count(DISTINCT pipeline_step.model) AS count_1, count(pipeline_step.model) AS count_2 "
        "FROM pipeline_step",
    )


def test_order_by_forms_limit_offset() -> None:
    q = (
        select(run.c.id)
        .order_by(run.c.name, desc(run.c.cost, nulls="last"), asc(run.c.ended_at, nulls="first"))
        .order_by("-started_at", "pipeline_run.id")
        .limit(10)
        .offset(20)
    )
    assert_sql(
        q,
        "SELECT pipeline_run.id FROM pipeline_run ORDER BY pipeline_run.name ASC, "
        "pipeline_run.cost DESC NULLS LAST, pipeline_run.ended_at ASC NULLS FIRST, "
        "pipeline_run.started_at DESC, pipeline_run.id ASC LIMIT %s OFFSET %s",
        (10, 20),
    )


def test_order_by_label_of_a_selected_expression() -> None:
    total = fn.sum(run.c.cost).label("total")
    assert_sql(
        select(run.c.name, total).group_by(run.c.name).order_by("-total"),
        "SELECT pipeline_run.name, sum(pipeline_run.cost) AS total FROM pipeline_run "
        "GROUP BY pipeline_run.name ORDER BY total DESC",
    )


def test_distinct_and_distinct_on() -> None:
    assert_sql(select(run.c.name).distinct(), "SELECT DISTINCT pipeline_run.name FROM pipeline_run")
    assert_sql(
        select(step.c.run_id, step.c.name)
        .distinct_on(step.c.run_id)
        .order_by(step.c.run_id, desc(step.c.created_at)),
        "SELECT DISTINCT ON (pipeline_step.run_id) pipeline_step.run_id, pipeline_step.name "
        "FROM pipeline_step ORDER BY pipeline_step.run_id ASC, pipeline_step.created_at DESC",
    )


def test_for_update_variants() -> None:
    base = select(run.c.id).where(eq(run.c.status, Status.PENDING)).limit(1)
    prefix = "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.status = %s LIMIT %s"
    assert_sql(base.for_update(), prefix + " FOR UPDATE", ("PENDING", 1))
    assert_sql(
        base.for_update(skip_locked=True), prefix + " FOR UPDATE SKIP LOCKED", ("PENDING", 1)
    )
    assert_sql(
        base.for_update(nowait=True, of=run),
        prefix + " FOR UPDATE OF pipeline_run NOWAIT",
        ("PENDING", 1),
    )
    assert_sql(base.for_update(read=True), prefix + " FOR SHARE", ("PENDING", 1))


def test_joins() -> None:
    on = eq(step.c.run_id, run.c.id)
    head = "SELECT pipeline_run.id, pipeline_step.name FROM pipeline_run "
    tail = " ON pipeline_step.run_id = pipeline_run.id"
    base = select(run.c.id, step.c.name).from_(run)
    assert_sql(base.join(step, on), head + "JOIN pipeline_step" + tail)
    assert_sql(base.inner_join(step, on), head + "JOIN pipeline_step" + tail)
    assert_sql(base.left_join(step, on), head + "LEFT OUTER JOIN pipeline_step" + tail)
    assert_sql(base.right_join(step, on), head + "RIGHT OUTER JOIN pipeline_step" + tail)
    assert_sql(base.full_join(step, on), head + "FULL OUTER JOIN pipeline_step" + tail)
    fk_join = head + "JOIN pipeline_step ON pipeline_run.id = pipeline_step.run_id"
    assert_sql(base.join(step), fk_join)  # without on=, the foreign key decides


def test_lateral_join() -> None:
    latest = (
        select(step.c.name)
        .where(eq(step.c.run_id, run.c.id))
        .order_by(desc(step.c.created_at))
        .limit(1)
        .lateral("latest")
    )
    q = select(run.c.id, latest.c.name).from_(run).left_join(latest, sa.true())
    assert_sql(
        q,
        "SELECT pipeline_run.id, latest.name FROM pipeline_run LEFT OUTER JOIN LATERAL "
        "(SELECT pipeline_step.name AS name FROM pipeline_step WHERE pipeline_step.run_id = "
        "pipeline_run.id ORDER BY pipeline_step.created_at DESC LIMIT %s) AS latest ON true",
        (1,),
    )


def test_set_operations() -> None:
    a = select(run.c.name).where(eq(run.c.status, Status.FAILED))
    b = select(run.c.name).where(eq(run.c.status, Status.RUNNING))
    body = (
        "SELECT pipeline_run.name FROM pipeline_run WHERE pipeline_run.status = %s {op} "
        "SELECT pipeline_run.name FROM pipeline_run WHERE pipeline_run.status = %s"
    )
    params = ("FAILED", "RUNNING")
    assert_sql(union(a, b), body.format(op="UNION"), params)
    assert_sql(union_all(a, b), body.format(op="UNION ALL"), params)
    assert_sql(intersect(a, b), body.format(op="INTERSECT"), params)
    assert_sql(except_(a, b), body.format(op="EXCEPT"), params)
    assert_sql(
        a.union_all(b).order_by("-name").limit(5),
        body.format(op="UNION ALL") + " ORDER BY name DESC LIMIT %s",
        (*params, 5),
    )


def test_cte_and_recursive_cte() -> None:
    recent = select(run.c.id, run.c.cost).where(gt(run.c.cost, 10)).cte("expensive")  # type: ignore[misc]
    assert_sql(
        select(recent.c.id).from_(recent),
        "WITH expensive AS (SELECT pipeline_run.id AS id, pipeline_run.cost AS cost FROM pipeline_run "
        "WHERE pipeline_run.cost > %s) SELECT expensive.id FROM expensive",
        (10,),
    )
    tree = (
        select(node.c.id, node.c.label).where(is_null(node.c.parent_id)).cte("tree", recursive=True)
    )
    child = select(node.c.id, node.c.label).from_(node).join(tree, eq(node.c.parent_id, tree.c.id))
    tree = tree.union_all(child)
    assert_sql(
        select(tree.c.label).from_(tree),
        "WITH RECURSIVE tree(id, label) AS (SELECT node.id AS id, node.label AS label FROM node "
        "WHERE node.parent_id IS NULL UNION ALL SELECT node.id AS id, node.label AS label FROM node "
        "JOIN tree ON node.parent_id = tree.id) SELECT tree.label FROM tree",
    )


def test_subqueries_and_window_functions() -> None:
    per_run = select(step.c.run_id, count().label("n")).group_by(step.c.run_id).subquery("per_run")
    assert_sql(
        select(run.c.id, per_run.c.n).from_(run).join(per_run, eq(per_run.c.run_id, run.c.id)),
        "SELECT pipeline_run.id, per_run.n FROM pipeline_run JOIN (SELECT pipeline_step.run_id AS "
        "run_id, count(*) AS n FROM pipeline_step GROUP BY pipeline_step.run_id) AS per_run "
        "ON per_run.run_id = pipeline_run.id",
    )
    steps = select(count()).where(eq(step.c.run_id, run.c.id)).scalar_subquery()
    assert_sql(
        select(run.c.id, steps.label("steps")),
        "SELECT pipeline_run.id, (SELECT count(*) AS count_1 FROM pipeline_step "
        "WHERE pipeline_step.run_id = pipeline_run.id) AS steps FROM pipeline_run",
    )
    rank = func.row_number().over(partition_by=step.c.run_id, order_by=step.c.created_at.desc())
    assert_sql(
        select(step.c.id, rank.label("rank")),
        "SELECT pipeline_step.id, row_number() OVER (PARTITION BY pipeline_step.run_id "
        "ORDER BY pipeline_step.created_at DESC) AS rank FROM pipeline_step",
    )


def test_core_expressions_are_accepted_and_cached_by_shape() -> None:
    q1 = select(run.c.id).where(run.c.name == "a", func.lower(run.c.name).like("x%"))
    q2 = select(run.c.id).where(run.c.name == "b", func.lower(run.c.name).like("y%"))
    expected = (
        "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.name = %s "
        "AND lower(pipeline_run.name) LIKE %s"
    )
    assert_sql(q1, expected, ("a", "x%"))
    assert_sql(q2, expected, ("b", "y%"))


def test_core_in_list_binds_one_array() -> None:
    """Core's ``col.in_([...])`` is sent as ``= ANY(%s)``: one shape for every list length."""
    from querykit.compile import cache_info, clear_cache

    clear_cache()
    for items in (["a", "b"], ["a", "b", "c"], [], ["z"] * 50):
        assert_sql(
            select(run.c.id).where(run.c.name.in_(items)),
            "SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.name = ANY (%s)",
            (items,),
        )
    assert_sql(
        select(run.c.id).where(run.c.status.not_in([Status.FAILED])),
        "SELECT pipeline_run.id FROM pipeline_run "
        "WHERE pipeline_run.status != ALL (CAST(%s AS status[]))",
        (["FAILED"],),
    )
    info = cache_info()
    assert (info["misses"], info["uncacheable"]) == (2, 0)


def test_core_tuple_in_keeps_cores_form() -> None:
    assert_sql(
        select(run.c.id).where(sa.tuple_(run.c.name, run.c.id).in_([("a", "1"), ("b", "2")])),
        "SELECT pipeline_run.id FROM pipeline_run "
        "WHERE (pipeline_run.name, pipeline_run.id) IN ((%s, %s), (%s, %s))",
        ("a", "1", "b", "2"),
    )


def test_statement_is_the_core_statement() -> None:
    q = select(run.c.id).where(eq(run.c.name, "a"))
    stmt = q.statement
    assert isinstance(stmt, sa.Select)
    assert stmt.compile().params == {"pipeline_run_name_1": "a"}  # named after its column


# -- insert / update / delete ------------------------------------------------------------


def test_insert_one_row_with_python_default_and_returning() -> None:
    q = insert(run).values(name="x", metadata={"topic": "AI"}).returning(run.c.id, run.c.status)
    compiled = q.to_sql()
    assert compiled.sql == (
        "INSERT INTO pipeline_run (id, name, metadata) VALUES (%s, %s, %s) "
        "RETURNING pipeline_run.id, pipeline_run.status"
    )
    generated_id, name, payload = compiled.params
    assert isinstance(generated_id, str) and len(generated_id) == 24  # cuid2
    assert name == "x" and payload.obj == '{"topic": "AI"}'


def test_insert_many_rows_fills_missing_with_default() -> None:
    q = insert(node).values([{"id": 1, "label": "a"}, {"id": 2, "label": "b", "parent_id": 1}])
    assert_sql(
        q,
        "INSERT INTO node (id, parent_id, label) VALUES (%s, DEFAULT, %s), (%s, %s, %s)",
        (1, "a", 2, 1, "b"),
    )


def test_insert_values_may_be_expressions() -> None:
    q = insert(node).values(
        id=sa.select(func.max(node.c.id) + 1).scalar_subquery(), label=func.upper("x")
    )
    assert_sql(
        q,
        "INSERT INTO node (id, label) VALUES ((SELECT max(node.id) + %s AS anon_1 FROM node), upper(%s))",
        (1, "x"),
    )


def test_on_conflict() -> None:
    base = insert(node).values(id=1, label="a")
    head = "INSERT INTO node (id, label) VALUES (%s, %s) "
    assert_sql(base.on_conflict_do_nothing(), head + "ON CONFLICT DO NOTHING", (1, "a"))
    assert_sql(
        base.on_conflict_do_nothing([node.c.id]), head + "ON CONFLICT (id) DO NOTHING", (1, "a")
    )
    assert_sql(
        base.on_conflict_do_update(
            ["id"],
            set_={"label": excluded(node).c.label},
            where=ne(node.c.label, excluded(node).c.label),
        ),
        head
        + "ON CONFLICT (id) DO UPDATE SET label = excluded.label WHERE node.label != excluded.label",
        (1, "a"),
    )
    assert_sql(
        base.on_conflict_do_update("node_pkey", set_={node.c.label: "z"}).returning(node.c.id),
        head + "ON CONFLICT ON CONSTRAINT node_pkey DO UPDATE SET label = %s RETURNING node.id",
        (1, "a", "z"),
    )


def test_insert_from_select() -> None:
    q = insert(node).from_select(
        select(node.c.id + 100, node.c.label).where(gt(node.c.id, 5)), ["id", "label"]
    )
    assert_sql(
        q,
        "INSERT INTO node (id, label) SELECT node.id + %s AS anon_1, node.label FROM node WHERE node.id > %s",
        (100, 5),
    )


def test_update() -> None:
    q = (
        update(run)
        .set(status=Status.COMPLETED)
        .set({run.c.ended_at: func.now()})
        .where(eq(run.c.id, "r1"))
        .returning(run.c.id, run.c.ended_at)
    )
    assert_sql(
        q,
        "UPDATE pipeline_run SET status=%s, ended_at=now() WHERE pipeline_run.id = %s "
        "RETURNING pipeline_run.id, pipeline_run.ended_at",
        ("COMPLETED", "r1"),
    )


def test_update_from() -> None:
    q = (
        update(run)
        .set(cost=run.c.cost + 1)
        .from_(step)
        .where(eq(step.c.run_id, run.c.id), gt(step.c.tokens, 1000))
    )
    assert_sql(
        q,
        "UPDATE pipeline_run SET cost=(pipeline_run.cost + %s) FROM pipeline_step "
        "WHERE pipeline_step.run_id = pipeline_run.id AND pipeline_step.tokens > %s",
        (1, 1000),
    )


def test_delete_where_using_returning() -> None:
    q = (
        delete(step)
        .using(run)
        .where(eq(step.c.run_id, run.c.id), eq(run.c.status, Status.FAILED))
        .returning(step.c.id)
    )
    assert_sql(
        q,
        "DELETE FROM pipeline_step USING pipeline_run WHERE pipeline_step.run_id = pipeline_run.id "
        "AND pipeline_run.status = %s RETURNING pipeline_step.id",
        ("FAILED",),
    )


# -- raw SQL ---------------------------------------------------------------------------


def test_raw_statement_binds_values_and_renders_expressions() -> None:
    q = raw(
        "SELECT name, sum(cost)::numeric(12,2) FROM :t WHERE started_at > :since AND name <> 'x:y' "
        "AND note ~ '\\:literal' GROUP BY 1",
        t=run,
        since=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    assert_sql(
        q,
        "SELECT name, sum(cost)::numeric(12,2) FROM pipeline_run WHERE started_at > %s "
        "AND name <> 'x:y' AND note ~ ':literal' GROUP BY 1",
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC),),
    )


def test_sql_fragment_inside_a_builder() -> None:
    q = select(run.c.id, sql("cost * :rate", rate=Decimal("1.2")).label("billed")).where(
        sql(":c > 0 AND name LIKE '50%'", c=run.c.cost)
    )
    assert_sql(
        q,
        "SELECT pipeline_run.id, cost * %s AS billed FROM pipeline_run "
        "WHERE pipeline_run.cost > 0 AND name LIKE '50%%'",
        (Decimal("1.2"),),
    )
