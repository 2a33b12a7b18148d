"""Migration files: discover them, parse them with pglast, split them into statements.

A file is named ``<version>_<name>.sql``: the version is the leading run of
digits, of any width, compared as a number (``1_init.sql``, ``0001_init.sql``,
``20240101120000_init.sql`` and diesel's ``00000000000000_diesel_initial_setup``
all work); the name after the first ``_`` is free text. Files apply in version
order; two files with the same version are an error. Everything after a line
``-- querykit:down`` is the down part.

Files are read and checksummed when discovered, and parsed only when a command
needs their statements (``up`` of a pending file, ``down``), so ``status`` of an
up-to-date database parses nothing. Nothing here touches a database::

    >>> [m.filename for m in discover(Path("migrations/sql"))]
    ['0001_create_users.sql', '0002_add_email_index.sql']
    >>> m = load_migration(Path("migrations/sql/0002_add_email_index.sql"))
    >>> m.up[0].text, m.up[0].line, m.up_transactional
    ('CREATE INDEX CONCURRENTLY users_email ON users (email)', 1, False)
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from pglast import parser

from ..errors import MigrationFileError
from .version import Version

__all__ = [
    "DOWN_MARKER",
    "NO_TRANSACTION_MARKER",
    "ConcurrentIndex",
    "Migration",
    "Scheme",
    "Statement",
    "discover",
    "load_migration",
    "new_migration",
    "parse_migration",
]

DOWN_MARKER = "-- querykit:down"
NO_TRANSACTION_MARKER = "-- querykit:no-transaction"
_DIRECTIVES = {"down", "no-transaction"}
_DIRECTIVE = re.compile(r"--\s*querykit:(\S*)\s*$")
_FILE_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.*\S.*)\.sql$", re.DOTALL)
_TIMESTAMP = "%Y%m%d%H%M%S"
_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
_NAME_HINT = (
    "name migration files <version>_<name>.sql, the version a run of digits "
    "(0001_create_users.sql, 20240101120000_create_users.sql)"
)


class Scheme(Enum):
    """How a file numbers its version; ``new`` continues the scheme of the latest file."""

    SEQUENTIAL = "NNNN"
    TIMESTAMP = "YYYYMMDDHHMMSS"


def scheme_of(digits: str) -> Scheme:
    """14 digits or more read as a timestamp (diesel's 00000000000000 included), fewer as a counter."""
    return Scheme.TIMESTAMP if len(digits) >= 14 else Scheme.SEQUENTIAL


@dataclass(frozen=True)
class ConcurrentIndex:
    """What a failed CONCURRENTLY statement may leave behind as an INVALID index.

    ``relation`` is the table of a CREATE INDEX or REINDEX TABLE, the index of a
    REINDEX INDEX. ``index`` is the name CREATE INDEX gives, None for REINDEX.
    """

    schema: str | None
    relation: str
    index: str | None
    reindex_index: bool = False


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a migration, with where it starts in the file."""

    index: int
    """1-based position in its part (up or down)."""
    text: str
    offset: int
    """Character offset of the first character in the file."""
    line: int
    column: int
    no_transaction: str | None = None
    """Why it cannot run inside a transaction (e.g. ``"CREATE INDEX CONCURRENTLY"``), else None."""
    neutral: bool = False
    """A SET or RESET: it fits a transactional and a non-transactional file alike."""
    concurrent_index: ConcurrentIndex | None = None
    do_body_line: int | None = None
    """For a DO block: the file line where its body starts (PL/pgSQL counts lines from there)."""
    node: Any = field(default=None, repr=False, compare=False)
    """pglast's syntax tree when the caller has one; else :attr:`tree` parses the text."""
    sets_role: bool = False
    """SET [LOCAL] ROLE or SET SESSION AUTHORIZATION: the ledger write must reset it first."""
    keeps_session: bool = False
    """Plain DDL or DML that leaves the session as it found it (no SET, SELECT, DO, CALL,
    PREPARE, LISTEN, cursor or temporary table): the next file needs no session reset."""

    @cached_property
    def tree(self) -> Any:
        """pglast's syntax tree of the statement (the linter reads it), built on first use.

        Splitting a file reads libpg_query's JSON tree, a tenth of the CPU of
        pglast's Python objects: ``migrate up`` with the lint off builds none.
        """
        if self.node is not None:
            return self.node
        return parser.parse_sql(self.text)[0].stmt

    @property
    def sha256(self) -> str:
        """The hash the ledger keeps per applied statement of a partly applied file."""
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Parsed:
    """The statements of a file, or why it has none that can run."""

    up: tuple[Statement, ...] = ()
    down: tuple[Statement, ...] | None = None
    no_transaction_marker: bool = False
    error: MigrationFileError | None = None


Reader = Callable[["Migration"], "Parsed"]
"""How a layout turns a migration's text into statements (querykit's own: :func:`read_querykit`)."""


@dataclass(frozen=True)
class Migration:
    """One migration, read and checksummed; its SQL is parsed on first use.

    ``path`` is the file holding the up SQL; ``filename`` is the name the ledger
    records (the file name, or the directory name for Prisma and diesel).
    """

    path: Path
    version: Version
    version_text: str
    name: str
    checksum: str
    """sha256 of the migration's text (up, then down when in another file), CRLF read as LF."""
    text: str = field(repr=False)
    decode_error: MigrationFileError | None = field(default=None, repr=False, compare=False)
    label: str | None = None
    """The ledger name when it is not the file name (Prisma's and diesel's directory)."""
    down_path: Path | None = None
    """The file holding the down SQL when it is not ``path`` (diesel, sqlx, golang-migrate)."""
    down_text: str | None = field(default=None, repr=False)
    reader: Reader | None = field(default=None, repr=False, compare=False)
    """None: querykit's own format, with ``-- querykit:`` directives."""

    @property
    def filename(self) -> str:
        """The name shown for the file: its label, or the file name."""
        return self.label or self.path.name

    @property
    def scheme(self) -> Scheme:
        """The version scheme of the file name (a sequence number or a timestamp)."""
        return scheme_of(self.version_text)

    @cached_property
    def parsed(self) -> Parsed:
        """The file parsed once; a parse or decode error is kept, not raised, until ``check()``."""
        if self.decode_error is not None:
            return Parsed(error=self.decode_error)
        if self.reader is None:
            return _parse_querykit(self.path, self.text, Path.cwd())
        try:
            return self.reader(self)
        except MigrationFileError as exc:
            return Parsed(error=exc)

    def check(self) -> Migration:
        """Raise the file's content error (bad SQL, no statements), if it has one."""
        if self.parsed.error is not None:
            raise self.parsed.error
        return self

    @property
    def up(self) -> tuple[Statement, ...]:
        """The statements of the up part (raises MigrationFileError for a bad file)."""
        return self.check().parsed.up

    @property
    def down(self) -> tuple[Statement, ...] | None:
        """None when the file has no ``-- querykit:down`` part with statements."""
        return self.check().parsed.down

    @property
    def no_transaction_marker(self) -> bool:
        """Whether the file is marked to run outside a transaction."""
        return self.check().parsed.no_transaction_marker

    @property
    def up_transactional(self) -> bool:
        """Whether the up part runs in one transaction."""
        return _transactional(self.up, self.no_transaction_marker)

    @property
    def down_transactional(self) -> bool:
        """Whether the down part runs in one transaction."""
        return _transactional(self.down or (), self.no_transaction_marker)

    @property
    def problem(self) -> str | None:
        """Why ``up`` would refuse this file: its content error, or mixed statement kinds."""
        if self.parsed.error is not None:
            return str(self.parsed.error)
        return self.mixing_problem()

    def mixing_problem(self, part: str = "up") -> str | None:
        """Why this part may not run, when it mixes both kinds of statements without the marker."""
        statements = self.up if part == "up" else (self.down or ())
        if self.no_transaction_marker:
            return None
        outside = [s for s in statements if s.no_transaction]
        inside = [s for s in statements if not s.no_transaction and not s.neutral]
        if not outside or not inside:
            return None
        first_out, first_in = outside[0], inside[0]
        return (
            f"{display_path(self.path)}:{first_out.line}: {first_out.no_transaction} cannot run inside a "
            f"transaction, but the {part} part also has statements that need one (line "
            f"{first_in.line}); split it into two files, or add a line "
            f"'{NO_TRANSACTION_MARKER}' to run every statement on its own "
            "(a failure then leaves the earlier statements applied)"
        )


def _transactional(statements: tuple[Statement, ...], marker: bool) -> bool:
    return not marker and not any(s.no_transaction for s in statements)


def discover(directory: Path) -> list[Migration]:
    """Every migration in ``directory``, read and sorted by version; parsed later, on use.

    Files not ending in ``.sql`` and hidden files are ignored. A directory that
    does not exist, bad names and shared versions are errors; all bad names
    are reported at once.
    """
    return [read_migration(path) for path in migration_paths(directory)]


def migration_paths(directory: Path) -> list[Path]:
    """The migration files of ``directory`` sorted by version, names validated, not read."""
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise MigrationFileError(
            f"migrations directory {display_path(directory)} {what}; run from the project "
            "directory, or point to the files with --dir or the 'migrations' setting "
            "(querykit migrate new creates the directory)",
            path=str(directory),
        )
    candidates = [
        path
        for path in directory.iterdir()
        if not path.name.startswith(".") and path.suffix == ".sql" and path.is_file()
    ]
    problems: list[str] = []
    by_version: dict[int, list[Path]] = {}
    for path in sorted(candidates):
        parsed = _parse_name(path)
        if isinstance(parsed, str):
            problems.append(parsed)
        else:
            by_version.setdefault(parsed.version, []).append(path)
    for version, paths in sorted(by_version.items()):
        if len(paths) > 1:
            names = " and ".join(p.name for p in paths)
            problems.append(
                f"{display_path(directory)}: {names} share version {version}; every file "
                "needs its own version, rename all but one"
            )
    if problems:
        head = (
            f"{len(problems)} problem(s) with migration file names: " if len(problems) > 1 else ""
        )
        raise MigrationFileError(head + "; ".join(problems), path=str(directory))
    return [paths[0] for _, paths in sorted(by_version.items())]


def directory_scheme(directory: Path) -> Scheme | None:
    """The scheme of the latest file of ``directory``, None when it has none."""
    paths = migration_paths(directory)
    if not paths:
        return None
    last = _parse_name(paths[-1])
    assert not isinstance(last, str)
    return scheme_of(last.digits)


class _Name(NamedTuple):
    version: int
    digits: str
    name: str


def _parse_name(path: Path) -> _Name | str:
    """The version and name of ``path``, or what is wrong with it and what to do."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        return f"{display_path(path)}: not a migration file name; {_NAME_HINT}"
    return _Name(int(match["version"]), match["version"], match["name"])


def snippet(text: str, limit: int = 160) -> str:
    """``text`` on one line, cut at ``limit`` characters, for messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it, for messages."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_bytes(path: Path) -> bytes:
    """A migration file's bytes; an unreadable file is an error naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MigrationFileError(
            f"{display_path(path)}: cannot read: {exc.strerror}", path=str(path)
        ) from exc


def read_migration(path: Path) -> Migration:
    """Read and checksum one migration file; its SQL is parsed on first use."""
    return _migration(path, read_bytes(path))


def load_migration(path: Path) -> Migration:
    """Read and parse one migration file; bad SQL is an error naming file:line:column."""
    return read_migration(path).check()


def parse_migration(path: Path, data: bytes) -> Migration:
    """Parse the content of a migration file named ``path``; syntax errors name file:line:column."""
    return _migration(path, data).check()


def _migration(path: Path, data: bytes) -> Migration:
    parsed = _parse_name(path)
    if isinstance(parsed, str):
        raise MigrationFileError(parsed, path=str(path))
    text, error = decode_sql(path, data)
    return Migration(
        path=path,
        version=Version((parsed.version,)),
        version_text=parsed.digits,
        name=parsed.name,
        checksum=hashlib.sha256(text.encode()).hexdigest(),
        text=text,
        decode_error=error,
    )


def decode_sql(path: Path, data: bytes) -> tuple[str, MigrationFileError | None]:
    """The file's text without BOM, CRLF read as LF; invalid UTF-8 is kept as an error."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        error = MigrationFileError(
            f"{display_path(path)}:{line}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8",
            path=str(path),
            line=line,
        )
        return data.decode("utf-8", "replace").replace("\r\n", "\n"), error
    return text.replace("\r\n", "\n"), None


