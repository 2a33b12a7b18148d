"""The README's "Serving results: FastAPI and JSON" section runs as written (issue 21 §1).

Its blocks run in order, in one namespace, on a fresh database with the example's
tables: the app (lifespan-managed AsyncDatabase), the test-client call with its
assertions on the JSON (vectors, Decimals, enums, nested steps), and ``jsonable``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def fastapi_examples() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Serving results: FastAPI and JSON\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_fastapi_recipe_runs_as_written(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("QUERYKIT_DATABASE_URL", raising=False)
    examples = fastapi_examples()
    assert len(examples) == 3
    namespace: dict[str, object] = {"__name__": "readme_fastapi"}
    for number, code in enumerate(examples, 1):
        exec(
            compile(code, f"README.md (FastAPI, example {number})", "exec", dont_inherit=True),
            namespace,
        )
    printed = capsys.readouterr().out
    assert re.search(
        r'^\[\["\w+", "0\.125000", "RUNNING", "\d{4}-\d\d-\d\dT[\d:.]+Z"\]\]$', printed
    )


def test_the_response_model_with_a_vector_has_an_openapi_schema() -> None:
    from fastapi.testclient import TestClient

    namespace: dict[str, object] = {"__name__": "readme_fastapi"}
    exec(
        compile(fastapi_examples()[0], "README.md (FastAPI, example 1)", "exec", dont_inherit=True),
        namespace,
    )
    app = namespace["app"]
    schema = TestClient(app).get("/openapi.json").json()  # type: ignore[arg-type]
    passage = schema["components"]["schemas"]["Passage"]["properties"]
    assert passage["embedding"] == {
        "items": {"type": "number"},
        "type": "array",
        "title": "Embedding",
    }
    assert schema["paths"]["/runs/{run_id}"]["get"]["responses"]["200"]  # a valid response field
