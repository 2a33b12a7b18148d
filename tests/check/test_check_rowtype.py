"""as_= classes checked at build time: a hand-written row type cannot lie about a query."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict

import pytest

import querykit
from querykit import find_many, include, select
from querykit.build.rowtype import problem
from querykit.errors import MappingError
from querykit.migrate import up
from schema import RunMetadata, Status, pipeline_run
from tests.check.conftest import ROOT


@pytest.mark.parametrize(
    ("annotation", "actual", "null", "bad"),
    [
        (Decimal, Decimal, False, False),
        (float, Decimal, False, True),
        (Decimal, float, False, True),
        (float, int, False, False),  # PEP 484's numeric tower
        (int, float, False, True),
        (str, Status, False, True),  # Status is a plain Enum
        (Status, Status, False, False),
        (Any, float, True, False),
        (str, str, True, True),  # NULL into a non-optional field
        (str | None, str, True, False),
        (RunMetadata | None, RunMetadata, True, False),
        (dict[str, Any], RunMetadata, False, False),
        (list[str], list, False, False),
        (dt.datetime, dt.date, False, True),
        (dt.date, dt.datetime, False, False),  # a datetime is a date
        (str, None, None, False),  # unknown: no verdict
    ],
)
def test_problem(annotation: Any, actual: Any, null: bool | None, bad: bool) -> None:
    assert (problem(annotation, actual, may_be_null=null) is not None) is bad


@dataclasses.dataclass
class RunCostFloat:
    name: str
    cost: float  # the column is Column[Decimal]


class RunCostTD(TypedDict):
    name: str
    cost: Decimal


class RunEndedNT(NamedTuple):
    name: str
    ended_at: dt.datetime  # nullable column, non-optional field


@dataclasses.dataclass
class StepRow:
    name: str
    tokens: int


@dataclasses.dataclass
class RunWithSteps:
    name: str
    steps: list[StepRow]


@dataclasses.dataclass
class StepBadTokens:
    name: str
    tokens: str


@dataclasses.dataclass
class RunWithBadSteps:
    name: str
    steps: list[StepBadTokens]


@dataclasses.dataclass
class RunEndedDC:
    name: str
    ended_at: dt.datetime


def test_a_nested_as_class_is_checked_at_every_level_when_the_query_is_built() -> None:
    steps = {"steps": include(columns=["name", "tokens"])}
    find_many(pipeline_run, columns=["name"], with_=steps, as_=RunWithSteps)  # fits
    with pytest.raises(
        MappingError, match=r"StepBadTokens .* field tokens is str, but the column gives int"
    ):
        find_many(pipeline_run, columns=["name"], with_=steps, as_=RunWithBadSteps)
    # nullability is not judged at build time: a WHERE may filter the NULLs out
    find_many(
        pipeline_run,
        columns=["name", "ended_at"],
        where=pipeline_run.c.ended_at.is_not(None),
        as_=RunEndedDC,
    )


def test_a_flat_as_class_is_checked_before_any_row_is_read(database_url: str) -> None:
    from querykit import load_settings

    settings = load_settings(
        cwd=ROOT, env={}, database_url=database_url, migrations=ROOT / "migrations/sql"
    )
    up(settings)
    with querykit.connect(database_url) as db:
        db.execute(querykit.insert(pipeline_run).values(name="a", cost=Decimal("2.5")))
        q = select(pipeline_run.c.name, pipeline_run.c.cost)
        assert db.all(q, as_=RunCostTD) == [{"name": "a", "cost": Decimal("2.500000")}]
        with pytest.raises(
            MappingError,
            match=r"as_=RunCostFloat .* field cost is float, but the column gives Decimal",
        ):
            db.all(q, as_=RunCostFloat)
        with pytest.raises(MappingError, match="field cost is float"):
            db.first(q.where(querykit.eq(pipeline_run.c.name, "nobody")), as_=RunCostFloat)
        # a NamedTuple too; a label renames the column the field is matched with
        relabelled = select(pipeline_run.c.name, pipeline_run.c.status.label("ended_at"))
        with pytest.raises(
            MappingError, match="field ended_at is datetime, but the column gives Status"
        ):
            db.all(relabelled, as_=RunEndedNT)
