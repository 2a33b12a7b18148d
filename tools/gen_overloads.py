"""Regenerate the typed overloads in querykit/build/query.py: ``python tools/gen_overloads.py``.

``select(c0, c1, ...)`` and ``.returning(c0, c1, ...)`` carry one type per
column; Python's typing cannot map over a variadic argument list, so (like
SQLAlchemy) querykit spells out overloads for 1 to N columns. The blocks
between the GENERATED markers are rewritten in place; ``--check`` exits 1
when they are stale (the test suite runs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

N = 10
TARGET = Path(__file__).resolve().parent.parent / "querykit" / "build" / "query.py"


def _params(n: int) -> tuple[str, str]:
    params = ", ".join(f"__c{i}: _Col[_T{i}]" for i in range(n))
    types = ", ".join(f"_T{i}" for i in range(n))
    return params, types


def select_block() -> str:
    out = []
    for n in range(1, N + 1):
        params, types = _params(n)
        out.append(f"@overload\ndef select({params}, /) -> SelectQuery[{types}]: ...\n")
    return "\n\n".join(out)


def returning_block(cls: str) -> str:
    out = []
    for n in range(1, N + 1):
        params, types = _params(n)
        out.append(f"    @overload\n    def returning(self, {params}, /) -> {cls}[{types}]: ...\n")
    return "\n".join(out)


def render(source: str) -> str:
    blocks = {
        "select overloads": select_block(),
        "insert returning overloads": returning_block("InsertQuery"),
        "update returning overloads": returning_block("UpdateQuery"),
        "delete returning overloads": returning_block("DeleteQuery"),
    }
    for name, body in blocks.items():
        pattern = re.compile(
            rf"(?P<indent>[ ]*)# GENERATED {name}(?: \([^)]*\))? BEGIN\n.*?(?P=indent)# GENERATED {name} END",
            re.S,
        )
        match = pattern.search(source)
        if match is None:
            raise SystemExit(f"marker for {name!r} not found in {TARGET}")
        indent = match.group("indent")
        begin = f"{indent}# GENERATED {name} (tools/gen_overloads.py) BEGIN\n"
        end = f"{indent}# GENERATED {name} END"
        source = source[: match.start()] + begin + body + "\n" + end + source[match.end() :]
    return source


def formatted(source: str) -> str:
    """The source as ``ruff format`` leaves it, so the check matches the committed file."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "format", "--stdin-filename", str(TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def main() -> int:
    source = TARGET.read_text()
    rendered = formatted(render(source))
    if "--check" in sys.argv:
        if rendered != source:
            print(f"{TARGET} overloads are stale; run python tools/gen_overloads.py")
            return 1
        return 0
    TARGET.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
