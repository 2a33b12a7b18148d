"""Run the benchmarks: ``python -m bench [NAME ...] [--json FILE] [--save] [--long]``."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import pathlib
import pkgutil
import sys
import time

from . import _harness
from ._db import bench_database

RESULTS_DIR = pathlib.Path(__file__).parent / "results"
KEEP = 12  # runs kept in bench/results/


def main() -> int:
    modules = {
        info.name.removeprefix("bench_"): info.name
        for info in pkgutil.iter_modules([str(pathlib.Path(__file__).parent)])
        if info.name.startswith("bench_")
    }
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks to run, of: {', '.join(sorted(modules))} (default: all)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--save",
        action="store_true",
        help=f"also keep the results in bench/results/ (the last {KEEP} runs), which the "
        "README's performance table is generated from (tools/bench_table.py)",
    )
    parser.add_argument(
        "--long",
        action="store_true",
        help="long runs too: the KNN curve at 1,000,000 vectors (sets QK_BENCH_LONG=1)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="scale every comparison's rounds and time budget (0.3: a quick look)",
    )
    args = parser.parse_args()
    wanted = args.names or sorted(modules)
    unknown = [n for n in wanted if n not in modules]
    if unknown:
        parser.error(f"unknown benchmark {unknown}; choose from {sorted(modules)}")
    if args.long:
        os.environ["QK_BENCH_LONG"] = "1"
    _harness.SCALE = args.scale
    started = dt.datetime.now(dt.UTC)
    load_before = list(os.getloadavg())
    _harness.pin_client()
    with bench_database() as url:
        _harness.set_floor_url(url)
        for name in wanted:
            began = time.perf_counter()
            module = importlib.import_module(
                f"{__name__.rpartition('.')[0] or 'bench'}.{modules[name]}"
            )
            module.run(url)
            print(f"  [{name}: {time.perf_counter() - began:.1f}s]")
    data = _harness.record(started, wanted, load_before)
    print(
        f"\nmachine: {data['machine']['cpu_model']}, {data['machine']['cores']} cores, "
        f"load average {load_before[0]:.2f} before, {data['machine']['load_average'][0]:.2f} after; "
        f"git {(data['git']['revision'] or '?')[:10]}{' (dirty)' if data['git']['dirty'] else ''}"
    )
    if args.json:
        _harness.dump_json(args.json, data)
    if args.save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        _harness.dump_json(path, data)
        for old in sorted(RESULTS_DIR.glob("*.json"))[:-KEEP]:
            old.unlink()
        print(
            f"saved {path.relative_to(pathlib.Path.cwd()) if path.is_relative_to(pathlib.Path.cwd()) else path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
