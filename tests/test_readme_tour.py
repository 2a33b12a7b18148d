"""Every ```python block of the README runs as written, in README order, two ways.

A reader runs them after ``make demo`` (the example's data is there), or on an
empty database (migrated, no rows yet); both must work. The blocks run one after
the other in ONE namespace, as a reader pasting them into one Python session
would, in a fresh interpreter started in the repository root, with
``DATABASE_URL`` set. A block that a test of its own runs (it needs a server or
packages of its own) is listed in ``RUN_ELSEWHERE`` by its heading.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from querykit import load_settings, migrate
from tests.cli import ROOT, clean_env
from tests.readme_blocks import fenced_blocks

README = ROOT / "README.md"

# heading (## or ###) -> the test that runs that heading's Python blocks
RUN_ELSEWHERE: dict[str, str] = {
    # needs a real streaming standby and PgBouncer, which that test starts
    "Read replicas and poolers": "tests/test_readme_replicas.py",
    # an app and its tests, written to files and run by pytest in a project of their own
    "Testing your app": "tests/testing/test_readme.py",
}

# What the tour finds in the demo's data: a block that silently found nothing would be no proof.
NON_EMPTY = {"after make demo": ["totals", "similar", "shuri"]}

_RUNNER = """
import json, sys, traceback, types
given = json.load(sys.stdin)
blocks, expect = given["blocks"], given["non_empty"]
module = types.ModuleType("readme")  # like a user's module: SQLAlchemy and pickle look it up
sys.modules["readme"] = module
for block in blocks:
    try:
        code = chr(10) * (block["line"] - 1) + block["code"]  # tracebacks give README lines
        exec(compile(code, "README.md", "exec"), module.__dict__)
    except BaseException:
        print(f"README block at line {block['line']} ({block['heading']}) failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
empty = [name for name in expect if not module.__dict__[name]]
if empty:
    sys.exit(f"after every block, these are empty: {empty}")
print(f"{len(blocks)} blocks ran")
"""


def python_blocks() -> list[dict[str, object]]:
    """Each ```python block with its first line number and heading, in README order."""
    return [
        {
            "line": b.line,
            "heading": f"{b.section} / {b.subsection}" if b.subsection else b.section,
            "code": "\n".join(b.body) + "\n",
        }
        for b in fenced_blocks(README, "python", RUN_ELSEWHERE)
    ]


def test_the_blocks_run_elsewhere_have_their_tests() -> None:
    text = README.read_text()
    for heading, test in RUN_ELSEWHERE.items():
        assert re.search(rf"^#+ {re.escape(heading)}$", text, flags=re.M), heading
        assert (ROOT / test.split(" ")[0]).exists(), test


def test_every_python_block_is_found() -> None:
    blocks = python_blocks()
    fences = README.read_text().count("```python\n")
    assert len(blocks) + sum(1 for _ in RUN_ELSEWHERE) <= fences
    assert len(blocks) >= 25


@pytest.mark.slow
@pytest.mark.parametrize("state", ["after make demo", "on an empty database"])
def test_every_python_block_runs(database_url: str, state: str) -> None:
    migrate.up(load_settings(cwd=ROOT, env={}, database_url=database_url))
    env = clean_env(DATABASE_URL=database_url)
    if state == "after make demo":
        seeded = subprocess.run(
            [sys.executable, "demo.py"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert seeded.returncode == 0, seeded.stderr
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        cwd=ROOT,
        env=env,
        input=json.dumps({"blocks": python_blocks(), "non_empty": NON_EMPTY.get(state, [])}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{state}:\n{done.stderr[-4000:]}"
    assert done.stdout.strip().endswith("blocks ran")
