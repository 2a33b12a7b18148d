"""Side-by-side timing whose ratios can be trusted on a small, shared machine.

How a comparison runs (``compare``):

- **Interleaved rounds.** Each round runs every case forwards, then backwards
  (A B C C B A): drift in machine load that is linear over a round hits every
  case alike. A case's time in a round is the sum of its two halves.
- **Per-round ratios.** The ratio of a case is taken inside each round (its time
  over the baseline's time in the same round), and the reported ratio is the
  **median of those per-round ratios**, with a bootstrap 95% interval of that
  median (``scipy.stats.bootstrap``), never the ratio of two medians.
- **Enough rounds.** After ``min_rounds`` the interval of every target is
  checked; rounds go on (up to ``max_rounds`` or the time budget) until each
  interval lies wholly on one side of its target. The verdict is then ``ok`` or
  ``MISSED``; an interval that still straddles the target reads ``inconclusive``.
- **One CPU.** The client is pinned to one CPU, and so is every server backend it
  uses (``pin_backend``): on a 2-vCPU machine a cross-CPU wake-up costs more than
  a primary-key select.
- **The floor.** Latency comparisons also time a bare ``SELECT 1`` sent through
  ``psycopg.pq`` on a pinned connection: the machine's round-trip limit, printed
  beside each case (``×floor``).

A target says its direction: ``at_most(1.05)`` for a cost ratio (time over the
baseline's time, lower is better), ``at_least(0.95)`` for a throughput ratio or
a speed-up. A bare float means ``at_most``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

RESULTS: list[dict[str, Any]] = []
CPU = 0
CONFIDENCE = 0.95
#: Scale a comparison's rounds and time budget (``--rounds-scale``; 0.3 for a quick look).
SCALE = 1.0
_FLOOR_URL: str | None = None


def pin_client() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CPU})


def pin_backend(pid: int) -> None:
    """Pin a server backend (``SELECT pg_backend_pid()``) to the client's CPU, if allowed.

    The backend is also counted in the CPU time of ``compare(cpu=True)``.
    """
    _BACKENDS.add(pid)
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {CPU})


_BACKENDS: set[int] = set()


def backends_cpu() -> float:
    """Seconds of CPU the pinned server backends have used so far (Linux ``schedstat``, ns).

    ``/proc/<pid>/stat`` counts in clock ticks (10 ms), coarser than a half-round;
    ``schedstat`` counts nanoseconds. A backend that has gone is dropped.
    """
    total = 0
    for pid in list(_BACKENDS):
        try:
            with open(f"/proc/{pid}/schedstat", "rb") as f:
                total += int(f.read().split(maxsplit=1)[0])
        except (OSError, ValueError, IndexError):
            _BACKENDS.discard(pid)
    return total / 1e9


# -- targets and verdicts -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A bound on a ratio: ``ratio <= bound`` (``at_most``) or ``ratio >= bound``."""

    bound: float
    at_most: bool = True

    def __str__(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.bound:g}"

    def verdict(self, low: float, high: float) -> str:
        """``ok`` when the whole interval meets the bound, ``MISSED`` when none of it does."""
        if math.isnan(low) or math.isnan(high):
            return "inconclusive"
        meets_all = high <= self.bound if self.at_most else low >= self.bound
        meets_none = low > self.bound if self.at_most else high < self.bound
        return "ok" if meets_all else "MISSED" if meets_none else "inconclusive"


def at_most(bound: float) -> Target:
    return Target(bound, True)


def at_least(bound: float) -> Target:
    return Target(bound, False)


def _target(value: float | Target | None) -> Target | None:
    if value is None or isinstance(value, Target):
        return value
    return at_most(float(value))


@dataclass
class Row:
    name: str
    seconds: float  # median seconds per unit
    ratio: float  # median of per-round ratios to the baseline
    unit: str
    low: float = math.nan  # the bootstrap interval of ``ratio``
    high: float = math.nan
    rounds: int = 0
    floor: float | None = None  # this case's time over the libpq floor's
    extra: dict[str, Any] = field(default_factory=dict)


def median_interval(ratios: Sequence[float]) -> tuple[float, float, float]:
    """The median of ``ratios`` and a bootstrap interval of it (percentile method).

    Percentile rather than BCa: the median of a few dozen ratios has ties, where
    BCa's acceleration estimate degenerates.
    """
    return _interval(ratios, np.median, math.nan)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """The mean of ``values`` (e.g. per-query recall) and a bootstrap interval of it."""
    return _interval(values, np.mean, None)


