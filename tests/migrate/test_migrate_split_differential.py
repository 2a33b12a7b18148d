"""The JSON-tree statement split finds what the old syntax-tree split found, in every file.

querykit splits migration files on libpg_query's JSON tree (a tenth of the
CPU of pglast's Python objects). The old split, kept in :mod:`split_oracle`,
is the oracle: over every migration file the tests write (each SQL string in
tests/migrate), the lint and diff corpora, the other tools' histories, the
project's own migrations and the edge cases below, both give the same
statements, offsets, lines, columns and kinds, and the same error for a file
that cannot run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import diff_corpus
import lint_corpus
import pytest
import test_migrate_layouts
from pglast import parser
from split_oracle import split_with_ast

from querykit.errors import MigrationFileError
from querykit.migrate.files import (
    DOWN_MARKER,
    Statement,
    _LineIndex,
    _scan,
    split_section,
    split_statements,
)

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

EDGES = [
    # Non-ASCII text before and inside statements: libpg_query counts bytes, Python characters.
    "-- café ☕\nCREATE TABLE é (\"ü\" text DEFAULT 'naïve €');\nINSERT INTO é VALUES ('😀');\n"
    "SELECT 'x'",
    "CREATE TEMP TABLE scratch (a int);\nCREATE UNLOGGED TABLE u (a int);\n"
    "CREATE TEMPORARY VIEW v AS SELECT 1;\nCREATE TABLE t2 AS SELECT 1;\n",
    "CREATE INDEX CONCURRENTLY i1 ON s.t (a);\nCREATE INDEX CONCURRENTLY ON t (a);\n"
    "CREATE UNIQUE INDEX i2 ON t (a);\nDROP INDEX CONCURRENTLY IF EXISTS s.i1;\n",
    "REINDEX (CONCURRENTLY) INDEX s.i;\nREINDEX (CONCURRENTLY false) TABLE t;\n"
    "REINDEX (CONCURRENTLY off) TABLE t;\nREINDEX (CONCURRENTLY 'on') TABLE t;\n"
    "REINDEX (CONCURRENTLY 0) TABLE t;\nREINDEX (CONCURRENTLY 1) TABLE t;\n"
    "REINDEX (CONCURRENTLY true, VERBOSE) TABLE t;\nREINDEX (VERBOSE) TABLE t;\n"
    "REINDEX TABLE CONCURRENTLY t;\nREINDEX SYSTEM;\nREINDEX DATABASE app;\nREINDEX SCHEMA s;\n",
    "VACUUM;\nVACUUM (ANALYZE) t;\nANALYZE t;\nCLUSTER;\nCLUSTER t USING i;\n",
    "ALTER TABLE p DETACH PARTITION c CONCURRENTLY;\nALTER TABLE p DETACH PARTITION c;\n"
    "ALTER TABLE p ATTACH PARTITION c FOR VALUES IN (1);\nALTER TABLE t ADD COLUMN b int;\n",
    "CREATE DATABASE d;\nDROP DATABASE d;\nALTER SYSTEM SET work_mem = '8MB';\n"
    "CREATE TABLESPACE ts LOCATION '/x';\nDROP TABLESPACE ts;\n",
    "SET ROLE admin;\nSET LOCAL ROLE admin;\nRESET ROLE;\nSET SESSION AUTHORIZATION bob;\n"
    "RESET SESSION AUTHORIZATION;\nSET search_path = app;\nSET LOCAL lock_timeout = '1s';\n"
    "SET TIME ZONE 'UTC';\nRESET ALL;\n",
    "DO $$\nBEGIN\n  RAISE NOTICE 'x';\nEND\n$$;\nDO LANGUAGE plpgsql 'BEGIN NULL; END';\n"
    "CALL p();\nSELECT 1;\nPREPARE q AS SELECT 1;\nLISTEN c;\nDECLARE c CURSOR FOR SELECT 1;\n",
    "CREATE SEQUENCE s;\nCREATE TEMP SEQUENCE ts;\nALTER SEQUENCE s RESTART;\nCOMMENT ON TABLE t IS 'x';\n"
    "GRANT SELECT ON t TO r;\nCREATE TYPE e AS ENUM ('a');\nALTER TYPE e ADD VALUE 'b';\n"
    "ALTER TABLE t RENAME TO t3;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
    "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();\nCREATE SCHEMA s2;\n"
    "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TYPE c AS (a int);\nCREATE DOMAIN d AS int;\n"
    "CREATE POLICY pol ON t USING (true);\nUPDATE t SET a = 1;\nDELETE FROM t;\nDROP TABLE t;\n",
    "/* a block comment */ CREATE TABLE a (x int) /* trailing */ ; -- done\n\n;;\n"
    "CREATE TABLE b (x int)",  # empty statements, and a last statement without a semicolon
    "BEGIN;\nCREATE TABLE w (a int);\nCOMMIT;\n",  # unwrapped for golang-migrate, else an error
    "START TRANSACTION;\nCREATE TABLE w (a int);\nEND;\n",
    "CREATE TABLE ok (a int);\nSAVEPOINT s;\n",
    "CREATE TABLE a (x int);\nSELEC 1;\n",  # a syntax error, with its position
    "CREATE TABLE é (x int);\nSELECT 'ü' +;\n",
    "",
    "-- only a comment\n",
    f"CREATE TABLE up1 (a int);\n{DOWN_MARKER}\nDROP TABLE up1;\n",
]


def _strings_in(path: Path) -> Iterator[str]:
    """Every string constant of a test module that parses as SQL with a statement in it."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ";" in node.value:
            try:
                if parser.parse_sql(node.value):
                    yield node.value
            except parser.ParseError:
                continue