@lru_cache(maxsize=4096)
def _parse_querykit(path: Path, text: str, cwd: Path) -> Parsed:
    """One parse per file content in a process: ``migrate up`` lints the pending files,
    then applies them, and parsing is most of the work of either. The current directory
    is part of the key because messages name files relative to it."""
    try:
        return _parse_text(path, text)
    except MigrationFileError as exc:
        return Parsed(error=exc)


def read_querykit(m: Migration) -> Parsed:
    """querykit's format: ``-- querykit:down`` starts the down part, ``-- querykit:no-transaction``."""
    return _parse_text(m.path, m.text)


def split_statements(
    path: Path, text: str, *, unwrap_transaction: bool = False
) -> tuple[Statement, ...]:
    """The statements of a whole file. ``unwrap_transaction`` drops a BEGIN first and COMMIT
    last, which tools that do not wrap files in a transaction (golang-migrate) teach."""
    lines = _LineIndex(text)
    tokens = _scan(path, text, 0, lines)
    return _split(path, text, 0, len(text), tokens, lines, unwrap_transaction=unwrap_transaction)


def no_statements(path: Path, what: str = "") -> MigrationFileError:
    return MigrationFileError(
        f"{display_path(path)}: has no SQL statements{what}; write the migration, or delete the file",
        path=str(path),
    )


