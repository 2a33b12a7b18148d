"""stream() over a million rows keeps the process's memory flat."""

from __future__ import annotations

import os
from typing import Any

from querykit import raw

ROWS = 1_000_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size now (not the peak: the peak never comes down)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def rows_query(n: int) -> Any:
    return raw("SELECT g, md5(g::text) FROM generate_series(1, :n) AS g ORDER BY g", n=n).returns(
        int, str
    )


async def test_stream_of_a_million_rows_stays_in_bounded_memory(db: Any) -> None:
    async for _ in db.stream(rows_query(50_000), batch=5000):  # warm up allocators and caches
        pass
    baseline = rss_bytes()
    peak = baseline
    count = 0
    total = 0
    async for number, digest in db.stream(rows_query(ROWS), batch=5000):
        count += 1
        total += number
        if count % 50_000 == 0:
            peak = max(peak, rss_bytes())
            assert len(digest) == 32
    assert count == ROWS
    assert total == ROWS * (ROWS + 1) // 2
    growth = peak - baseline
    # The rows themselves would take well over 150 MB held in a list.
    assert growth < 32 * 2**20, f"memory grew by {growth / 2**20:.1f} MB while streaming"
