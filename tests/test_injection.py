"""An injection corpus through every place a user string can reach.

For each hostile string the statement's structure must not change: the SQL
text with placeholders is identical to the one built from a harmless string,
the inline rendering parses (with PostgreSQL's own parser, pglast) to exactly
one statement with the same fingerprint, the literal in it is the input
unchanged, and the database returns the same rows both ways.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from pglast import parse_sql
from pglast.parser import fingerprint, parse_sql_json
from psycopg.types.json import Json, Jsonb

from querykit import (
    CompileError,
    QueryKitError,
    SchemaError,
    ValidationError,
    columns_of,
    eq,
    escape_like,
    insert,
    like,
    raw,
    select,
)
from querykit.codecs import quote_text
from schema import pipeline_run

run = pipeline_run

CORPUS = [
    "'",
    "''",
    "' OR '1'='1",
    "'; DROP TABLE pipeline_run; --",
    "\\'; DROP TABLE pipeline_run; --",
    "-- comment",
    "/* block */ SELECT 1",
    "*/",
    "; SELECT pg_sleep(10);",
    "$$",
    "$tag$ SELECT 1 $tag$",
    "\\",
    "\\\\",
    "\\x00",
    "E'\\x41'",
    "%s",
    "%(name)s",
    "%%",
    ":name",
    "::text",
    "\u02bc OR 1=1 --",  # modifier letter apostrophe, a quote look-alike
    "\uff07 OR 1=1",  # fullwidth apostrophe
    "\u2019; DROP TABLE x",  # right single quotation mark
    "unicode ✓ 日本 🎉",
    "\n\r\t",
    '"quoted identifier"',
    "a" * 5000,
]

HARMLESS = "harmless"


def string_literals(sql: str) -> list[str]:
    """Every string constant in the statement, as PostgreSQL's parser reads it."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "sval" in node and isinstance(node["sval"], dict):
                found.append(node["sval"].get("sval", ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    walk(json.loads(parse_sql_json(sql)))
    return found


def check_structure(make: Any, value: str) -> None:
    benign, hostile = make(HARMLESS).to_sql(), make(value).to_sql()
    assert hostile.sql == benign.sql  # values never reach the SQL text
    inlined = hostile.inline()
    statements = parse_sql(inlined)
    assert len(statements) == 1
    assert fingerprint(inlined) == fingerprint(benign.inline())
    literals = string_literals(inlined)
    for param in hostile.params:  # every bound string comes back from the parser unchanged
        text = param.obj if isinstance(param, Json | Jsonb) else param
        if isinstance(text, str):
            assert text in literals


@pytest.mark.parametrize("value", CORPUS)
def test_values_and_like_patterns(value: str) -> None:
    check_structure(lambda v: select(run.c.id).where(eq(run.c.name, v)), value)
    check_structure(lambda v: select(run.c.id).where(like(run.c.name, v)), value)
    check_structure(
        lambda v: select(run.c.id).where(like(run.c.name, "%" + escape_like(v) + "%")), value
    )
    check_structure(lambda v: insert(run).values(id="x", name=v, metadata={"k": v}), value)
    check_structure(lambda v: raw("SELECT id FROM pipeline_run WHERE name = :v", v=v), value)


@pytest.mark.parametrize("value", CORPUS)
def test_dynamic_order_by_and_column_selection_reject_it(value: str) -> None:
    with pytest.raises(SchemaError):
        select(run.c.id).from_(run).order_by(value)
    with pytest.raises(SchemaError):
        select(run.c.id).from_(run).order_by("-" + value)
    with pytest.raises(SchemaError):
        columns_of(run, value)


def test_nul_is_a_clear_error_everywhere() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        select(run.c.id).where(eq(run.c.name, "a\x00b")).to_sql()
    with pytest.raises(ValidationError, match="NUL"):
        insert(run).values(name="x", metadata={"k": "a\x00b"}).to_sql()
    with pytest.raises(ValidationError, match="NUL"):
        raw("SELECT :v", v="a\x00b").to_sql()
    with pytest.raises(CompileError, match="NUL"):
        quote_text("a\x00b")  # the inline renderer's own guard
    with pytest.raises(QueryKitError):
        select(run.c.id).from_(run).order_by("name\x00")


@pytest.fixture
def seeded(tables_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    rows = [{"id": f"r{i}", "name": v, "metadata": {"k": v}} for i, v in enumerate(CORPUS)]
    compiled = insert(run).values(rows).to_sql()
    tables_conn.execute(compiled.sql, compiled.params)
    return tables_conn


@pytest.mark.parametrize("value", CORPUS)
def test_the_database_sees_data_not_sql(seeded: psycopg.Connection[Any], value: str) -> None:
    for query in (
        select(run.c.id, run.c.name).where(eq(run.c.name, value)),
        select(run.c.id).where(like(run.c.name, escape_like(value))),
    ):
        compiled = query.to_sql()
        with_params = seeded.execute(compiled.sql, compiled.params).fetchall()
        literal = seeded.execute(compiled.inline()).fetchall()
        assert with_params == literal
        assert [r[0] for r in with_params] == [f"r{CORPUS.index(value)}"]
    assert seeded.execute("SELECT count(*) FROM pipeline_run").fetchone() == (len(CORPUS),)
