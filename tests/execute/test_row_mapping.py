"""One ``as_=`` mapper for flat and nested results: the same classes through both, on PostgreSQL.

Each family of class that ``as_=`` takes (dataclass, NamedTuple, ``typing`` and
``typing_extensions`` TypedDict, pydantic model) maps a flat ``select`` and a nested
``find_many`` (both strategies), with a nested class for the relation. The expected
results are built from hand-written SQL run by psycopg, not by querykit. The errors are
the same ``MappingError`` (qk-E012) whichever path meets the class.

Every test runs twice, on ``Database`` and on ``AsyncDatabase`` (see conftest).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, NamedTuple

import psycopg
import pytest
import typing_extensions
from pydantic import BaseModel, Field

from querykit import MappingError, find_many, include, select
from querykit.build.rowclass import row_fields
from schema import Status, pipeline_run, pipeline_step

run, step = pipeline_run, pipeline_step


# -- one family of classes per kind as_= takes; each run class nests its step class ---------


@dataclasses.dataclass
class StepDC:
    name: str
    tokens: int


@dataclasses.dataclass
class RunDC:  # fields in another order than the columns; `steps` has a default
    status: Status
    name: str
    steps: list[StepDC] = dataclasses.field(default_factory=list)


class StepNT(NamedTuple):
    name: str
    tokens: int


class RunNT(NamedTuple):
    name: str
    status: Status
    steps: list[StepNT] = []  # noqa: RUF012 (a NamedTuple default, never mutated)


class StepTD(typing.TypedDict):
    name: str
    tokens: int


class RunTDColumns(typing.TypedDict):
    name: str
    status: Status


class RunTD(RunTDColumns, total=False):  # `steps` is not required
    steps: list[StepTD]


class StepTX(typing_extensions.TypedDict):
    name: str
    tokens: int


class RunTXColumns(typing_extensions.TypedDict):
    name: str
    status: Status


class RunTX(RunTXColumns, total=False):  # `steps` is not required
    steps: list[StepTX]


class StepPM(BaseModel):
    name: str
    tokens: int


class RunPM(BaseModel):
    name: str
    status: Status
    steps: list[StepPM] = []


STRATEGIES: tuple[typing.Literal["json", "batched"], ...] = ("json", "batched")

FAMILIES = {
    "dataclass": (RunDC, StepDC),
    "NamedTuple": (RunNT, StepNT),
    "typing.TypedDict": (RunTD, StepTD),
    "typing_extensions.TypedDict": (RunTX, StepTX),
    "pydantic": (RunPM, StepPM),
}


def make(cls: Any, data: dict[str, Any]) -> Any:
    """What ``as_=cls`` should give for ``data``: a dict for a TypedDict, else an instance."""
    fields = row_fields(cls)
    assert fields is not None
    return dict(data) if fields.kind == "dict" else cls(**data)


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pipeline_run (id, name, status) VALUES "
            "('r1', 'ingest', 'FAILED'), ('r2', 'embed', 'COMPLETED'), ('r3', 'idle', 'PENDING')"
        )
        conn.execute(
            "INSERT INTO pipeline_step (id, run_id, name, tokens) VALUES "
            "('s1', 'r1', 'read', 10), ('s2', 'r1', 'split', 20), ('s3', 'r2', 'call', 30)"
        )


def oracle(url: str) -> list[tuple[str, Status, list[tuple[str, int]]]]:
    """Runs by name, each with its steps by name: hand-written SQL, read by psycopg."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT r.name, r.status::text, s.name, s.tokens FROM pipeline_run r "
            "LEFT JOIN pipeline_step s ON s.run_id = r.id ORDER BY r.name, s.name"
        ).fetchall()
    out: dict[str, tuple[str, Status, list[tuple[str, int]]]] = {}
    for run_name, status, step_name, tokens in rows:
        entry = out.setdefault(run_name, (run_name, Status(status), []))
        if step_name is not None:
            entry[2].append((step_name, tokens))
    return list(out.values())


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_the_same_classes_map_flat_and_nested_rows(db: Any, url: str, family: str) -> None:
    run_cls, step_cls = FAMILIES[family]
    seed(url)
    expected = oracle(url)

    flat_runs = await db.all(select(run.c.name, run.c.status).order_by(run.c.name), as_=run_cls)
    assert flat_runs == [make(run_cls, {"name": n, "status": s}) for n, s, _ in expected]
    for strategy in STRATEGIES:  # the same columns nested: `steps` keeps its default
        alone = find_many(
            run, columns=["name", "status"], order_by=["name"], strategy=strategy, as_=run_cls
        )
        assert await db.all(alone) == flat_runs, strategy
    flat_steps = await db.all(
        select(step.c.name, step.c.tokens).order_by(step.c.name), as_=step_cls
    )
    all_steps = sorted(st for _, _, steps in expected for st in steps)
    assert flat_steps == [make(step_cls, {"name": n, "tokens": t}) for n, t in all_steps]

    want = [
        make(
            run_cls,
            {
                "name": n,
                "status": s,
                "steps": [make(step_cls, {"name": sn, "tokens": t}) for sn, t in steps],
            },
        )
        for n, s, steps in expected
    ]
    for strategy in STRATEGIES:
        nested = find_many(
            run,
            columns=["name", "status"],
            order_by=["name"],
            with_={"steps": include(columns=["name", "tokens"], order_by=["name"])},
            strategy=strategy,
            as_=run_cls,
        )
        got = await db.all(nested)
        assert got == want, strategy
        if row_fields(run_cls).kind != "dict":  # type: ignore[union-attr]
            assert all(type(r) is run_cls for r in got)
            assert all(type(s) is step_cls for r in got for s in r.steps)


class Plain:
    name: str


@pytest.mark.parametrize("cls", [dict, Plain])
async def test_a_class_as_does_not_take_is_refused_on_both_paths(db: Any, cls: type) -> None:
    message = "expected a dataclass, a NamedTuple, a TypedDict or a pydantic model"
    with pytest.raises(MappingError, match=message) as flat:
        await db.all(select(run.c.name), as_=cls)
    with pytest.raises(MappingError, match=message) as nested:
        find_many(run, columns=["name"], as_=cls)
    assert flat.value.code == nested.value.code == "qk-E012"


@dataclasses.dataclass
class NeedsCost:
    name: str
    cost: float


async def test_a_required_field_without_a_column_is_refused_on_both_paths(db: Any) -> None:
    with pytest.raises(MappingError, match="no column for field cost"):
        await db.all(select(run.c.name), as_=NeedsCost)
    with pytest.raises(MappingError, match="nothing selected for cost"):
        find_many(run, columns=["name"], as_=NeedsCost)


class ShortName(BaseModel):
    name: Annotated[str, Field(max_length=4)]
    tokens: int


class RunShortSteps(BaseModel):
    name: str
    steps: list[ShortName]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_row_the_model_refuses_is_a_mapping_error_on_both_paths(
    db: Any, url: str, strategy: typing.Literal["json", "batched"]
) -> None:
    seed(url)  # "split" is longer than ShortName allows
    with pytest.raises(MappingError, match="a row does not fit ShortName"):
        await db.all(select(step.c.name, step.c.tokens), as_=ShortName)
    nested = find_many(
        run,
        columns=["name"],
        with_={"steps": include(columns=["name", "tokens"])},
        strategy=strategy,
        as_=RunShortSteps,
    )
    with pytest.raises(MappingError, match="a row does not fit ShortName"):
        await db.all(nested)
