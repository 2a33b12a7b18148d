"""The README's walk: ``db.all(find_many(run, with_={"steps": include()}))`` from schema.py to rows.

Each stage runs code of its own layer and the layers below it, never above:

1. build: ``find_many(...)`` resolves the relations (schema) into a nested spec;
2. compile: ``compile_query`` turns the spec into a cached Shape (``compile/nested.py``
   builds the statement of the levels, codecs give the value rules); nothing of execute runs;
3. execute: ``db.all`` plans, sends through psycopg and decodes the rows.

A profiler hook records which querykit layer (and module) each called function belongs
to; a stage that reached up a layer (a builder opening a connection, the compiler calling
the executor) fails here, and so does a README step whose files that stage does not run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import querykit
from querykit import find_many, include
from querykit.compile import clear_cache, compile_query
from schema import pipeline_run

ORDER = ["codecs", "schema", "build", "compile", "execute"]


ROOT = Path(__file__).resolve().parents[1]
MODULES: dict[str, set[str]] = {}
"""The querykit modules each traced stage ran, by stage (filled by ``layers_called``)."""


def layers_called(action: Callable[[], Any], stage: str = "") -> tuple[Any, list[str]]:
    """The querykit layers whose functions ``action`` called, in first-call order."""
    seen: list[str] = []
    modules = MODULES.setdefault(stage, set())

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "call":
            return
        name = frame.f_globals.get("__name__", "")
        parts = name.split(".")
        layer = parts[1] if parts[0] == "querykit" and len(parts) > 1 else ""
        if layer in ORDER:
            modules.add(name)
            if layer not in seen:
                seen.append(layer)

    sys.setprofile(profile)
    try:
        result = action()
    finally:
        sys.setprofile(None)
    return result, seen


def readme_walk() -> dict[str, set[str]]:
    """The README walk's steps (build, compile, execute) and the modules each one names."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### How the code is laid out", 1)[1].split("\n## ", 1)[0]
    walk = section.split("**One query, from `schema.py` to rows.**", 1)[1]
    steps: dict[str, set[str]] = {}
    for step in re.split(r"\n(?=\d\. )", walk):
        found = re.match(r"\d\. (build|compile|execute), ", step)
        if found:
            files = re.findall(r"`(querykit/[\w/]+)\.py`", step)
            steps[found.group(1)] = {f.removesuffix("/__init__").replace("/", ".") for f in files}
    return steps


def _above(layer: str, layers: list[str]) -> list[str]:
    return [x for x in layers if ORDER.index(x) > ORDER.index(layer)]


def test_each_stage_stays_in_its_layer_and_below(tables_conn: Any, database_url: str) -> None:
    tables_conn.execute(
        "INSERT INTO pipeline_run (id, name, status, cost, started_at) "
        "VALUES ('r1', 'ingest', 'FAILED', 0.5, now())"
    )
    tables_conn.execute(
        "INSERT INTO pipeline_step (id, run_id, name, model, created_at) "
        "VALUES ('s1', 'r1', 'embed', 'm', now())"
    )
    clear_cache()

    query, built = layers_called(
        lambda: find_many(pipeline_run, with_={"steps": include()}), "build"
    )
    assert "build" in built and "schema" in built  # the relation graph is schema's
    assert _above("build", built) == []

    _, compiled = layers_called(lambda: compile_query(query), "compile")
    assert "compile" in compiled
    assert _above("compile", compiled) == []

    with querykit.connect(database_url) as db:
        rows, executed = layers_called(lambda: db.all(query), "execute")
    assert "execute" in executed
    assert [r["id"] for r in rows] == ["r1"]
    assert [s["id"] for s in rows[0]["steps"]] == ["s1"]

    # each README step names files that its stage really runs
    steps = readme_walk()
    assert sorted(steps) == ["build", "compile", "execute"]
    for stage, named in steps.items():
        assert named - MODULES[stage] == set(), (
            f"the README's {stage} step names modules it does not run"
        )
    assert "querykit.compile.nested" in MODULES["compile"]  # the nested SQL is compile's
    assert not any(m.startswith("querykit.compile") for m in MODULES["build"])


def test_the_walk_names_real_files() -> None:
    # The README's walk names a file for each step: they must exist.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    section = readme.split("### How the code is laid out", 1)[1].split("\n## ", 1)[0]
    files = set(re.findall(r"`(querykit/[\w/]+\.py)`", section))
    assert len(files) >= 5, "the walk names a file for each step"
    missing = sorted(f for f in files if not (root / f).exists())
    assert missing == []


def test_a_nested_spec_gets_its_sql_from_the_compile_layer_only() -> None:
    # build/nested.py holds the spec, compile/nested.py its SQL: with the compile layer not
    # imported, a spec builds and is checked but has no statement; importing it registers one.
    import subprocess

    code = """
import sys
from querykit.build import nested
from querykit.errors import CompileError
from schema import pipeline_run
q = nested.find_many(pipeline_run, with_={"steps": nested.include()})
assert "querykit.compile" not in sys.modules
try:
    q.statement
except CompileError as exc:
    print("refused:", str(exc).split(":")[0])
import querykit.compile
print(len(q.statements()), len(q.using("batched").statements()))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["refused: the compiler is not loaded", "1 2"]