def _parse_text(path: Path, text: str) -> Parsed:
    lines = _LineIndex(text)
    tokens = _scan(path, text, 0, lines)
    down_at: int | None = None
    down_end = len(text)
    no_tx = False
    for token in tokens:
        if token.name != "SQL_COMMENT":
            continue
        comment = text[token.start : token.end + 1]
        directive = _DIRECTIVE.match(comment)
        if directive is None:
            continue
        line = lines.position(token.start)[0]
        at = f"{display_path(path)}:{line}"
        word = directive[1]
        if word not in _DIRECTIVES:
            known = ", ".join(f"'-- querykit:{d}'" for d in sorted(_DIRECTIVES))
            raise MigrationFileError(
                f"{at}: unknown directive '{comment.strip()}'; known ones are {known}",
                path=str(path),
                line=line,
            )
        if text[lines.starts[line - 1] : token.start].strip():
            raise MigrationFileError(
                f"{at}: '{comment.strip()}' must be on a line of its own", path=str(path), line=line
            )
        if word == "no-transaction":
            no_tx = True
        elif down_at is not None:
            raise MigrationFileError(
                f"{at}: a second '{DOWN_MARKER}' line; a file has one down part",
                path=str(path),
                line=line,
            )
        else:
            down_at, down_end = token.start, token.end + 1
    up_end = down_at if down_at is not None else len(text)
    up = _split(path, text, 0, up_end, tokens, lines)
    if not up:
        raise no_statements(path, f" before '{DOWN_MARKER}'" if down_at is not None else "")
    down = _split(path, text, down_end, len(text), tokens, lines) if down_at is not None else None
    return Parsed(up=up, down=down or None, no_transaction_marker=no_tx)


