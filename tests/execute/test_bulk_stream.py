"""insert_many / upsert_many of an iterator: streamed in chunks, one transaction, progress."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from pgvector import Vector

import querykit
from querykit import ArgumentError, DatabaseError, QueryRecord, ValidationError, vector
from querykit.execute.bulk import STREAM_CHUNK
from querykit.execute.progress import ambient_progress
from schema import Status, embedding, pipeline_run

run = pipeline_run
N = 3 * STREAM_CHUNK + 500  # four chunks, the last one short


def names(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
    return ({"name": f"r{i:05}"} for i in range(start, start + n))


def statements(records: list[QueryRecord]) -> list[str]:
    return [r.sql.split(" ")[0] for r in records]


async def test_a_generator_goes_by_one_copy_chunk_by_chunk(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    records: list[QueryRecord] = []
    db.on_query(records.append)
    assert await db.insert_many(run, names(N)) == N
    assert statements(records) == ["COPY"]  # the chunks share one COPY
    assert records[0].rowcount == N
    got = admin.execute("SELECT name FROM pipeline_run ORDER BY name").fetchall()
    assert [r[0] for r in got] == [f"r{i:05}" for i in range(N)]


async def test_a_generator_that_reuses_one_dict_gives_every_row(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    # as csv.DictReader-like readers and hand-written loaders do: one dict, mutated per row
    def rows() -> Iterator[dict[str, Any]]:
        row: dict[str, Any] = {}
        for i in range(N):
            row["name"] = f"r{i:05}"
            row["cost"] = i
            if i == STREAM_CHUNK + 3:  # other keys: the stream stops, a chunk starts there
                row["duration"] = 1
            else:
                row.pop("duration", None)
            yield row

    assert await db.insert_many(run, rows()) == N
    got = admin.execute("SELECT name, cost, duration FROM pipeline_run ORDER BY name").fetchall()
    assert [r[0] for r in got] == [f"r{i:05}" for i in range(N)]
    assert [r[1] for r in got] == list(range(N))
    assert [r[2] for r in got] == [1 if i == STREAM_CHUNK + 3 else None for i in range(N)]


async def test_a_bad_row_in_the_last_chunk_rolls_back_the_chunks_already_sent(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    bad = N - 7

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(N):
            yield {"name": None if i == bad else f"r{i}"}

    with pytest.raises(ValidationError, match=f"row {bad}, column name: None") as info:
        await db.insert_many(run, rows())
    assert info.value.row == bad
    assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (0,)
    # the same inside a transaction: a savepoint, the work before it stays
    async with db.transaction() as tx:
        await tx.insert_many(run, [{"name": "kept"}])
        with pytest.raises(ValidationError, match=f"row {bad}"):
            await tx.insert_many(run, rows())
    assert admin.execute("SELECT name FROM pipeline_run").fetchall() == [("kept",)]


async def test_an_unknown_column_in_a_later_chunk_names_its_row(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    def rows() -> Iterator[dict[str, Any]]:
        yield from names(2500)
        yield {"name": "x", "nope": 1}

    with pytest.raises(ValidationError, match="row 2500: pipeline_run has no column 'nope'"):
        await db.insert_many(run, rows())
    assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (0,)


async def test_chunks_that_change_columns_or_need_insert_switch_statements(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    later = sa.func.now() + sa.text("interval '1 day'")

    def rows() -> Iterator[dict[str, Any]]:
        yield from names(STREAM_CHUNK)  # chunk 0: COPY (name)
        for i in range(STREAM_CHUNK):  # chunk 1: other columns, a new COPY
            yield {"name": f"s{i:05}", "status": Status.FAILED}
        yield {"name": "expr", "ended_at": later}  # chunk 2: a SQL expression, INSERT
        yield from names(STREAM_CHUNK - 1, start=50_000)
        for i in range(STREAM_CHUNK):  # chunk 3: leaves out a server default in some rows
            yield {"name": f"t{i:05}", **({"status": Status.RUNNING} if i % 2 else {})}
        yield from names(10, start=90_000)  # chunk 4: COPY again

    records: list[QueryRecord] = []
    db.on_query(records.append)
    total = 4 * STREAM_CHUNK + 10
    assert await db.insert_many(run, rows()) == total
    assert statements(records) == ["COPY", "COPY", "INSERT", "INSERT", "COPY"]
    counts = dict(
        admin.execute("SELECT status::text, count(*) FROM pipeline_run GROUP BY 1").fetchall()
    )
    half = STREAM_CHUNK // 2
    assert counts == {
        "PENDING": 2 * STREAM_CHUNK + 10 + half,
        "FAILED": STREAM_CHUNK,
        "RUNNING": half,
    }
    ended = admin.execute("SELECT ended_at > now() FROM pipeline_run WHERE name = 'expr'")
    assert ended.fetchone() == (True,)
    assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (total,)


async def test_a_row_that_differs_mid_chunk_starts_the_next_chunk_there(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    # After a uniform chunk, rows go straight from the input into the open COPY;
    # the first one that differs (here a SQL expression, not on a chunk boundary)
    # ends that COPY and starts a chunk of its own.
    first, mixed, last = STREAM_CHUNK + STREAM_CHUNK // 2, STREAM_CHUNK, STREAM_CHUNK + 200

    def rows() -> Iterator[dict[str, Any]]:
        yield from names(first)
        yield {"name": "expr", "ended_at": sa.func.now()}
        yield from names(mixed - 1, start=50_000)
        yield from names(last, start=90_000)

    records: list[QueryRecord] = []
    db.on_query(records.append)
    done: list[int] = []
    total = first + mixed + last
    assert await db.insert_many(run, rows(), progress=lambda n, _: done.append(n)) == total
    assert [(r.sql.split(" ")[0], r.rowcount) for r in records] == [
        ("COPY", first),
        ("INSERT", mixed),
        ("COPY", last),
    ]
    # reported after each STREAM_CHUNK rows of a COPY, and when a statement ends
    assert done == [
        STREAM_CHUNK,
        first,
        first + mixed,
        first + mixed + STREAM_CHUNK,
        total,
    ]
    got = admin.execute("SELECT count(*), count(ended_at) FROM pipeline_run").fetchone()
    assert got == (total, 1)
    names_in = admin.execute("SELECT name FROM pipeline_run WHERE name <> 'expr' ORDER BY name")
    expected = [f"r{i:05}" for i in range(first)]
    expected += [f"r{i:05}" for i in range(50_000, 50_000 + mixed - 1)]
    expected += [f"r{i:05}" for i in range(90_000, 90_000 + last)]
    assert [r[0] for r in names_in.fetchall()] == sorted(expected)


async def test_a_server_error_late_in_a_streamed_copy_names_the_row(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("ALTER TABLE pipeline_run ADD CONSTRAINT short_name CHECK (length(name) < 9)")

    def rows() -> Iterator[dict[str, Any]]:
        yield from names(2345)
        yield {"name": "far too long"}

    with pytest.raises(DatabaseError, match="at row 2345 of the rows given") as info:
        await db.insert_many(run, rows())
    assert (info.value.sqlstate, info.value.row) == ("23514", 2345)
    assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (0,)


async def test_upsert_many_streams_one_statement_per_chunk(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    await db.insert_many(run, [{"id": f"k{i}", "name": "old"} for i in range(0, N, 2)])
    rows = ({"id": f"k{i}", "name": f"new{i}"} for i in range(N))
    assert await db.upsert_many(run, rows, conflict=["id"], update=["name"]) == N
    got = admin.execute(
        "SELECT count(*), count(*) FILTER (WHERE name LIKE 'new%') FROM pipeline_run"
    )
    assert got.fetchone() == (N, N)
    # a repeat within a chunk is refused (one statement cannot update a row twice)
    repeated = iter([{"id": "k1", "name": "a"}, {"id": "k1", "name": "b"}])
    with pytest.raises(ValidationError, match="row 1 repeats the conflict key"):
        await db.upsert_many(run, repeated, conflict=["id"])


@pytest.mark.parametrize("streamed", [False, True])
async def test_progress_callback_gets_rows_done_and_total(db: Any, streamed: bool) -> None:
    calls: list[tuple[int, int | None]] = []
    rows = names(N) if streamed else list(names(N))
    await db.insert_many(run, rows, progress=lambda done, total: calls.append((done, total)))
    total = None if streamed else N
    assert calls == [(min(k * STREAM_CHUNK, N), total) for k in range(1, 5)]
    calls.clear()
    upserts = ({"id": f"u{i}", "name": "u"} for i in range(1500))
    await db.upsert_many(run, upserts, conflict="id", progress=lambda *a: calls.append(a))
    assert calls == [(1000, None), (1500, None)]


async def test_progress_true_off_a_terminal_prints_nothing_and_bad_values_are_refused(
    db: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    assert await db.insert_many(run, names(10), progress=True) == 10
    assert capfd.readouterr() == ("", "")
    with pytest.raises(ArgumentError, match="progress= takes a callable"):
        await db.insert_many(run, names(10), progress="yes")


async def test_an_exception_from_the_progress_callback_rolls_back(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    def stop(done: int, total: int | None) -> None:
        if done >= 2 * STREAM_CHUNK:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await db.insert_many(run, names(N), progress=stop)
    assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (0,)


# -- memory ---------------------------------------------------------------------------------

PAGE = 4096
MEMORY_ROWS = 200_000
DIM = 16
mem_table = sa.Table(
    "bulk_stream_memory",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("meta", sa.dialects.postgresql.JSONB, nullable=False),
    sa.Column("embedding", vector(DIM), nullable=False),
)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def test_a_large_streamed_input_keeps_memory_flat(url: str, admin: psycopg.Connection[Any]) -> None:
    admin.execute(
        f"CREATE TABLE bulk_stream_memory (id int PRIMARY KEY, content text NOT NULL, "
        f"meta jsonb NOT NULL, embedding vector({DIM}) NOT NULL)"
    )
    peak = 0

    def rows(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
        nonlocal peak
        for i in range(start, start + n):
            if i % 20_000 == 0:
                peak = max(peak, rss_bytes())
            yield {
                "id": i,
                "content": f"document number {i}",
                "meta": {"source": "test", "n": i, "tags": ["a", "b"]},
                "embedding": [math.sin(i + d) for d in range(DIM)],
            }

    with querykit.connect(url, min_size=1, max_size=1) as db:
        db.insert_many(mem_table, rows(20_000, start=-20_000))  # warm up caches and buffers
        baseline = rss_bytes()
        peak = baseline
        assert db.insert_many(mem_table, rows(MEMORY_ROWS)) == MEMORY_ROWS
    growth = peak - baseline
    # Held in a list, these rows take over 200 MB (dicts, strings, lists of floats).
    assert growth < 24 * 2**20, f"memory grew by {growth / 2**20:.1f} MB while loading"
    got = admin.execute("SELECT count(*), sum(id), max((meta->>'n')::int) FROM bulk_stream_memory")
    n = MEMORY_ROWS
    assert got.fetchone() == (n + 20_000, n * (n - 1) // 2 - 20_000 * 20_001 // 2, n - 1)


def test_progress_true_draws_a_rich_bar_on_a_terminal(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with querykit.connect(url, min_size=1, max_size=1) as db:
        assert db.insert_many(run, list(names(N)), progress=True) == N
        bar = capsys.readouterr().err
        assert "insert_many(pipeline_run)" in bar and f"{N}/{N}" in bar
        # the CLI's `db seed` turns progress on around the seed function
        with ambient_progress():
            db.insert_many(run, names(1500, start=N))
        assert "1500/?" in capsys.readouterr().err  # an iterator: no total
        db.insert_many(run, names(10, start=2 * N))
        assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Vector([math.nan] + [0.5] * 383), "vector component 0 is nan"),
        (Vector([0.5] * 383 + [math.inf]), "vector component 383 is inf"),
        (Vector([3e38] * 384), None),  # large but finite: accepted
        (Vector([0.5] * 383), "expected 384 dimensions"),
    ],
)
async def test_vector_objects_are_checked_on_the_fast_path(
    db: Any, admin: psycopg.Connection[Any], bad: Vector, message: str | None
) -> None:
    good = Vector([0.5] * 384)
    rows = ({"content": str(i), "embedding": bad if i == 7 else good} for i in range(10))
    if message is None:
        assert await db.insert_many(embedding, rows) == 10
        return
    with pytest.raises(ValidationError, match=f"row 7, column embedding: {message}"):
        await db.insert_many(embedding, rows)
    assert admin.execute("SELECT count(*) FROM embedding").fetchone() == (0,)
