"""The README's tour runs as written, on a migrated database with the demo's data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from querykit import load_settings, migrate

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def tour_examples() -> list[str]:
    text = README.read_text()
    start = text.index("\n## A tour, following the seed articles\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_tour_runs(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate.up(load_settings(cwd=ROOT, env={}, database_url=database_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    seeded = subprocess.run(
        [sys.executable, "demo.py"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("QUERYKIT_DATABASE_URL", raising=False)
    examples = tour_examples()
    assert len(examples) >= 7
    module = types.ModuleType("readme_tour")  # like a user's module: SQLAlchemy looks it up
    monkeypatch.setitem(sys.modules, "readme_tour", module)
    namespace = module.__dict__
    for number, code in enumerate(examples, 1):
        exec(compile(code, f"README.md (tour, example {number})", "exec"), namespace)
    assert (
        namespace["failed"] and namespace["totals"] and namespace["similar"] and namespace["shuri"]
    )
