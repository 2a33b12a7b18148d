"""Read replicas: what read-your-writes costs per read, and what a replica adds to throughput.

Runs its own cluster: an embedded primary and a streaming standby made with
``pg_basebackup -R -X stream`` (``tests.realservers``), on this machine.

1. The issue's 1,000 write→read cycles, in interleaved blocks of 100: a read
   right after a write, with ``consistency="read-your-writes"`` against plain
   replica reads (``"eventual"``). Reported: stale reads, read p50 and p99, and
   where the reads ran. Plus reads with no write pending (the token already
   replayed), the common case of a read-heavy app.
2. Throughput of a read-heavy mix (4 threads, 9 reads : 1 write) for a fixed
   time, with 1 primary + 1 replica against the primary alone. Both servers
   share this machine's 2 vCPUs, so this shows the routing's overhead more than
   the capacity a replica on its own machine adds.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import sqlalchemy as sa

import querykit
from querykit import QueryRecord, eq, select, update
from tests.realservers import ReplicatedCluster

from ._harness import Row, report

NAME = "replicas"
CYCLES, BLOCK = 1000, 100
THREADS, SECONDS = 4, 3.0

counter = sa.Table(
    "counter",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)
READ = select(counter.c.n).where(eq(counter.c.id, 1))


def _cycles(
    db: Any, records: list[QueryRecord], start: int, count: int, write: bool
) -> tuple[int, list[float], int]:
    """(stale reads, read seconds, reads on the replica) over ``count`` cycles."""
    stale, times, before = 0, [], len(records)
    for n in range(start, start + count):
        if write:
            db.execute(update(counter).set(n=n).where(eq(counter.c.id, 1)))
        began = time.perf_counter()
        value = db.scalar(READ)
        times.append(time.perf_counter() - began)
        if write and value != n:
            stale += 1
    on_replica = sum(
        1
        for r in records[before:]
        if r.sql.startswith("SELECT") and "read on the primary" not in r.target
    )
    return stale, times, on_replica


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _latency(primary: str, standby: str) -> None:
    dbs = {
        "replica reads, eventual": querykit.connect(primary, replicas=[standby]),
        "replica reads, read-your-writes": querykit.connect(
            primary, replicas=[standby], consistency="read-your-writes"
        ),
    }
    records: dict[str, list[QueryRecord]] = {name: [] for name in dbs}
    for name, db in dbs.items():
        db.on_query(records[name].append)
    try:
        for pending, label in ((True, "after a write"), (False, "no write pending")):
            stale = dict.fromkeys(dbs, 0)
            times: dict[str, list[float]] = {name: [] for name in dbs}
            served = dict.fromkeys(dbs, 0)
            p50s: dict[str, list[float]] = {name: [] for name in dbs}
            n = 1_000_000 if pending else 0
            for block in range(CYCLES // BLOCK):
                names = list(dbs) if block % 2 == 0 else list(reversed(dbs))
                for name in names:
                    s, t, on = _cycles(dbs[name], records[name], n, BLOCK, pending)
                    n += BLOCK
                    stale[name] += s
                    times[name] += t
                    served[name] += on
                    p50s[name].append(statistics.median(t))
            base = "replica reads, eventual"
            rows = [
                Row(f"{name}: p50", statistics.median(times[name]), _ratio(p50s, name, base), "read")
                for name in dbs
            ] + [
                Row(f"{name}: p99", _pct(times[name], 0.99), _pct(times[name], 0.99) / _pct(times[base], 0.99), "read")
                for name in dbs
            ]  # fmt: skip
            report(
                f"{CYCLES} reads {label} (1 primary + 1 streaming replica)", rows, f"{base}: p50"
            )
            for name in dbs:
                print(
                    f"  {name}: {stale[name]} of {CYCLES} stale, {served[name]} read on the replica"
                    if pending
                    else f"  {name}: {served[name]} of {CYCLES} read on the replica"
                )
            added = _pct(times["replica reads, read-your-writes"], 0.99) - _pct(times[base], 0.99)
            print(f"  read-your-writes adds {added * 1000:.2f} ms at p99")
    finally:
        for db in dbs.values():
            db.close()


def _ratio(p50s: dict[str, list[float]], name: str, base: str) -> float:
    return statistics.median(a / b for a, b in zip(p50s[name], p50s[base], strict=True))


def _throughput(db: Any) -> float:
    """Operations a second: THREADS threads, 9 reads to 1 write, for SECONDS."""
    done = [0] * THREADS
    stop = threading.Event()

    def work(t: int) -> None:
        i = 0
        while not stop.is_set():
            if i % 10 == 9:
                db.execute(update(counter).set(n=i).where(eq(counter.c.id, 1)))
            else:
                db.scalar(READ)
            i += 1
        done[t] = i

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    return sum(done) / SECONDS


def _mix(primary: str, standby: str) -> None:
    setups = {
        "primary alone": {},
        "1 primary + 1 replica, eventual": {"replicas": [standby]},
        "1 primary + 1 replica, read-your-writes": {
            "replicas": [standby],
            "consistency": "read-your-writes",
        },
    }
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for repeat in range(3):
        names = list(setups)[repeat % 3 :] + list(setups)[: repeat % 3]
        for name in names:
            with querykit.connect(primary, max_size=THREADS, **setups[name]) as db:  # type: ignore[arg-type]
                rates[name].append(_throughput(db))
    base = "primary alone"
    rows = [
        Row(
            name,
            1 / statistics.median(rates[name]),
            statistics.median(b / a for a, b in zip(rates[name], rates[base], strict=True)),
            "op",
        )
        for name in setups
    ]
    report(
        f"read-heavy mix, {THREADS} threads, 9 reads : 1 write (ratio < 1: more throughput)",
        rows,
        base,
    )
    for name in setups:
        print(f"  {name}: {statistics.median(rates[name]):,.0f} ops/s")


def run(url: str) -> None:
    del url  # this benchmark needs a replica: it starts its own cluster
    cluster = ReplicatedCluster()
    try:
        cluster.start()
        primary, standby = cluster.create_database(
            "bench_replicas",
            [
                "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)",
                "INSERT INTO counter VALUES (1, 0)",
            ],
        )
        _latency(primary, standby)
        _mix(primary, standby)
    finally:
        cluster.stop()