def _corpus() -> list[str]:
    texts = list(EDGES)
    for path in sorted(HERE.glob("*.py")):
        texts += _strings_in(path)
    texts += [p.read_text() for p in sorted((ROOT / "migrations").rglob("*.sql"))]
    texts += [c.sql for c in lint_corpus.CASES] + [c.setup for c in lint_corpus.CASES]
    texts += [lint_corpus.SEED]
    texts += [c.change for c in diff_corpus.CASES] + [c.setup for c in diff_corpus.CASES]
    texts += test_migrate_layouts.UPS + test_migrate_layouts.DOWNS + test_migrate_layouts.FLYWAY_DDL
    unique = list(dict.fromkeys(t for t in texts if isinstance(t, str)))
    return unique


CORPUS = _corpus()


def _fields(statements: tuple[Statement, ...]) -> list[tuple[object, ...]]:
    return [
        (
            s.index,
            s.text,
            s.offset,
            s.line,
            s.column,
            s.no_transaction,
            s.neutral,
            s.concurrent_index,
            s.do_body_line,
            s.sets_role,
            s.keeps_session,
        )
        for s in statements
    ]


def _oracle(path: Path, text: str, start: int, end: int, *, unwrap: bool = False) -> object:
    lines = _LineIndex(text)
    try:
        tokens = _scan(path, text, 0, lines)
        return _fields(
            split_with_ast(path, text, start, end, tokens, lines, unwrap_transaction=unwrap)
        )
    except MigrationFileError as exc:
        return ("error", str(exc), exc.line)


def _new(split: object) -> object:
    try:
        return _fields(split())  # type: ignore[operator]
    except MigrationFileError as exc:
        return ("error", str(exc), exc.line)


def test_the_corpus_is_large() -> None:
    # Hundreds of files: the tests' own, both corpora, the histories and the edge cases.
    assert len(CORPUS) > 300, len(CORPUS)


@pytest.mark.parametrize("unwrap", [False, True], ids=["plain", "unwrap-transaction"])
def test_every_file_splits_as_before(unwrap: bool) -> None:
    path = Path("migrations/sql/0001_x.sql")
    differences = []
    for text in CORPUS:
        new = _new(lambda text=text: split_statements(path, text, unwrap_transaction=unwrap))
        old = _oracle(path, text, 0, len(text), unwrap=unwrap)
        if new != old:
            differences.append((text, new, old))
    assert differences == []


def test_sections_split_as_before() -> None:
    """A part of a file (the down part after its marker): positions counted in the whole file."""
    path = Path("migrations/sql/0001_x.sql")
    differences = []
    for text in CORPUS:
        for start in sorted({0, len(text) // 3, text.find("\n") + 1}):
            new = _new(lambda text=text, start=start: split_section(path, text, start, len(text)))
            old = _oracle(path, text, start, len(text))
            if new != old:
                differences.append((text, start, new, old))
    assert differences == []


def test_the_syntax_tree_of_each_statement_is_the_files() -> None:
    """What the linter reads (``Statement.tree``, parsed from the statement's own text) is the
    tree pglast builds for that statement inside the whole file (pglast ignores positions)."""
    path = Path("migrations/sql/0001_x.sql")
    compared = 0
    for text in CORPUS:
        try:
            whole = [raw.stmt for raw in parser.parse_sql(text)]
            statements = split_statements(path, text)
        except (parser.ParseError, MigrationFileError):
            continue
        assert [s.tree for s in statements] == whole, text
        compared += len(whole)
    assert compared > 400, compared


def test_edge_cases_are_what_they_say() -> None:
    """The oracle itself, on the cases the new split had to get right (non-ASCII offsets)."""
    path = Path("migrations/sql/0001_x.sql")
    first = split_statements(path, EDGES[0])
    assert [s.text for s in first] == [
        "CREATE TABLE é (\"ü\" text DEFAULT 'naïve €')",
        "INSERT INTO é VALUES ('😀')",
        "SELECT 'x'",
    ]
    assert [(s.line, s.column) for s in first] == [(2, 1), (3, 1), (4, 1)]
    reindex = split_statements(path, EDGES[3])
    assert [s.no_transaction for s in reindex] == [
        "REINDEX CONCURRENTLY",
        None,
        None,
        "REINDEX CONCURRENTLY",
        "REINDEX CONCURRENTLY",
        "REINDEX CONCURRENTLY",
        "REINDEX CONCURRENTLY",
        None,
        "REINDEX CONCURRENTLY",
        "REINDEX SYSTEM",
        "REINDEX DATABASE",
        None,
    ]
