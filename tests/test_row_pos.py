"""``check_row_pos`` and the README's "Typing" section (issue 21 §6)."""

from __future__ import annotations

import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

import schema
from querykit import SchemaError, check_row_pos, insert, update

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_table_of_the_example_declares_its_row_types_right() -> None:
    checked = []
    for table in schema.metadata.sorted_tables:
        check_row_pos(table, getattr(schema, f"{table.name}_cols"))
        checked.append(table.name)
    assert len(checked) == 5


def _module(source: str) -> types.ModuleType:
    """A real module, so annotations resolve in its namespace as in a user's schema file."""
    module = types.ModuleType(f"row_pos_case_{abs(hash(source))}")
    sys.modules[module.__name__] = module
    exec(compile(textwrap.dedent(source), module.__name__, "exec"), module.__dict__)
    return module


HEAD = """
from __future__ import annotations
import datetime as dt
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, TypedColumns
"""
COLUMNS = """
    id: Column[int] = Column(Integer, primary_key=True)
    name: Column[str | None] = Column(Text)
    at: Column[dt.datetime] = Column(DateTime(timezone=True), nullable=False)
"""


@pytest.mark.parametrize(
    ("row_pos", "message"),
    [
        ("", r"declares no __row_pos__, so select\(t\) is typed SelectQuery\[Any, \.\.\.\]"),
        (
            "__row_pos__: tuple[int, str | None]",
            r"has 2 types, but t has 3 columns \(id, name, at\)",
        ),
        (
            "__row_pos__: tuple[int, str, dt.datetime]",
            r"__row_pos__\[1\] is str, but column t.name is",
        ),
        (
            "__row_pos__: tuple[str, str | None, dt.datetime]",
            r"__row_pos__\[0\] is str, but column t.id",
        ),
    ],
)
def test_a_wrong_declaration_says_where_and_what_to_write(row_pos: str, message: str) -> None:
    module = _module(
        HEAD
        + "class t_cols(TypedColumns):"
        + COLUMNS
        + f"    {row_pos}\n"
        + "t = Table('t', MetaData(), t_cols)\n"
    )
    with pytest.raises(SchemaError, match=message) as info:
        check_row_pos(module.t, module.t_cols)
    suggestion = info.value.args[0].splitlines()[-1].strip()  # the message without its code
    assert suggestion == "__row_pos__: tuple[int, str | None, datetime]"
    fixed = _module(
        HEAD
        + "from datetime import datetime\nclass t_cols(TypedColumns):"
        + COLUMNS
        + f"    {suggestion}\nt = Table('t', MetaData(), t_cols)\n"
    )
    check_row_pos(fixed.t, fixed.t_cols)  # the suggested line is right


def test_optional_and_union_spellings_are_the_same_type() -> None:
    module = _module(
        HEAD
        + "from typing import Optional\nclass t_cols(TypedColumns):"
        + COLUMNS
        + "    __row_pos__: tuple[int, Optional[str], dt.datetime]\n"
        + "t = Table('t', MetaData(), t_cols)\n"
    )
    check_row_pos(module.t, module.t_cols)


def test_misspelt_columns_are_refused_when_the_query_is_built() -> None:
    with pytest.raises(
        SchemaError, match=r"pipeline_run has no column 'titel'; valid columns: id,"
    ):
        insert(schema.pipeline_run).values(titel="x")
    with pytest.raises(SchemaError, match=r"no column 'nmae'"):
        update(schema.pipeline_run).set({"nmae": "x"})
    with pytest.raises(AttributeError):  # TypedColumns answers statically, not at run time
        insert(schema.pipeline_run).values({schema.pipeline_run.c.nmae: "x"})


def test_the_readme_typing_section_runs() -> None:
    text = README.read_text()
    start = text.index("\n## Typing: what the type checker sees\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "README.md (Typing)", "exec", dont_inherit=True), {"__name__": "rd"})
