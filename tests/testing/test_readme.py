"""The README's "Testing your app" runs as written: its files, then its pytest command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .conftest import Project

pytestmark = pytest.mark.xdist_group("querykit-testing")

ROOT = Path(__file__).resolve().parent.parent.parent


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Testing your app\n")
    return text[start : text.index("\n## ", start + 1)]


def readme_files() -> dict[str, str]:
    """Code blocks whose first line names their file (``# file: app.py``, ``-- file: ...``)."""
    files = {}
    for body in re.findall(r"```(?:python|toml|sql)\n(.*?)```", section(), flags=re.S):
        first, _, rest = body.partition("\n")
        match = re.fullmatch(r"(?:#|--) file: (\S+)", first)
        assert match, f"a README block does not name its file: {first!r}"
        files[match.group(1)] = rest
    return files


def test_the_testing_section_runs_as_written(project: Project, pytester: pytest.Pytester) -> None:
    for path in (project.path / "migrations").iterdir():
        path.unlink()
    files = readme_files()
    assert set(files) == {"pyproject.toml", "migrations/0001_notes.sql", "app.py",
                          "tests/test_notes.py"}  # fmt: skip
    for name, text in files.items():
        target = project.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    commands = re.findall(r"```sh\n(.*?)```", section(), flags=re.S)
    assert len(commands) == 1
    argv = shlex.split(commands[0].split("#")[0])
    assert argv == ["pytest", "-q"]
    outcome = pytester.runpytest(*argv[1:], "-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=3)
    assert len(project.databases("t")) == 1
