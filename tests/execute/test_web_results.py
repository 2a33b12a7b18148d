"""Results web frameworks can serve (issue 21 §1): ``jsonable``, pydantic schemas, ``as_=`` models.

The oracle for the JSON forms is pydantic itself: it parses what ``jsonable``
wrote back into the values the database returned, and FastAPI's
``jsonable_encoder`` gives the same JSON for a model of those rows.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import subprocess
import sys
import typing
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import typing_extensions
from fastapi.encoders import jsonable_encoder
from pgvector import Bit, HalfVector, SparseVector, Vector
from pydantic import BaseModel, ConfigDict, TypeAdapter

from querykit import MappingError, eq, find_many, include, insert, jsonable, select
from querykit.columns import bit, halfvec, sparsevec, vector
from schema import Status, pipeline_run, pipeline_step

from .conftest import schema_ddl


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


meta = sa.MetaData()
web = sa.Table(
    "web_values",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("vec", vector(3)),
    sa.Column("half", halfvec(2)),
    sa.Column("sparse", sparsevec(5)),
    sa.Column("bits", bit(4)),
    sa.Column("price", sa.Numeric(20, 10)),
    sa.Column("ratio", sa.Double),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("day", sa.Date),
    sa.Column("clock", sa.Time),
    sa.Column("span", sa.Interval),
    sa.Column("uid", sa.Uuid),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("mood", sa.Enum(Mood, name="web_mood")),
    sa.Column("tags", sa.ARRAY(sa.Text)),
)


class WebRow(BaseModel):
    # bytea's JSON form is base64 in querykit.jsonable; pydantic's default is UTF-8
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    id: int
    vec: Vector
    half: HalfVector
    sparse: SparseVector
    bits: Bit
    price: Decimal
    ratio: float | None
    at: dt.datetime
    day: dt.date
    clock: dt.time
    span: dt.timedelta
    uid: uuid.UUID
    blob: bytes
    mood: Mood
    tags: list[str]


VALUES: dict[str, Any] = {
    "id": 1,
    "vec": [0.5, -1.25, 3.0],
    "half": [0.5, 2.0],
    "sparse": SparseVector({0: 1.5, 3: -2.0}, 5),
    "bits": "1010",
    "price": Decimal("1234567890.0123456789"),  # a float would round it
    "ratio": float("nan"),
    "at": dt.datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=dt.UTC),
    "day": dt.date(2026, 2, 28),
    "clock": dt.time(23, 59, 58, 1),
    "span": dt.timedelta(days=1, hours=2, seconds=3, microseconds=400000),
    "uid": uuid.UUID("0190f1d2-0000-7000-8000-000000000001"),
    "blob": b"\x00\xffbinary",
    "mood": Mood.SAD,
    "tags": ["a", "ü"],
}


@pytest.fixture
async def wdb(db: Any, url: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(meta):
            conn.execute(statement)
    await db.execute(insert(web).values(VALUES))
    return db


async def test_jsonable_rows_go_through_json_dumps_and_parse_back_exactly(wdb: Any) -> None:
    row = await wdb.one(select(web))
    text = json.dumps(jsonable([row]))  # plain json.dumps, no default=
    (back,) = json.loads(text)
    assert back[6] is None  # NaN has no JSON form: null
    as_dict = dict(zip(web.c.keys(), back, strict=True))
    as_dict["ratio"] = None
    parsed = WebRow.model_validate_json(json.dumps(as_dict))  # pydantic parses our forms
    expected = dict(zip(web.c.keys(), row, strict=True)) | {"ratio": None}
    assert parsed.model_dump() == WebRow(**expected).model_dump()
    assert parsed.price == VALUES["price"] and parsed.at == VALUES["at"]
    assert parsed.blob == VALUES["blob"] and parsed.vec == Vector(VALUES["vec"])
    assert back[5] == "1234567890.0123456789" and back[4] == "1010"
    assert back[3] == {"dimensions": 5, "indices": [0, 3], "values": [1.5, -2.0]}


async def test_as_a_pydantic_model_serialises_through_fastapi_and_pydantic(wdb: Any) -> None:
    (model,) = await wdb.all(select(web).where(eq(web.c.id, 1)), as_=WebRow)
    assert isinstance(model, WebRow) and isinstance(model.vec, Vector)
    assert model.mood is Mood.SAD and model.price == VALUES["price"]
    encoded = jsonable_encoder(model)  # FastAPI's encoder: model_dump(mode="json")
    assert encoded["vec"] == [0.5, -1.25, 3.0] and encoded["bits"] == "1010"
    as_json = json.loads(model.model_dump_json())
    assert as_json["ratio"] is None  # NaN: null in JSON, as querykit.jsonable writes it

    def without_nan(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "ratio"}

    assert without_nan(encoded) == without_nan(as_json)
    assert without_nan(jsonable(model.model_dump())) == without_nan(as_json)  # the same forms


async def test_a_row_that_does_not_fit_the_model_is_a_mapping_error(wdb: Any) -> None:
    class Narrow(BaseModel):
        id: int
        price: int  # 1234567890.0123456789 is not an int

    # The field types are checked against the column types before any row is read
    # (build/rowtype.py); a row that got past them would be refused by the model.
    with pytest.raises(
        MappingError, match=r"(?s)Narrow.*price is int, but the column gives Decimal"
    ):
        await wdb.all(select(web.c.id, web.c.price), as_=Narrow)
    with pytest.raises(MappingError, match=r"no column for field price"):
        await wdb.all(select(web.c.id), as_=Narrow)


class PlainTD(typing.TypedDict):
    id: int
    mood: Mood


class ExtTD(typing_extensions.TypedDict):  # what pydantic needs on Python 3.11
    id: int
    mood: Mood


@pytest.mark.parametrize("cls", [PlainTD, ExtTD])
async def test_as_takes_typing_and_typing_extensions_typeddicts(wdb: Any, cls: Any) -> None:
    rows = await wdb.all(select(web.c.id, web.c.mood), as_=cls)
    assert rows == [{"id": 1, "mood": Mood.SAD}]
    if cls is ExtTD or sys.version_info >= (3, 12):
        assert TypeAdapter(list[cls]).dump_python(rows, mode="json") == [{"id": 1, "mood": "sad"}]


class StepModel(BaseModel):
    name: str
    tokens: int


class RunModel(BaseModel):
    id: str
    cost: Decimal
    status: Status
    steps: list[StepModel]


async def test_nested_results_map_to_pydantic_models(db: Any) -> None:
    run_id = await db.scalar(
        insert(pipeline_run)
        .values(name="r", cost=Decimal("0.125000"), status=Status.RUNNING)
        .returning(pipeline_run.c.id)
    )
    await db.execute(
        insert(pipeline_step).values(
            [{"run_id": run_id, "name": f"s{i}", "tokens": i} for i in range(2)]
        )
    )
    q = find_many(
        pipeline_run,
        columns=["id", "cost", "status"],
        with_={"steps": include(columns=["name", "tokens"], order_by=["name"])},
        as_=RunModel,
    )
    (found,) = await db.all(q)
    assert found == RunModel(
        id=run_id,
        cost=Decimal("0.125"),
        status=Status.RUNNING,
        steps=[StepModel(name="s0", tokens=0), StepModel(name="s1", tokens=1)],
    )
    assert jsonable_encoder(found)["cost"] == "0.125000"
    assert jsonable(await db.all(find_many(pipeline_run, columns=["cost"]))) == [
        {"cost": "0.125000"}
    ]


def test_jsonable_names_what_it_cannot_convert() -> None:
    with pytest.raises(TypeError, match=r"no JSON form for a builtins.object"):
        jsonable([{"x": object()}])


def test_querykit_never_imports_pydantic_itself() -> None:
    code = """
import sys
import json
from decimal import Decimal
from pgvector import Vector
import querykit
from querykit import jsonable, select
import schema
from querykit.execute import rows  # the as_= mapper
select(schema.embedding).to_sql()
print(json.dumps(jsonable([(Vector([1.0]), Decimal("1.5"))])))
assert "pydantic" not in sys.modules and "pydantic_core" not in sys.modules, "imported"
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[[[1.0], "1.5"]]'
