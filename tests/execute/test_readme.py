"""The examples of the README's "Running queries" section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def running_queries_examples() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Running queries\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_running_queries_examples_run(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("QUERYKIT_DATABASE_URL", raising=False)
    examples = running_queries_examples()
    assert len(examples) >= 8
    namespace: dict[str, object] = {"__name__": "readme"}
    for number, code in enumerate(examples, 1):
        exec(compile(code, f"README.md (Running queries, example {number})", "exec"), namespace)