def line_column(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of character ``offset`` in ``text``."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


class _LineIndex:
    """Character offset → (line, column), both 1-based."""

    def __init__(self, text: str) -> None:
        lengths = (len(line) + 1 for line in text.split("\n")[:-1])
        self.starts = list(itertools.accumulate(lengths, initial=0))

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


def _syntax_error(
    path: Path, exc: parser.ParseError, base: int, lines: _LineIndex
) -> MigrationFileError:
    message, location = (*exc.args, None, None)[:2]
    if isinstance(location, int):
        line, column = lines.position(base + location)
        return MigrationFileError(
            f"{display_path(path)}:{line}:{column}: {message}; fix the SQL (nothing was applied)",
            path=str(path),
            line=line,
        )
    return MigrationFileError(
        f"{display_path(path)}: {message}; fix the SQL (nothing was applied)", path=str(path)
    )


def _scan(path: Path, text: str, base: int, lines: _LineIndex) -> list[Any]:
    try:
        return list(parser.scan(text))
    except parser.ParseError as exc:
        raise _syntax_error(path, exc, base, lines) from None


def split_section(path: Path, text: str, start: int, end: int) -> tuple[Statement, ...]:
    """The statements of ``text[start:end]``, positions counted in the whole ``text``."""
    lines = _LineIndex(text)
    tokens = _scan(path, text, 0, lines)
    return _split(path, text, start, end, tokens, lines)


def _split(
    path: Path,
    text: str,
    start: int,
    end: int,
    tokens: list[Any],
    lines: _LineIndex,
    *,
    unwrap_transaction: bool = False,
) -> tuple[Statement, ...]:
    """The statements of ``text[start:end]``, each trimmed to its first and last token.

    libpg_query's JSON tree, read by ``json``, says where each statement is and
    what it is, for a tenth of the CPU of pglast's Python syntax tree (which only
    the linter needs: :attr:`Statement.tree` builds it on first use).
    """
    section = text[start:end]
    try:
        raw = json.loads(parser.parse_sql_json(section)).get("stmts", [])
    except parser.ParseError as exc:
        raise _syntax_error(path, exc, start, lines) from None
    if unwrap_transaction and len(raw) >= 2 and _wraps(_node(raw[0]), _node(raw[-1])):
        raw = raw[1:-1]
    chars = _char_offsets(section)
    code = [t for t in tokens if start <= t.start < end and t.name not in _COMMENTS]
    token_starts = [t.start for t in code]
    statements: list[Statement] = []
    for number, item in enumerate(raw, 1):
        at = item.get("stmt_location", 0)
        length = item.get("stmt_len", 0)
        lo = start + chars(at)
        hi = start + chars(at + length) if length else end
        first = bisect.bisect_left(token_starts, lo)
        last = bisect.bisect_left(token_starts, hi) - 1
        s_start, s_end = code[first].start, code[last].end + 1
        line, column = lines.position(s_start)
        kind, node = _node(item)
        body_line = None
        if kind == "DoStmt":
            body = next((t for t in code[first : last + 1] if t.name == "SCONST"), None)
            body_line = lines.position(body.start)[0] if body is not None else None
        if kind == "TransactionStmt":
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
                no_transaction=_no_transaction_reason(kind, node),
                neutral=kind == "VariableSetStmt",
                concurrent_index=_concurrent_index(kind, node),
                do_body_line=body_line,
                sets_role=kind == "VariableSetStmt" and node.get("name") in _ROLE_SETTINGS,
                keeps_session=_keeps_session(kind, node),
            )
        )
    return tuple(statements)


