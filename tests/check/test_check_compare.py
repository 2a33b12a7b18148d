"""compare(): a statement's promises against a description, with no database (the --offline path)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from querykit import select
from querykit.check import DescribedColumn, Description, Statement, compare, compile_statements
from querykit.named import NamedQuery
from schema import pipeline_run as run

COLUMNS = {"public.pipeline_run.name": run.c.name, "public.pipeline_run.cost": run.c.cost}


def statement(declared: tuple[object, ...] | None = None) -> Statement:
    q = NamedQuery("m", "q", select(run.c.name, run.c.cost), "", "")  # type: ignore[arg-type]
    return dataclasses.replace(compile_statements([q])[0], declared=declared)


def described(cost_type: str, cost_null: bool | None) -> Description:
    return Description(
        (
            DescribedColumn("name", "text", "text", "b", False, "public.pipeline_run.name"),
            DescribedColumn(
                "cost", cost_type, cost_type, "b", cost_null, "public.pipeline_run.cost"
            ),
        )
    )


def test_what_the_schema_promises() -> None:
    assert compare(statement(), described("numeric", False), COLUMNS, "lock") == []
    [found] = compare(statement(), described("float8", False), COLUMNS, "lock")
    assert (found.kind, found.message) == (
        "type",
        "column cost (pipeline_run.cost, float8): promised Decimal, but the column gives float",
    )
    [found] = compare(statement(), described("numeric", True), COLUMNS, "lock")
    assert found.kind == "null" and "Decimal | None" in found.message


def test_a_declared_row_type_is_the_promise() -> None:
    fits = statement((str, Decimal | None))
    assert compare(fits, described("numeric", True), COLUMNS, "lock") == []
    [found] = compare(statement((str, float)), described("numeric", False), COLUMNS, "lock")
    assert found.kind == "type" and "promised float, but the column gives Decimal" in found.message
    [found] = compare(statement((str,)), described("numeric", False), COLUMNS, "lock")
    assert (found.kind, found.message) == (
        "shape",
        "declared 1 column(s), the statement returns 2 (name, cost)",
    )
