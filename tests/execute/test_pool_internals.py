# mypy: disable-error-code="unreachable"
# (the assertions read psycopg_pool attributes that calls change between two reads;
# mypy narrows them as if they were constant)
"""The pool's fast path and the psycopg_pool internals it reads (issue 21 §5).

``querykit/execute/pool.py`` hands out and takes back connections without
psycopg_pool's full path when nothing is contended, by reading and writing the
pool's own state. These tests fail loudly when the installed psycopg_pool is
outside the range pyproject.toml pins, or when its internals are not what the
fast path assumes; psycopg_pool's public ``get_stats()`` is the oracle for the
pool state the fast path leaves behind.
"""

from __future__ import annotations

import collections
import importlib.metadata
from time import monotonic

import psycopg_pool
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from querykit.execute import pool as pool_module
from querykit.execute.pool import AsyncPool, Pool, PoolOptions


def test_the_installed_psycopg_pool_is_in_the_pinned_range() -> None:
    requirements = [Requirement(r) for r in importlib.metadata.requires("querykit") or []]
    (pin,) = [r for r in requirements if r.name == "psycopg-pool" and r.marker is None]
    installed = Version(psycopg_pool.__version__)
    assert pin.specifier, "pyproject.toml must pin psycopg-pool: the pool reads its internals"
    assert installed in pin.specifier, (
        f"psycopg_pool {installed} is outside querykit's pin {pin.specifier}: the fast path "
        "in querykit/execute/pool.py reads its internals; check them and widen the pin"
    )


def test_the_fast_path_keeps_the_pool_state_as_psycopg_pool_sees_it(url: str) -> None:
    pool = Pool(url, name="internals", options=PoolOptions(min_size=2, max_size=2))
    pool.open(wait=True, timeout=10)
    try:
        assert pool._qk_fast, "psycopg_pool's internals changed: the fast path is off"
        assert isinstance(pool._pool, collections.deque) and len(pool._pool) == 2
        assert isinstance(pool._waiting, collections.deque) and not pool._waiting
        assert pool._closed is False and isinstance(pool._nconns_min, int)
        assert isinstance(pool._drained_at, float)
        conn = pool.getconn()  # the fast path
        assert conn._pool is pool and len(pool._pool) == 1 and pool._nconns_min <= 1
        assert conn._expire_at > monotonic() and conn._created_at > pool._drained_at
        stats = pool.get_stats()
        assert (stats["pool_size"], stats["pool_available"]) == (2, 1)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        pool.putconn(conn)  # the fast path back
        assert conn._pool is None and len(pool._pool) == 2
        assert pool.get_stats()["pool_available"] == 2
        before = {c.info.backend_pid for c in pool._pool}
        pool.drain()  # psycopg_pool's own path: connections made before are replaced
        with pool.connection() as again:  # the fast path must not hand out a drained one
            assert again._created_at > pool._drained_at
            assert again.info.backend_pid not in before
            assert again.execute("SELECT 2").fetchone() == (2,)
    finally:
        pool.close()
    assert pool._closed is True


async def test_the_async_fast_path_keeps_the_pool_state(url: str) -> None:
    pool = AsyncPool(url, name="internals", options=PoolOptions(min_size=1, max_size=1))
    await pool.open(wait=True, timeout=10)
    try:
        assert pool._qk_fast and pool._qk_unlocked()
        conn = await pool.getconn()
        assert conn._pool is pool and not pool._pool
        assert pool.get_stats()["pool_available"] == 0
        await pool.putconn(conn)
        assert conn._pool is None and list(pool._pool) == [conn]
        assert pool.get_stats()["pool_available"] == 1
    finally:
        await pool.close()


def test_missing_internals_switch_the_fast_path_off_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "_warned", [])
    with pytest.warns(RuntimeWarning, match=r"lacks _lock, _pool, .*fast path is off"):
        assert not pool_module._has_internals(object())
    assert not pool_module._has_internals(object())  # warned once per process
