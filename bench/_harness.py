"""Side-by-side timing with ratios against a baseline measured in the same run.

Cases run interleaved (A B C, B C A, ...) so that drift in machine load hits
every case alike; the reported ratio is the median of per-repeat ratios. The
client process is pinned to one CPU, and so is every server backend it uses
(see ``pin_backend``): on a 2-vCPU machine a cross-CPU wake-up costs more than
a primary-key select.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

RESULTS: list[dict[str, Any]] = []
CPU = 0


def pin_client() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CPU})


def pin_backend(pid: int) -> None:
    """Pin a server backend (``SELECT pg_backend_pid()``) to the client's CPU, if allowed."""
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {CPU})


@dataclass
class Row:
    name: str
    seconds: float  # median seconds per unit
    ratio: float  # median of per-repeat ratios to the baseline
    unit: str


def compare(
    title: str,
    cases: Mapping[str, Callable[[], object]],
    *,
    baseline: str,
    number: int,
    repeats: int = 7,
    unit: str = "op",
    target: Mapping[str, float] | None = None,
) -> list[Row]:
    """Time each case ``number`` times per repeat; print a table of ratios to ``baseline``."""
    names = list(cases)
    for fn in cases.values():  # warm up caches, prepared statements, JIT-less paths
        for _ in range(max(1, number // 10)):
            fn()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = cases[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - start) / number)
    rows = []
    for name in names:
        ratios = [t / b for t, b in zip(times[name], times[baseline], strict=True)]
        rows.append(Row(name, statistics.median(times[name]), statistics.median(ratios), unit))
    _print(title, rows, baseline, target or {})
    return rows


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``repeats`` calls of a long operation (one call per sample)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(
    title: str, rows: list[Row], baseline: str, target: Mapping[str, float] | None = None
) -> None:
    """Print rows measured elsewhere (e.g. a single long run) in the same format."""
    _print(title, rows, baseline, target or {})


def _print(title: str, rows: list[Row], baseline: str, target: Mapping[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'case':<44} {'per ' + rows[0].unit:>14} {'ratio':>8}  target")
    for row in rows:
        t = target.get(row.name)
        verdict = ""
        if t is not None:
            ok = row.ratio <= t if t >= 1 else row.ratio >= t
            verdict = f"{'≤' if t >= 1 else '≥'} {t:.2f} {'ok' if ok else 'MISSED'}"
        mark = " (baseline)" if row.name == baseline else ""
        print(f"  {row.name + mark:<44} {_fmt(row.seconds):>14} {row.ratio:>7.2f}x  {verdict}")
        RESULTS.append({"benchmark": title, **asdict(row), "baseline": baseline, "target": t})
    sys.stdout.flush()


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def dump_json(path: str) -> None:
    with open(path, "w") as f:
        json.dump(RESULTS, f, indent=2)