_Node = tuple[str, dict[str, Any]]
"""A node of libpg_query's JSON tree: its type (``"IndexStmt"``) and its fields."""


def _node(item: dict[str, Any]) -> _Node:
    """The statement of one ``stmts`` entry of the JSON tree."""
    ((kind, fields),) = item["stmt"].items()
    return kind, fields


def _char_offsets(section: str) -> Callable[[int], int]:
    """libpg_query's byte offsets (in the UTF-8 text) → character offsets in ``section``."""
    if section.isascii():
        return lambda offset: offset
    encoded = section.encode()
    return lambda offset: len(encoded[:offset].decode())


def _wraps(first: _Node, last: _Node) -> bool:
    """BEGIN / START TRANSACTION first and COMMIT / END last."""
    if first[0] != "TransactionStmt" or last[0] != "TransactionStmt":
        return False
    begin, end = first[1].get("kind", ""), last[1].get("kind", "")
    return begin in ("TRANS_STMT_BEGIN", "TRANS_STMT_START") and end == "TRANS_STMT_COMMIT"


_ROLE_SETTINGS = ("role", "session_authorization")


def _keeps_session(kind: str, node: dict[str, Any]) -> bool:
    relation = node.get("relation")
    persistence = relation.get("relpersistence", "p") if relation is not None else "p"
    return kind in _SESSION_NEUTRAL and persistence != "t"


_SESSION_NEUTRAL = frozenset(
    {
        "CreateStmt",
        "IndexStmt",
        "AlterTableStmt",
        "DropStmt",
        "InsertStmt",
        "UpdateStmt",
        "DeleteStmt",
        "CommentStmt",
        "CreateSeqStmt",
        "AlterSeqStmt",
        "ViewStmt",
        "GrantStmt",
        "CreateEnumStmt",
        "AlterEnumStmt",
        "RenameStmt",
        "CreateFunctionStmt",
        "CreateTrigStmt",
        "CreateSchemaStmt",
        "CreateExtensionStmt",
        "CompositeTypeStmt",
        "CreateDomainStmt",
        "CreatePolicyStmt",
    }
)

