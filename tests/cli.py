"""Run the ``querykit`` command line as a user would: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def example_project(directory: Path) -> Path:
    """A copy of the example project (schema.py, queries.py, pyproject.toml, migrations/)."""
    import shutil

    for name in ("schema.py", "queries.py", "pyproject.toml"):
        shutil.copy(ROOT / name, directory / name)
    shutil.copytree(ROOT / "migrations", directory / "migrations")
    return directory


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any database settings of the machine running the tests."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    return {**base, **extra}


def querykit(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "querykit", *args],
        cwd=cwd,
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
    )


def querykit_many(
    runs: list[tuple[tuple[str, ...], dict[str, str]]], cwd: Path = ROOT, *, at_once: int = 4
) -> list[subprocess.CompletedProcess[str]]:
    """Several ``querykit`` runs (arguments, extra environment), ``at_once`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=at_once) as workers:
        return list(workers.map(lambda run: querykit(*run[0], cwd=cwd, env=run[1]), runs))
