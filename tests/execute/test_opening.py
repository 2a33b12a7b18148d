"""``connect_async()``: awaitable, and an async context manager without ``await`` (issue 21 §1)."""

from __future__ import annotations

import gc
import warnings

import pytest

from querykit import AsyncDatabase, ConnectError, ExecuteError, connect_async, count, select
from schema import pipeline_run as run


async def test_async_with_without_await_opens_and_closes(url: str) -> None:
    async with connect_async(url) as db:
        assert isinstance(db, AsyncDatabase)
        assert await db.scalar(select(count()).from_(run)) == 0
    with pytest.raises(ExecuteError):  # closed on the way out
        await db.scalar(select(count()).from_(run))


async def test_await_gives_the_database_once_opened(url: str) -> None:
    opening = connect_async(url, min_size=0)
    db = await opening
    try:
        assert await opening is db  # awaited again: the same database, not a second pool
        async with await connect_async(url) as other:  # the older spelling still works
            assert other is not db and await other.scalar(select(count()).from_(run)) == 0
        assert await db.scalar(select(count()).from_(run)) == 0  # other's exit left db open
    finally:
        await db.close()


async def test_a_failed_open_raises_at_async_with(url: str) -> None:
    bad = url.rsplit("/", 1)[0].rsplit(":", 1)[0] + ":1/nowhere"
    body_ran = False
    with pytest.raises(ConnectError):
        async with connect_async(bad, connect_timeout=2):
            body_ran = True
    assert not body_ran


def test_an_unused_call_opens_nothing_and_warns_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect_async("postgresql://nobody@127.0.0.1:1/none")  # never awaited
        gc.collect()