_OUTSIDE_TRANSACTION = {
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
}


def _no_transaction_reason(kind: str, node: dict[str, Any]) -> str | None:
    """The name of the statement when PostgreSQL refuses to run it inside a transaction block."""
    if kind == "IndexStmt" and node.get("concurrent"):
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and node.get("concurrent"):
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt":
        if _concurrently(node.get("params")):
            return "REINDEX CONCURRENTLY"
        target = node.get("kind", "").removeprefix("REINDEX_OBJECT_")
        if target in ("SYSTEM", "DATABASE"):
            return f"REINDEX {target}"
    if kind == "VacuumStmt" and node.get("is_vacuumcmd"):
        return "VACUUM"
    if kind == "ClusterStmt" and node.get("relation") is None:
        return "CLUSTER without a table"
    if kind == "AlterTableStmt":
        for cmd in node.get("cmds", ()):
            partition = cmd.get("AlterTableCmd", {}).get("def", {}).get("PartitionCmd")
            if partition is not None and partition.get("concurrent"):
                return "DETACH PARTITION CONCURRENTLY"
    return _OUTSIDE_TRANSACTION.get(kind)


def _concurrently(params: list[dict[str, Any]] | None) -> bool:
    """Whether a utility option list says CONCURRENTLY (alone, or with a true value)."""
    for param in params or ():
        option = param.get("DefElem", {})
        if option.get("defname") == "concurrently":
            arg = option.get("arg")
            if arg is None:
                return True  # CONCURRENTLY alone
            ((arg_kind, value),) = arg.items()
            if arg_kind == "Boolean":
                return bool(value.get("boolval", False))
            if arg_kind == "String":
                return value.get("sval", "") not in ("false", "off")
            return True  # a number: PostgreSQL refuses any but 0 and 1
    return False


def _concurrent_index(kind: str, node: dict[str, Any]) -> ConcurrentIndex | None:
    rel = node.get("relation")
    if rel is None or not rel.get("relname"):
        return None
    schema, relation = rel.get("schemaname"), rel["relname"]
    if kind == "IndexStmt" and node.get("concurrent") and node.get("idxname"):
        return ConcurrentIndex(schema, relation, node["idxname"])
    if kind == "ReindexStmt" and _concurrently(node.get("params")):
        is_index = node.get("kind") == "REINDEX_OBJECT_INDEX"
        return ConcurrentIndex(schema, relation, None, reindex_index=is_index)
    return None


_TEMPLATE = """\
-- {filename}
-- Runs in one transaction: all of it applies, or none of it.
-- CREATE INDEX CONCURRENTLY and the like run outside a transaction; a file that
-- mixes them with other statements needs a line '{no_tx}'.



{down}
-- SQL that undoes the statements above, run by 'querykit migrate down'.
"""


def new_migration(directory: Path, name: str, *, now: datetime | None = None) -> Path:
    """Create the next migration file in ``directory`` (created if missing) and return its path.

    The directory's scheme is kept; an empty directory starts at ``0001``::

        >>> new_migration(Path("migrations/sql"), "add users").name
        '0001_add_users.sql'
    """
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise MigrationFileError(
            f"cannot make a file name from {name!r}; use letters, digits and underscores"
        )
    paths = migration_paths(directory) if directory.is_dir() else []
    last = _parse_name(paths[-1]) if paths else None
    assert not isinstance(last, str)
    if last is not None and scheme_of(last.digits) is Scheme.TIMESTAMP:
        stamp = (now or datetime.now(UTC)).replace(microsecond=0, tzinfo=None)
        version = str(max(int(stamp.strftime(_TIMESTAMP)), last.version + 1))
    else:
        version = str(last.version + 1 if last else 1).zfill(len(last.digits) if last else 4)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{version}_{slug}.sql"
    content = _TEMPLATE.format(filename=path.name, no_tx=NO_TRANSACTION_MARKER, down=DOWN_MARKER)
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(content)
    except FileExistsError:
        raise MigrationFileError(
            f"{display_path(path)} already exists (created meanwhile?); run the command again",
            path=str(path),
        ) from None
    return path