def _interval(
    values: Sequence[float], statistic: Callable[..., Any], few: float | None
) -> tuple[float, float, float]:
    """``statistic`` of ``values`` and its percentile bootstrap interval (scipy).

    With fewer than 3 values the interval is ``few`` (None: the value itself); with
    all values equal it is the value itself.
    """
    data = np.asarray(values, dtype=float)
    value = float(statistic(data))
    if len(data) < 3 and few is not None:
        return value, few, few
    if len(data) < 3 or float(np.ptp(data)) == 0.0:
        return value, value, value
    result = stats.bootstrap(
        (data,),
        statistic,
        confidence_level=CONFIDENCE,
        n_resamples=2000,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(0),
    )
    return value, float(result.confidence_interval.low), float(result.confidence_interval.high)


# -- the floor ------------------------------------------------------------------------------


def set_floor_url(url: str) -> None:
    global _FLOOR_URL
    _FLOOR_URL = url


class _Floor:
    """A bare ``SELECT 1`` through ``psycopg.pq``: no cursor, no adaptation, one round trip."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        pin_backend(self.conn.info.backend_pid)
        self.pgconn = self.conn.pgconn

    def __call__(self) -> object:
        return self.pgconn.exec_(b"SELECT 1")

    def close(self) -> None:
        self.conn.close()


FLOOR = "libpq floor: SELECT 1 (psycopg.pq)"


# -- comparing ------------------------------------------------------------------------------


def compare(
    title: str,
    cases: Mapping[str, Callable[[], object]],
    *,
    baseline: str,
    number: int,
    repeats: int | None = None,
    unit: str = "op",
    target: Mapping[str, float | Target] | None = None,
    floor: bool = False,
    min_rounds: int = 20,
    max_rounds: int = 400,
    budget: float = 40.0,
    speedup: bool = False,
    show: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    cpu: bool = False,
) -> list[Row]:
    """Time ``cases`` in interleaved rounds; print each one's median ratio, interval and verdict.

    ``number`` calls make one half-round of a case: keep it short (a few ms), so
    that the two halves of a round see the same machine; many short rounds make
    a narrower interval than a few long ones. ``floor`` adds the libpq floor
    as a case (for latency comparisons). ``speedup`` reports ratios as the
    baseline's time over the case's (how many times faster the case is than the
    baseline), for targets such as "≥ 25× faster". ``clock=time.process_time`` times
    cases that do no I/O by the CPU time they use: on a loaded machine, wall time
    also counts other processes' time slices, which fall on a short half-round
    (a cache hit's few ms) or miss it by chance. ``repeats`` (old name) sets
    ``min_rounds``. ``show=False`` records without printing (for a curve's points).

    ``cpu=True`` also takes each half-round's CPU time: the client's
    (``time.process_time``, kernel time of its socket calls included) plus that of
    every pinned server backend (:func:`backends_cpu`). Its per-round ratios are
    printed under the table for each target, beside the wall-time verdict, which
    stays the target's verdict: on a loaded machine another process's time slice
    falls into a latency case's wall time but not into its CPU time.
    """
    if repeats is not None:
        min_rounds = repeats
    min_rounds = max(3, round(min_rounds * SCALE))
    max_rounds = max(min_rounds, round(max_rounds * SCALE))
    budget *= SCALE
    targets = {name: t for name, value in (target or {}).items() if (t := _target(value))}
    fns = dict(cases)
    floor_fn = _Floor(_FLOOR_URL) if floor and _FLOOR_URL else None
    if floor_fn is not None:
        fns[FLOOR] = floor_fn
    names = list(fns)
    for fn in fns.values():  # warm up caches, prepared statements
        for _ in range(max(1, number // 10)):
            fn()
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu_times: dict[str, list[float]] = {n: [] for n in names}
    started = time.perf_counter()
    rounds = 0
    while rounds < max_rounds:
        spent = dict.fromkeys(names, 0.0)
        cpu_spent = dict.fromkeys(names, 0.0)
        for name in names + names[::-1]:
            fn = fns[name]
            if cpu:
                b0 = backends_cpu()
                c0 = time.process_time()
            t0 = clock()
            for _ in range(number):
                fn()
            spent[name] += clock() - t0
            if cpu:
                cpu_spent[name] += time.process_time() - c0 + backends_cpu() - b0
        for name in names:
            times[name].append(spent[name] / (2 * number))
            cpu_times[name].append(cpu_spent[name] / (2 * number))
        rounds += 1
        if rounds >= min_rounds and (
            time.perf_counter() - started > budget
            or (rounds % 5 == 0 and _settled(times, baseline, targets, speedup))
        ):
            break
    if floor_fn is not None:
        floor_fn.close()
    floor_s = statistics.median(times[FLOOR]) if floor_fn is not None else None
    rows = []
    for name in names:
        ratios = _ratios(times[name], times[baseline], speedup)
        median, low, high = median_interval(ratios)
        seconds = statistics.median(times[name])
        rows.append(
            Row(
                name,
                seconds,
                median,
                unit,
                low,
                high,
                rounds,
                seconds / floor_s if floor_s else None,
            )
        )
        if cpu:
            rows[-1].extra["cpu_seconds"] = statistics.median(cpu_times[name])
            rows[-1].extra["cpu_ratio"] = median_interval(
                _ratios(cpu_times[name], cpu_times[baseline], speedup)
            )
    if show:
        _print(title, rows, baseline, targets, speedup)
        if cpu:
            _print_cpu(rows, targets)
    else:
        _record(title, rows, baseline, targets, speedup)
    return rows


def _print_cpu(rows: Sequence[Row], targets: Mapping[str, Target]) -> None:
    """The CPU-time ratios of the targets: a reading less exposed to other processes."""
    print("  CPU time, client + its server backend (the verdict above is the wall time's):")
    for row in rows:
        t = targets.get(row.name)
        if t is None:
            continue
        median, low, high = row.extra["cpu_ratio"]
        print(
            f"    {row.name:<44} {_fmt(row.extra['cpu_seconds']):>11} {median:>6.3f}x "
            f"[{low:.3f}, {high:.3f}]  {t} would read {t.verdict(low, high)}"
        )
    sys.stdout.flush()


def curve(title: str, header: Sequence[str], points: Sequence[Sequence[str]]) -> None:
    """Print how a cost grows with the work: one line per size."""
    widths = [max(len(h), *(len(p[i]) for p in points)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for point in points:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(point, widths, strict=True)))
    sys.stdout.flush()


def curve_point(size: int, rows: Sequence[Row]) -> tuple[str, ...]:
    """One line of a curve from a two-case comparison: size, both times, per-unit cost, ratio."""
    base, case = rows[0], rows[1]
    return (
        f"{size:,}",
        _fmt(base.seconds),
        _fmt(case.seconds),
        _fmt(case.seconds / size),
        f"{case.ratio:.3f}x [{case.low:.3f}, {case.high:.3f}]",
    )


def _ratios(case: Sequence[float], base: Sequence[float], speedup: bool) -> list[float]:
    if speedup:
        return [b / c for c, b in zip(case, base, strict=True)]
    return [c / b for c, b in zip(case, base, strict=True)]


def _settled(
    times: Mapping[str, list[float]], baseline: str, targets: Mapping[str, Target], speedup: bool
) -> bool:
    for name, t in targets.items():
        _, low, high = median_interval(_ratios(times[name], times[baseline], speedup))
        if t.verdict(low, high) == "inconclusive":
            return False
    return True


def compare_runs(
    title: str,
    cases: Mapping[str, Callable[[], int]],
    *,
    baseline: str,
    before: Callable[[], object] | None = None,
    min_rounds: int = 5,
    max_rounds: int = 15,
    budget: float = 120.0,
    target: Mapping[str, float | Target] | None = None,
    unit: str = "row",
) -> list[Row]:
    """Long operations (each call returns how many ``unit`` it handled): throughput ratios.

    Rounds alternate the order (A B, B A, ...). The ratio is the case's units per
    second over the baseline's **in the same round** (higher is better), and the
    verdict comes from the interval of those per-round ratios, never from the
    printed per-unit times: those are medians of each case on its own, a
    different statistic, which on three noisy rounds once read "0.84x MISSED"
    beside a higher rate. ``before`` runs untimed ahead of every call (e.g.
    TRUNCATE).
    """
    min_rounds = max(3, round(min_rounds * SCALE))
    max_rounds = max(min_rounds, round(max_rounds * SCALE))
    budget *= SCALE
    targets = {name: t for name, value in (target or {}).items() if (t := _target(value))}
    names = list(cases)
    per_unit: dict[str, list[float]] = {n: [] for n in names}
    started = time.perf_counter()
    rounds = 0
    while rounds < max_rounds:
        order = names if rounds % 2 == 0 else names[::-1]
        for name in order:
            if before is not None:
                before()
            t0 = time.perf_counter()
            count = cases[name]()
            per_unit[name].append((time.perf_counter() - t0) / count)
        rounds += 1
        if rounds >= min_rounds and (
            time.perf_counter() - started > budget or _settled(per_unit, baseline, targets, True)
        ):
            break
    rows = []
    for name in names:
        median, low, high = median_interval(_ratios(per_unit[name], per_unit[baseline], True))
        seconds = statistics.median(per_unit[name])
        rows.append(Row(name, seconds, median, unit, low, high, rounds))
    _print(title, rows, baseline, targets, True)
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
    title: str,
    rows: list[Row],
    baseline: str,
    target: Mapping[str, float | Target] | None = None,
    higher_is_better: bool = False,
    legend: str | None = None,
) -> None:
    """Print rows measured elsewhere (e.g. a single long run) in the same format.

    A row without an interval gets no ok/MISSED verdict: one sample, or a ratio of
    two medians, cannot say on which side of a target the truth lies.
    """
    targets = {name: t for name, value in (target or {}).items() if (t := _target(value))}
    _print(title, rows, baseline, targets, higher_is_better, legend)


def _print(
    title: str,
    rows: list[Row],
    baseline: str,
    targets: Mapping[str, Target],
    higher_is_better: bool,
    legend: str | None = None,
) -> None:
    rounds = max((r.rounds for r in rows), default=0)
    kind = "higher is better" if higher_is_better else "lower is better"
    print(f"\n{title}")
    if legend:
        print(f"  [{legend}]")
    elif rounds:
        print(
            f"  [{rounds} interleaved rounds; ratio = median of per-round ratios ({kind}), "
            f"[{CONFIDENCE:.0%} bootstrap interval]]"
        )
    has_floor = any(r.floor is not None for r in rows)
    print(
        f"  {'case':<46} {_unit_header(rows[0].unit):>11} {'ratio':>7} {'interval':>15}"
        + (f" {'×floor':>7}" if has_floor else "")
        + "  target"
    )
    for row in rows:
        t = targets.get(row.name)
        verdict = ""
        if t is not None:
            verdict = t.verdict(row.low, row.high) if row.rounds else "no interval"
        interval = (
            f"[{row.low:.3f}, {row.high:.3f}]" if row.rounds and not math.isnan(row.low) else ""
        )
        mark = " (baseline)" if row.name == baseline else ""
        floor = (
            f" {row.floor:>6.1f}x"
            if has_floor and row.floor is not None
            else (" " * 8 if has_floor else "")
        )
        print(
            f"  {row.name + mark:<46} {_value(row):>11} {row.ratio:>6.3f}x {interval:>15}"
            f"{floor}  {f'{t} {verdict}' if t else ''}"
        )
    _record(title, rows, baseline, targets, higher_is_better)
    sys.stdout.flush()


def _record(
    title: str,
    rows: list[Row],
    baseline: str,
    targets: Mapping[str, Target],
    higher_is_better: bool,
) -> None:
    for row in rows:
        t = targets.get(row.name)
        verdict = (t.verdict(row.low, row.high) if row.rounds else "no interval") if t else None
        RESULTS.append(
            {
                "benchmark": title,
                **asdict(row),
                "low": None if math.isnan(row.low) else row.low,
                "high": None if math.isnan(row.high) else row.high,
                "baseline": baseline,
                "higher_is_better": higher_is_better,
                "target": None if t is None else {"bound": t.bound, "at_most": t.at_most},
                "verdict": verdict,
            }
        )


def note(benchmark: str, **fields: Any) -> None:
    """A free-form record (setup times, curve points) in the JSON results."""
    RESULTS.append({"benchmark": benchmark, **fields})


def _unit_header(unit: str) -> str:
    return unit if unit == "recall" else f"per {unit}"


def _value(row: Row) -> str:
    return f"{row.seconds:.3f}" if row.unit == "recall" else _fmt(row.seconds)


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


# -- the record -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, load average, versions."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_revision() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "revision": git("rev-parse", "HEAD") or None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def record(started: dt.datetime, names: Sequence[str], load_before: Any) -> dict[str, Any]:
    info = machine()
    info["load_average_before"] = load_before
    return {
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "benchmarks": list(names),
        "machine": info,
        "git": git_revision(),
        "results": RESULTS,
    }


def dump_json(path: str | Path, data: Mapping[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
