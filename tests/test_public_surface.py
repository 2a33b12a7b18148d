"""The public names: the module ``querykit.columns``, ``columns_of``, the ``fn`` aggregates,
the names kept for one release, and the README sections that describe them."""

from __future__ import annotations

import builtins
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

import querykit
from querykit import SchemaError, columns_of, fn, select
from schema import pipeline_run as run

README = Path(__file__).resolve().parent.parent / "README.md"


def test_import_querykit_columns_as_gives_the_module() -> None:
    import querykit.columns as qc

    assert isinstance(qc, ModuleType)
    assert qc.__name__ == "querykit.columns"
    assert querykit.columns is qc
    from querykit import columns

    assert columns is qc
    assert qc.vector(3).dim == 3


def test_the_module_loaded_first_in_a_fresh_process_is_still_the_module() -> None:
    """The order of first use must not matter: the attribute is the module either way."""
    code = (
        "import querykit\n"
        "import querykit.columns as qc\n"
        "from querykit import columns\n"
        "assert type(qc).__module__ == 'querykit.columns' and columns is qc, qc\n"
        "assert qc.columns_of is querykit.columns_of\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_columns_of_checks_every_name() -> None:
    assert [c.name for c in columns_of(run, "id", "status")] == ["id", "status"]
    with pytest.raises(SchemaError, match="pipeline_run has no column 'passwd'; valid columns: id"):
        columns_of(run, "id", "passwd")


def test_the_old_columns_call_still_works_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match=r"use querykit\.columns_of\(table, \*names\)"):
        picked = querykit.columns(run, "id", "name")  # type: ignore[operator]
    assert picked == columns_of(run, "id", "name")


@pytest.mark.parametrize("name", ["sum", "min", "max"])
def test_sum_min_max_left_the_star_import_and_warn_by_attribute(name: str) -> None:
    assert name not in querykit.__all__
    namespace: dict[str, object] = {}
    exec("from querykit import *", namespace)
    assert name not in namespace  # the builtin stays visible
    assert "fn" in namespace and "count" in namespace
    with pytest.warns(DeprecationWarning, match=rf"use querykit\.fn\.{name} "):
        old = getattr(querykit, name)
    assert old is getattr(fn, name)


def test_the_aggregates_compile_as_sqlalchemy_func_does() -> None:
    """The oracle is SQLAlchemy's own compilation of ``func.<name>``."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    pairs: list[tuple[ColumnElement[Any], ColumnElement[Any]]] = [
        (fn.count(), sa.func.count()),
        (fn.count(run.c.cost), sa.func.count(run.c.cost)),
        (fn.count_distinct(run.c.name), sa.func.count(sa.distinct(run.c.name))),
        (fn.sum(run.c.cost), sa.func.sum(run.c.cost)),
        (fn.avg(run.c.cost), sa.func.avg(run.c.cost)),
        (fn.min(run.c.started_at), sa.func.min(run.c.started_at)),
        (fn.max(run.c.cost), sa.func.max(run.c.cost)),
    ]
    for ours, core in pairs:
        assert str(ours.compile(dialect=dialect)) == str(core.compile(dialect=dialect))
    assert querykit.count is fn.count and querykit.avg is fn.avg
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select(run.c.name, fn.sum(run.c.cost)).group_by(run.c.name).to_sql()
    assert builtins.sum([1, 2]) == 3


def _section_blocks(heading: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


@pytest.mark.parametrize("heading", ["The public API", "Error codes"])
def test_the_readme_examples_run(heading: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _section_blocks(heading)
    assert blocks
    for number, code in enumerate(blocks, 1):
        namespace: dict[str, object] = {"__name__": "readme"}
        exec(compile(code, f"README.md ({heading}, example {number})", "exec"), namespace)
        printed = capsys.readouterr().out.split()
        shown = [
            line.lstrip("# ")
            for line in code.splitlines()
            if line.startswith("# ") and line[2:].startswith(("SELECT", "FROM"))
        ]
        assert printed == " ".join(shown).split()  # the SQL the comment shows is printed
