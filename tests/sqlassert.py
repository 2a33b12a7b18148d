"""``assert_sql``: compiled SQL is the unit under test (as SQLAlchemy's assert_compile)."""

from __future__ import annotations

import json
import re
from typing import Any

from pgvector import Bit, HalfVector, SparseVector, Vector
from psycopg.types.json import Json, Jsonb


def normalize_sql(sql: str) -> str:
    """One space between tokens, none inside parentheses' edges: layout is not under test."""
    sql = re.sub(r"\s+", " ", sql).strip()
    return sql.replace("( ", "(").replace(" )", ")")


def plain(value: Any) -> Any:
    """A parameter as plain Python, so adapted wrappers compare by content."""
    if isinstance(value, Json | Jsonb):
        obj = value.obj
        return json.loads(obj) if isinstance(obj, str) else obj
    if isinstance(value, Vector | HalfVector):
        return value.to_list()
    if isinstance(value, SparseVector | Bit):
        return value.to_text()
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def assert_sql(
    query: Any, expected_sql: str, expected_params: tuple[Any, ...] | list[Any] = ()
) -> None:
    """The query compiles to ``expected_sql`` with ``expected_params``.

    It also checks the compile cache's bookkeeping against SQLAlchemy itself: the
    values querykit sends for each placeholder are those SQLAlchemy would send
    for the equivalent Core statement.
    """
    compiled = query.to_sql()
    check_against_core(query, compiled)
    assert normalize_sql(compiled.sql) == normalize_sql(expected_sql), (
        f"\nexpected: {normalize_sql(expected_sql)}\n     got: {normalize_sql(compiled.sql)}"
    )
    got = [plain(p) for p in compiled.params]
    assert got == [plain(p) for p in expected_params], (
        f"params: expected {expected_params!r}, got {got!r}"
    )


def check_against_core(query: Any, compiled: Any) -> None:
    from querykit.codecs.dialect import DIALECT

    core = query.statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    params = core.construct_params()
    expected = [params[name] for name in core.positiontup]
    assert [plain(v) for v in compiled._raw] == [plain(v) for v in expected], (
        f"placeholder values differ from SQLAlchemy's: {compiled._raw!r} vs {expected!r}"
    )
