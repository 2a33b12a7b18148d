"""Run the benchmarks: ``python -m bench [NAME ...] [--json FILE]``."""

from __future__ import annotations

import argparse
import importlib
import pathlib
import pkgutil
import sys
import time

from . import _harness
from ._db import bench_database


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
    args = parser.parse_args()
    wanted = args.names or sorted(modules)
    unknown = [n for n in wanted if n not in modules]
    if unknown:
        parser.error(f"unknown benchmark {unknown}; choose from {sorted(modules)}")
    _harness.pin_client()
    with bench_database() as url:
        for name in wanted:
            started = time.perf_counter()
            module = importlib.import_module(
                f"{__name__.rpartition('.')[0] or 'bench'}.{modules[name]}"
            )
            module.run(url)
            print(f"  [{name}: {time.perf_counter() - started:.1f}s]")
    if args.json:
        _harness.dump_json(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
