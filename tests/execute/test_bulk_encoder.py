"""The generated COPY encoder's fast paths take exactly what the checked path takes.

``insert_many`` of an iterator writes the rows after a uniform chunk straight from
the input (``BulkJob.stream_rows``), through generated code that inlines the
adapters' "unchanged" tests (an in-range int, an ASCII str without NUL) and calls
the adapters for the rest. The checked path (``BulkJob._encode_row``: one adapter
call per value, the errors that name row and column) is the reference: a row the
fast path takes must come out as the checked path makes it, and a row it stops at
must be one the checked path refuses. No database: these are the values COPY would
be given.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgvector import Vector
from sqlalchemy.dialects import postgresql

from querykit import ValidationError, vector
from querykit.execute import bulk
from querykit.execute.bulk import BulkJob

STREAM_CHUNK = 5


@pytest.fixture(autouse=True, scope="module")
def small_chunks() -> Iterator[None]:
    """Chunks of 5 rows: the same code paths as 1000, at a cost a property test can pay."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bulk, "STREAM_CHUNK", STREAM_CHUNK)
        yield


table = sa.Table(
    "encoded",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("small", sa.SmallInteger),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("code", sa.String(4)),
    sa.Column("price", sa.Numeric(6, 2)),
    sa.Column("score", sa.Double),
    sa.Column("doc", postgresql.JSONB),
    sa.Column("emb", vector(3)),
)
GOOD: dict[str, Any] = {
    "id": 1,
    "small": 2,
    "body": "b",
    "code": "c",
    "price": Decimal("1.50"),
    "score": 0.5,
    "doc": {"k": [1]},
    "emb": Vector([1.0, 2.0, 3.0]),
}

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([2**15 - 1, 2**15, -(2**15), -(2**15) - 1, 2**31 - 1, 2**31, -(2**31) - 1]),
    st.text(max_size=6),
    st.sampled_from(["a\x00", "é", "\ud800", "abcde", "abcd"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, places=3, min_value=-99999, max_value=99999),
    st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=3),
    st.lists(st.floats(width=32), min_size=2, max_size=4),
    st.builds(
        Vector, st.lists(st.floats(width=32, min_value=-1e3, max_value=1e3), min_size=3, max_size=3)
    ),
)
rows = st.fixed_dictionaries({name: values for name in GOOD})


def streamed(after: list[dict[str, Any]]) -> BulkJob:
    """A job whose first (uniform) chunk is good rows, with ``after`` still in the input."""
    job = BulkJob(table, itertools.chain(itertools.repeat(GOOD, STREAM_CHUNK), after))
    assert job.uniform and job.rest is not None
    job.encode_all()
    return job


def checked(job: BulkJob, i: int, row: Mapping[str, Any]) -> tuple[Any, ...]:
    # the reference: the value-by-value path that raises the errors naming row and column
    return job._encode_row(i, row, job._columns(True), True)


def as_comparable(encoded: tuple[Any, ...]) -> list[Any]:
    return [
        json.dumps(v, sort_keys=True, default=repr) if isinstance(v, float) else v for v in encoded
    ]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=8))
def test_streamed_rows_are_what_the_checked_path_makes_or_go_to_it(
    after: list[dict[str, Any]],
) -> None:
    job = streamed(after)
    taken: list[tuple[Any, ...]] = []
    while batch := job.stream_rows(limit=3):
        taken.extend(batch)
    for n, (row, got) in enumerate(zip(after, taken, strict=False)):
        assert as_comparable(got) == as_comparable(checked(job, STREAM_CHUNK + n, row))
    if len(taken) == len(after):
        assert job.next_chunk() is None
        return
    # stopped at a row: the checked path refuses it, naming its index in the input
    stop = STREAM_CHUNK + len(taken)
    with pytest.raises(ValidationError) as info:
        checked(job, stop, after[len(taken)])
    assert info.value.row == stop
    rest = job.next_chunk()
    assert (
        rest is not None and rest.start == stop and rest.rows[0] == after[len(taken)]
    )  # held rows are copies


def test_rows_stream_on_only_while_they_are_dicts_with_the_chunk_s_keys() -> None:
    other_keys = {k: v for k, v in GOOD.items() if k != "small"}
    extra = {**GOOD, "nope": 1}
    for odd in (other_keys, MappingProxyType(GOOD), {**GOOD, "id": sa.func.now()}):
        after: list[Any] = [GOOD, GOOD, odd, GOOD]
        job = streamed(after)
        assert len(job.stream_rows()) == 2
        assert job.stream_rows() == []  # held until the next chunk takes it
        rest = job.next_chunk()
        assert rest is not None and rest.start == STREAM_CHUNK + 2 and rest.rows == after[2:]
    job = streamed([GOOD, GOOD, extra])
    assert len(job.stream_rows()) == 2
    with pytest.raises(
        ValidationError, match=f"row {STREAM_CHUNK + 2}: encoded has no column 'nope'"
    ):
        job.next_chunk()


def test_a_stream_that_ends_on_a_batch_boundary_ends() -> None:
    job = streamed([GOOD] * 6)
    assert [len(job.stream_rows(limit=3)) for _ in range(3)] == [3, 3, 0]
    assert job.end == STREAM_CHUNK + 6 and job.next_chunk() is None


def test_the_stream_reads_rows_one_batch_at_a_time() -> None:
    read = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal read
        for _ in range(STREAM_CHUNK + 1000):
            read += 1
            yield GOOD

    job = BulkJob(table, rows())
    assert read == STREAM_CHUNK
    job.stream_rows(limit=100)
    assert read == STREAM_CHUNK + 100  # the input is never read ahead into a chunk


def test_a_json_value_that_refers_to_itself_is_refused_with_its_row_and_column() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    job = streamed([GOOD, {**GOOD, "doc": {"a": cycle}}])
    assert len(job.stream_rows()) == 1
    rest = job.next_chunk()
    assert rest is not None
    with pytest.raises(
        ValidationError, match=rf"row {STREAM_CHUNK + 1}, column doc: .*refers to itself"
    ):
        rest.encode_all()
