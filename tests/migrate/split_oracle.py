"""The statement split as querykit did it up to December 2026, on pglast's Python syntax tree.

The oracle of tests/migrate/test_migrate_split_differential.py: querykit now
splits on libpg_query's JSON tree (:func:`querykit.migrate.files._split`),
which must find the same statements, positions and kinds. Kept verbatim.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

from pglast import ast, parser

from querykit.errors import MigrationFileError
from querykit.migrate.files import (
    _COMMENTS,
    NO_TRANSACTION_MARKER,
    ConcurrentIndex,
    Statement,
    _LineIndex,
    _syntax_error,
    display_path,
)


def split_with_ast(
    path: Path,
    text: str,
    start: int,
    end: int,
    tokens: list[Any],
    lines: _LineIndex,
    *,
    unwrap_transaction: bool = False,
) -> tuple[Statement, ...]:
    """The statements of ``text[start:end]``, each trimmed to its first and last token."""
    section = text[start:end]
    try:
        raw = list(parser.parse_sql(section))
    except parser.ParseError as exc:
        raise _syntax_error(path, exc, start, lines) from None
    if unwrap_transaction and len(raw) >= 2 and _wraps(raw[0].stmt, raw[-1].stmt):
        raw = raw[1:-1]
    code = [t for t in tokens if start <= t.start < end and t.name not in _COMMENTS]
    token_starts = [t.start for t in code]
    statements: list[Statement] = []
    for number, item in enumerate(raw, 1):
        lo = start + (item.stmt_location or 0)
        hi = lo + item.stmt_len if item.stmt_len else end
        first = bisect.bisect_left(token_starts, lo)
        last = bisect.bisect_left(token_starts, hi) - 1
        s_start, s_end = code[first].start, code[last].end + 1
        line, column = lines.position(s_start)
        node = item.stmt
        body_line = None
        if isinstance(node, ast.DoStmt):
            body = next((t for t in code[first : last + 1] if t.name == "SCONST"), None)
            body_line = lines.position(body.start)[0] if body is not None else None
        if isinstance(node, ast.TransactionStmt):
            raise MigrationFileError(
                f"{display_path(path)}:{line}:{column}: {text[s_start:s_end]!r} controls the transaction; "
                "remove it: querykit runs each file in its own transaction (or statement by "
                f"statement with '{NO_TRANSACTION_MARKER}')",
                path=str(path),
                line=line,
            )
        statements.append(
            Statement(
                index=number,
                text=text[s_start:s_end],
                offset=s_start,
                line=line,
                column=column,
                no_transaction=_no_transaction_reason(node),
                neutral=isinstance(node, ast.VariableSetStmt),
                concurrent_index=_concurrent_index(node),
                do_body_line=body_line,
                node=node,
                sets_role=_sets_role(node),
                keeps_session=_keeps_session(node),
            )
        )
    return tuple(statements)


def _wraps(first: Any, last: Any) -> bool:
    """BEGIN / START TRANSACTION first and COMMIT / END last."""
    if not (isinstance(first, ast.TransactionStmt) and isinstance(last, ast.TransactionStmt)):
        return False
    begin, end = getattr(first.kind, "name", ""), getattr(last.kind, "name", "")
    return begin in ("TRANS_STMT_BEGIN", "TRANS_STMT_START") and end == "TRANS_STMT_COMMIT"


def _keeps_session(node: Any) -> bool:
    relation = getattr(node, "relation", None)
    persistence = getattr(relation, "relpersistence", "p") if relation is not None else "p"
    return isinstance(node, _SESSION_NEUTRAL) and persistence != "t"


_SESSION_NEUTRAL = (
    ast.CreateStmt,
    ast.IndexStmt,
    ast.AlterTableStmt,
    ast.DropStmt,
    ast.InsertStmt,
    ast.UpdateStmt,
    ast.DeleteStmt,
    ast.CommentStmt,
    ast.CreateSeqStmt,
    ast.AlterSeqStmt,
    ast.ViewStmt,
    ast.GrantStmt,
    ast.CreateEnumStmt,
    ast.AlterEnumStmt,
    ast.RenameStmt,
    ast.CreateFunctionStmt,
    ast.CreateTrigStmt,
    ast.CreateSchemaStmt,
    ast.CreateExtensionStmt,
    ast.CompositeTypeStmt,
    ast.CreateDomainStmt,
    ast.CreatePolicyStmt,
)


def _sets_role(node: Any) -> bool:
    return isinstance(node, ast.VariableSetStmt) and node.name in ("role", "session_authorization")


def _no_transaction_reason(node: Any) -> str | None:
    """The name of the statement when PostgreSQL refuses to run it inside a transaction block."""
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt):
        if _concurrently(node.params):
            return "REINDEX CONCURRENTLY"
        kind = node.kind.name.removeprefix("REINDEX_OBJECT_") if node.kind else ""
        if kind in ("SYSTEM", "DATABASE"):
            return f"REINDEX {kind}"
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return "CLUSTER without a table"
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            if isinstance(cmd.def_, ast.PartitionCmd) and cmd.def_.concurrent:
                return "DETACH PARTITION CONCURRENTLY"
    simple = {
        ast.CreatedbStmt: "CREATE DATABASE",
        ast.DropdbStmt: "DROP DATABASE",
        ast.AlterSystemStmt: "ALTER SYSTEM",
        ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
        ast.DropTableSpaceStmt: "DROP TABLESPACE",
    }
    return simple.get(type(node))


def _concurrently(params: Any) -> bool:
    for param in params or ():
        if param.defname == "concurrently":
            arg = param.arg
            value = getattr(arg, "boolval", getattr(arg, "sval", True))
            return value not in (False, "false", "off", 0)
    return False


def _concurrent_index(node: Any) -> ConcurrentIndex | None:
    rel = getattr(node, "relation", None)
    if rel is None or not rel.relname:
        return None
    if isinstance(node, ast.IndexStmt) and node.concurrent and node.idxname:
        return ConcurrentIndex(rel.schemaname, rel.relname, node.idxname)
    if isinstance(node, ast.ReindexStmt) and _concurrently(node.params):
        is_index = node.kind is not None and node.kind.name == "REINDEX_OBJECT_INDEX"
        return ConcurrentIndex(rel.schemaname, rel.relname, None, reindex_index=is_index)
    return None
