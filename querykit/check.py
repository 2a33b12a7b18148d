"""``querykit check``: every named query proven against the migrated schema.

In the spirit of sqlx's compile-time checked queries, without a macro. Every
statement a named query sends (one; each level of a batched nested query; the
json strategy's single statement *and* its levels) is prepared and described
on a shadow database built by querykit's migration runner, over libpq's
extended protocol (``pgconn.prepare`` / ``describe_prepared``). Nothing runs.

What is reported, one finding per problem:

- ``prepare``: the server refuses the statement (SQLSTATE, message, and the
  migration file:line that dropped or renamed what it needs);
- ``param``: the statement prepares with the types PostgreSQL infers, but not
  with the types querykit's codecs send (psycopg's dumpers);
- ``type``: a result column's Python type (the query's declared type, or the
  schema.py column's) differs from what the described type decodes to, e.g.
  ``Column[Decimal]`` described as ``double precision`` gives floats;
- ``null``: a column promised non-optional can be NULL: the catalog's
  ``attnotnull``, and outer joins read from ``EXPLAIN (VERBOSE, GENERIC_PLAN)``
  (the planner's own join tree, after it turned provably non-null outer joins
  into inner ones);
- ``as_``: a nested query's ``as_=`` class whose field types do not fit;
- ``shape``: a declared row type with another number of columns than the statement;
- ``lock``: offline, a statement whose SQL changed since ``--write``.

"head" is what the configured database has applied (all files when it has
applied none); ``pending=True`` also checks head plus the pending files.

    >>> result = check(settings, pending=True)          # doctest: +SKIP
    >>> [f.text() for f in result.findings]             # doctest: +SKIP
    ['queries:run_overview [1/1] prepare 42703 (pending): column pipeline_run.name does not
      exist; migrations/sql/0005_rename.sql:1', ...]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import typing
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy.types import TypeEngine

from . import NestedQuery, Query
from .build.rowtype import field_types, problem, python_type_of
from .build.sqltext import CompiledSQL
from .compile import compile_query
from .errors import ConfigError, QueryKitError

# The internals this tool needs, in one place: the connection helper (one-line errors, masked
# URLs) with pgvector's types, and a query's compiled shape (its result column types).
from .execute.connect import connect
from .execute.pool import register_pgvector
from .migrate import discover, status
from .migrate.files import Migration, display_path
from .migrate.shadow import scratch_shadow
from .migrate.version import Version
from .named import NamedQuery, load_named, statements_of
from .settings import Settings

__all__ = [
    "CheckResult",
    "DescribedColumn",
    "Description",
    "Finding",
    "Statement",
    "check",
    "check_statements",
    "compare",
    "compile_statements",
    "culprit",
    "decoded_type",
    "describe_all",
    "lock_path",
    "schema_columns",
]

LOCK_VERSION = 1


# -- what a statement promises -------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One statement a named query sends, with what its Python types promise."""

    query: str
    """``module:name``."""
    index: int
    count: int
    compiled: CompiledSQL
    declared: tuple[Any, ...] | None
    """The row type the named query declares (``SelectQuery[str, Decimal]``), if per column."""
    sa_types: tuple[TypeEngine[Any], ...]
    """The SQLAlchemy type of each result column, when known (empty otherwise)."""
    row_class: Any = None
    """A nested query's ``as_=`` class, checked against its first level."""
    label: str = ""

    @property
    def sql(self) -> str:
        """The SQL with ``$n`` placeholders, as the server sees it."""
        return self.compiled.numbered()

    @property
    def sql_hash(self) -> str:
        """A stable hash of the statement's SQL text: the lock file's key for it."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def where(self) -> str:
        """Where the statement comes from: ``module:query [i/n label]``."""
        return f"{self.query} [{self.index}/{self.count}{' ' + self.label if self.label else ''}]"


def compile_statements(named: Sequence[NamedQuery]) -> list[Statement]:
    """Every statement of every named query, compiled (no database)."""
    out: list[Statement] = []
    for q in named:
        out.extend(_statements(q))
    return out


def _statements(q: NamedQuery) -> list[Statement]:
    query = q.query
    if isinstance(query, NestedQuery):
        # the json statement as sent, then each level as its batched twin selects it:
        # the levels' columns are what the json statement nests.
        compiled = statements_of(query)
        labels = ["json"] if query.strategy == "json" else []
        if query.strategy == "json":
            compiled += statements_of(query.using("batched"))
        labels += [f"level {i + 1}" for i in range(len(compiled) - len(labels))]
        first_level = 1 if query.strategy == "json" else 0
        return [
            Statement(
                q.target,
                i + 1,
                len(compiled),
                c,
                None,
                (),
                query.row_class if i == first_level else None,
                labels[i],
            )
            for i, c in enumerate(compiled)
        ]
    shape, _ = compile_query(query)
    compiled = statements_of(query)
    return [Statement(q.target, 1, 1, compiled[0], _declared(q), shape.column_types)]


def _declared(q: NamedQuery) -> tuple[Any, ...] | None:
    """The per-column row type the named query is annotated with, if any."""
    try:
        if q.factory is not None:
            hint = typing.get_type_hints(q.factory).get("return")
        else:
            hint = typing.get_type_hints(sys.modules[q.module]).get(q.name)
    except Exception:  # unresolvable annotations: rely on the schema's column types
        return None
    origin = typing.get_origin(hint)
    if not (isinstance(origin, type) and issubclass(origin, Query)):
        return None
    if issubclass(origin, NestedQuery):
        return None
    return typing.get_args(hint)


# -- what the database says ----------------------------------------------------------------


@dataclass(frozen=True)
class DescribedColumn:
    """One result column as the server describes it, with where it comes from."""

    name: str
    type: str
    """As ``format_type`` spells it: ``numeric(12,6)``, ``double precision``, ``status``."""
    typname: str
    kind: str
    """``b`` base, ``e`` enum, ``A`` array, ``c`` composite, ``d`` domain..."""
    nullable: bool | None
    """True when it can be NULL; None when PostgreSQL cannot say (an expression)."""
    source: str | None = None
    """``schema.table.column`` when the column is a plain table column."""

    def to_dict(self) -> dict[str, Any]:
        """The column as JSON, for ``--json`` and the lock file."""
        return {
            "name": self.name,
            "type": self.type,
            "typname": self.typname,
            "kind": self.kind,
            "nullable": self.nullable,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DescribedColumn:
        """The column read back from its JSON form."""
        return cls(d["name"], d["type"], d["typname"], d["kind"], d["nullable"], d["source"])


@dataclass(frozen=True)
class Description:
    """What PREPARE + describe said about one statement, or why it did not prepare."""

    columns: tuple[DescribedColumn, ...] = ()
    params: tuple[str, ...] = ()
    sqlstate: str | None = None
    error: str | None = None
    param_error: bool = False
    """It prepares with inferred parameter types, not with those the codecs send."""

    @property
    def ok(self) -> bool:
        """Whether the statement prepared."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The description as JSON, for the lock file."""
        return {"columns": [c.to_dict() for c in self.columns], "params": list(self.params)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Description:
        """A description read back from the lock file."""
        return cls(tuple(DescribedColumn.from_dict(c) for c in d["columns"]), tuple(d["params"]))


def describe_all(url: str, statements: Sequence[Statement]) -> list[Description]:
    """Prepare and describe every statement on ``url``; nothing is executed."""
    with connect(url, autocommit=True) as conn:
        register_pgvector(conn)
        raw = [_prepare(conn, s) for s in statements]
        oids = {oid for r in raw if isinstance(r, _Raw) for oid in r.all_oids()}
        types = _type_names(conn, oids)
        typed = {
            (o, m) for r in raw if isinstance(r, _Raw) for o, m in zip(r.types, r.mods, strict=True)
        }
        formatted = _formatted(conn, typed)
        attrs = {(t, c) for r in raw if isinstance(r, _Raw) for t, c in r.sources() if t}
        columns = _attributes(conn, attrs)
        out: list[Description] = []
        for statement, r in zip(statements, raw, strict=True):
            if isinstance(r, Description):
                out.append(r)
                continue
            joins = None
            if any(columns.get(key, (None, True))[1] is False for key in r.sources()):
                joins = _outer_nullable(conn, statement.sql, len(r.names))
            out.append(r.description(types, formatted, columns, joins))
        return out


@dataclass
class _Raw:
    names: list[str]
    types: list[int]
    mods: list[int]
    tables: list[int]
    attnums: list[int]
    params: list[int]

    def all_oids(self) -> Iterable[int]:
        return [*self.types, *self.params]

    def sources(self) -> list[tuple[int, int]]:
        return list(zip(self.tables, self.attnums, strict=True))

    def description(
        self,
        types: dict[int, tuple[str, str]],
        formatted: dict[tuple[int, int], str],
        columns: dict[tuple[int, int], tuple[str, bool]],
        joins: list[bool | None] | None,
    ) -> Description:
        out = []
        for i, name in enumerate(self.names):
            typname, kind = types.get(self.types[i], ("?", "b"))
            key = (self.tables[i], self.attnums[i])
            source, nullable = columns.get(key, (None, None))
            may_be_null: bool | None = None
            if source is not None:  # NULL-able in the table, or made so by an outer join
                by_join = joins[i] if joins is not None else False
                may_be_null = nullable or by_join is not False
            display = formatted.get((self.types[i], self.mods[i]), typname)
            out.append(DescribedColumn(name, display, typname, kind, may_be_null, source))
        params = tuple(formatted.get((p, -1), types.get(p, ("?", ""))[0]) for p in self.params)
        return Description(tuple(out), params)


def _prepare(conn: psycopg.Connection[Any], statement: Statement) -> _Raw | Description:
    """PREPARE with the parameter types psycopg will send, then describe."""
    pgconn = conn.pgconn
    sent = _sent_types(conn, statement.compiled.params)
    query = statement.sql.encode()
    result = pgconn.prepare(b"", query, param_types=sent)
    if result.status != pq.ExecStatus.COMMAND_OK:
        failed = _failure(result)
        if any(sent):
            inferred = pgconn.prepare(b"", query)
            if inferred.status == pq.ExecStatus.COMMAND_OK:
                return Description(sqlstate=failed[0], error=failed[1], param_error=True)
        return Description(sqlstate=failed[0], error=failed[1])
    d = pgconn.describe_prepared(b"")
    if d.status != pq.ExecStatus.COMMAND_OK:
        state, message = _failure(d)
        return Description(sqlstate=state, error=message)
    n = d.nfields
    return _Raw(
        [(d.fname(i) or b"?").decode() for i in range(n)],
        [d.ftype(i) for i in range(n)],
        [d.fmod(i) for i in range(n)],
        [d.ftable(i) for i in range(n)],
        [d.ftablecol(i) for i in range(n)],
        [d.param_type(i) for i in range(d.nparams)],
    )


def _sent_types(conn: psycopg.Connection[Any], params: Sequence[Any]) -> list[int]:
    """The type OIDs psycopg sends for these (adapted) values; 0 lets the server infer."""
    tx = Transformer(conn)
    try:
        tx.dump_sequence(params, [PyFormat.AUTO] * len(params))
    except psycopg.Error:
        return [0] * len(params)
    return list(tx.types or [0] * len(params))


def _failure(result: pq.abc.PGresult) -> tuple[str | None, str]:
    state = result.error_field(pq.DiagnosticField.SQLSTATE)
    message = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
    return (
        state.decode() if state else None,
        (message or result.error_message or b"").decode(errors="replace").strip(),
    )


def _type_names(conn: psycopg.Connection[Any], oids: set[int]) -> dict[int, tuple[str, str]]:
    rows = conn.execute(
        "SELECT oid::int, typname::text, CASE WHEN typcategory = 'A' THEN 'A' ELSE typtype END "
        "FROM pg_type WHERE oid = ANY(%s::oid[])",
        (sorted(oids),),
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _formatted(
    conn: psycopg.Connection[Any], typed: set[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    pairs = sorted(typed)
    rows = conn.execute(
        "SELECT o::int, m, format_type(o, nullif(m, -1)) "
        "FROM unnest(%s::oid[], %s::int[]) AS u(o, m)",
        ([p[0] for p in pairs], [p[1] for p in pairs]),
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def _attributes(
    conn: psycopg.Connection[Any], attrs: set[tuple[int, int]]
) -> dict[tuple[int, int], tuple[str, bool]]:
    """``schema.table.column`` and "may be NULL" (not ``attnotnull``) of table columns."""
    pairs = sorted(attrs)
    rows = conn.execute(
        "SELECT a.attrelid::int, a.attnum::int, n.nspname || '.' || c.relname || '.' || a.attname,"
        " NOT a.attnotnull FROM unnest(%s::oid[], %s::int[]) AS u(rel, num)"
        " JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.num"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace",
        ([p[0] for p in pairs], [p[1] for p in pairs]),
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


# -- nullability from the planner's join tree ----------------------------------------------

_REF = re.compile(r'^("(?:[^"]|"")+"|[^\s."()]+)\.("(?:[^"]|"")+"|[^\s."()]+)$')


def _outer_nullable(conn: psycopg.Connection[Any], sql: str, width: int) -> list[bool | None]:
    """Per output column: made NULL-able by an outer join (True), not (False), unknown (None).

    Read from ``EXPLAIN (VERBOSE, GENERIC_PLAN)``: every relation scanned under
    the nullable side of a Left, Right or Full join node is NULL-able, and the
    top node's ``Output`` says which relation each column comes from. A column
    that cannot be traced while the plan has an outer join is unknown, which the
    caller treats as NULL-able: no column is claimed non-null on a guess.
    """
    result = conn.pgconn.exec_(b"EXPLAIN (VERBOSE, GENERIC_PLAN, FORMAT JSON) " + sql.encode())
    value = result.get_value(0, 0) if result.status == pq.ExecStatus.TUPLES_OK else None
    if value is None:  # no plan (a parameter whose type only the codecs know): no guess either
        return [None] * width
    plan = json.loads(bytes(value))[0]["Plan"]
    nullable: set[str] = set()
    scanned: set[str] = set()
    outer = _walk(plan, False, nullable, scanned)
    output = plan.get("Output") or []
    if len(output) != width:
        return [None if outer else False] * width
    found: list[bool | None] = []
    for expr in output:
        m = _REF.match(expr.strip())
        alias = m.group(1).strip('"') if m else None
        if alias is not None and alias in scanned:
            found.append(alias in nullable)
        else:
            found.append(None if outer else False)
    return found


def _walk(node: dict[str, Any], nullable: bool, out: set[str], scanned: set[str]) -> bool:
    """Collect scanned aliases (and those on a nullable side); True if any outer join."""
    alias = node.get("Alias")
    if alias and node.get("Relation Name"):
        scanned.add(alias)
        if nullable:
            out.add(alias)
    join = node.get("Join Type")
    outer = join in ("Left", "Right", "Full")
    for child in node.get("Plans") or []:
        side = child.get("Parent Relationship")
        child_nullable = nullable or (
            (join == "Left" and side == "Inner")
            or (join == "Right" and side == "Outer")
            or join == "Full"
        )
        outer = _walk(child, child_nullable, out, scanned) or outer
    return outer


# -- comparing promises with descriptions ----------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem with one statement of a named query, and against what it was found."""

    query: str
    statement: str
    kind: str
    """prepare, param, type, null, as_, shape or lock."""
    message: str
    against: str
    """head, pending or lock."""
    sqlstate: str | None = None
    migration: str | None = None
    """``file:line`` of the migration that dropped, renamed or changed what the query needs."""
    column: str | None = None
    """``schema.table.column`` of a ``type`` or ``null`` finding on a table column."""

    def text(self) -> str:
        """The finding as one line of the text report."""
        code = f" {self.sqlstate}" if self.sqlstate else ""
        where = f"; {self.migration}" if self.migration else ""
        return f"{self.statement} {self.kind}{code} ({self.against}): {self.message}{where}"

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON, for ``--json``."""
        return {
            "query": self.query,
            "statement": self.statement,
            "kind": self.kind,
            "against": self.against,
            "sqlstate": self.sqlstate,
            "message": self.message,
            "migration": self.migration,
            "column": self.column,
        }


_PG_PYTHON: dict[str, Any] = {}


def _pg_python() -> dict[str, Any]:
    """What psycopg (with querykit's loaders and pgvector's) returns for a type name."""
    if not _PG_PYTHON:
        import datetime as dt
        import uuid
        from decimal import Decimal

        from pgvector import HalfVector, SparseVector, Vector

        for names, tp in (
            (("bool",), bool),
            (("int2", "int4", "int8", "oid"), int),
            (("numeric",), Decimal),
            (("float4", "float8"), float),
            (("text", "varchar", "bpchar", "name", "char", "citext"), str),
            (("date",), dt.date),
            (("timestamp", "timestamptz"), dt.datetime),
            (("time", "timetz"), dt.time),
            (("interval",), dt.timedelta),
            (("uuid",), uuid.UUID),
            (("bytea",), bytes),
            (("vector",), Vector),
            (("halfvec",), HalfVector),
            (("sparsevec",), SparseVector),
        ):
            for name in names:
                _PG_PYTHON[name] = tp
    return _PG_PYTHON


def decoded_type(column: DescribedColumn, sa_type: TypeEngine[Any] | None, computed: bool) -> Any:
    """The Python type querykit hands back for this described column; None when unknown.

    The SQLAlchemy type matters only where querykit's decoders convert: jsonb
    payloads, enums, vectors, ``Numeric(asdecimal=False)`` and an integer
    expression PostgreSQL computes as numeric (``sum(bigint)``).
    """
    from sqlalchemy import Enum, Integer, Numeric

    from .columns import JSONBPayload, as_vector_type

    base = _pg_python().get(column.typname)
    if column.kind == "e":
        base = str
    elif column.kind == "A":
        base = list
    if sa_type is None:
        return base
    if isinstance(sa_type, JSONBPayload) and column.typname in ("json", "jsonb"):
        return sa_type.payload_type
    if isinstance(sa_type, Enum) and (column.kind == "e" or base is str):
        return python_type_of(sa_type)
    if as_vector_type(sa_type) is not None and base is not None and column.typname.endswith("vec"):
        return python_type_of(sa_type)
    if isinstance(sa_type, Numeric) and not sa_type.asdecimal and column.typname == "numeric":
        return float
    if computed and isinstance(sa_type, Integer) and column.typname == "numeric":
        return int
    return base


def compare(
    statement: Statement,
    described: Description,
    schema_columns: dict[str, Any],
    against: str,
) -> list[Finding]:
    """The findings for one statement's promises against one description."""
    out: list[Finding] = []

    def add(kind: str, message: str, column: str | None = None) -> None:
        out.append(Finding(statement.query, statement.where, kind, message, against, column=column))

    cols = described.columns
    declared = statement.declared
    if declared is not None and len(declared) != len(cols):
        add(
            "shape",
            f"declared {len(declared)} column(s), the statement returns {len(cols)} "
            f"({', '.join(c.name for c in cols) or 'none'})",
        )
        declared = None
    decoded: dict[str, tuple[Any, bool | None]] = {}
    for i, col in enumerate(cols):
        schema_col = schema_columns.get(col.source or "")
        sa_type: TypeEngine[Any] | None = None
        if schema_col is not None:
            sa_type = schema_col.type
        elif i < len(statement.sa_types):
            sa_type = statement.sa_types[i]
        actual = decoded_type(col, sa_type, computed=col.source is None)
        decoded[col.name] = (actual, col.nullable)
        if declared is not None:
            annotation = declared[i]
        elif schema_col is not None:
            py = python_type_of(schema_col.type)
            annotation = (py or Any) | None if schema_col.nullable else (py or Any)
        elif sa_type is not None:  # an expression: its nullability is not promised
            py = python_type_of(sa_type)
            annotation = Any if py is None else py | None
        else:
            continue
        why = problem(annotation, actual, may_be_null=col.nullable)
        if why is not None:
            kind = "null" if "can be NULL" in why else "type"
            what = col.source.split(".", 1)[-1] if col.source else "an expression"
            add(kind, f"column {col.name} ({what}, {col.type}): promised {why}", col.source)
    if statement.row_class is not None:
        fields = field_types(statement.row_class)
        for name, annotation in fields.items():
            if name not in decoded:
                continue
            actual, may_be_null = decoded[name]
            why = problem(annotation, actual, may_be_null=may_be_null)
            if why is not None:
                cls = getattr(statement.row_class, "__name__", str(statement.row_class))
                add("as_", f"as_={cls} field {name} is {why}")
    return out


def schema_columns(settings: Settings) -> dict[str, Any]:
    """``schema.table.column`` → the schema.py Column, for the columns statements return."""
    from .migrate.diff.desired import schema_metadata

    try:
        metadata = schema_metadata(settings)
    except QueryKitError:
        return {}
    return {
        f"{table.schema or 'public'}.{table.name}.{column.name}": column
        for table in metadata.tables.values()
        for column in table.columns
    }


# -- which migration broke it ------------------------------------------------------------------

# column "x" of relation "t" | column t.x | relation "t" | type "t" | function f(integer)
_MISSING = re.compile(
    r'(?:column|relation|type|function|table)\s+"?(?:[\w$]+\.)?"?([\w$]+)"?'
    r'(?:\(.*?\))?(?:\s+of relation\s+"[^"]+")?\s+does not exist'
)


def culprit(migrations: Sequence[Migration], message: str, *, newest: Version | None) -> str | None:
    """``file:line`` of the newest migration (≤ ``newest``) that drops or renames the missing name."""
    m = _MISSING.search(message)
    if m is None:
        return None
    return _find_statement(migrations, m.group(1), ("DROP", "RENAME"), newest)


def _find_statement(
    migrations: Sequence[Migration],
    name: str,
    verbs: Sequence[str],
    newest: Version | None,
    *,
    table: str | None = None,
) -> str | None:
    word = _word(name)
    on_table = _word(table) if table is not None else None
    verb = re.compile(r"\b(" + "|".join(verbs) + r")\b", re.IGNORECASE)
    for migration in reversed(migrations):
        if newest is not None and migration.version > newest:
            continue
        try:
            statements = migration.up
        except QueryKitError:
            continue
        for statement in statements:
            text = statement.text
            found_verb = verb.search(text)
            if found_verb is None or (on_table is not None and not on_table.search(text)):
                continue
            found = word.search(text, found_verb.start()) or word.search(text)
            if found is None:
                continue
            line = statement.line + text[: found.start()].count("\n")
            return f"{display_path(migration.path)}:{line}"
    return None


def _word(name: str) -> re.Pattern[str]:
    """``name`` as an SQL identifier: a whole word, or quoted."""
    return re.compile(rf'(?<![\w$"]){re.escape(name)}(?![\w$"])|"{re.escape(name)}"')


# -- the whole check ----------------------------------------------------------------------------


@dataclass
class CheckResult:
    """What ``querykit check`` found: counts, findings, and notes for the reader."""

    queries: int
    statements: int
    against: list[str]
    """What was described: ``head (0004)``, ``pending (0005)``, or ``lock``."""
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: Path | None = None

    @property
    def ok(self) -> bool:
        """True when there is nothing to report (the command exits 0)."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON, for ``--json``."""
        return {
            "ok": self.ok,
            "queries": self.queries,
            "statements": self.statements,
            "against": self.against,
            "findings": [f.to_dict() for f in self.findings],
            "notes": self.notes,
            "written": str(self.written) if self.written else None,
        }

    def text(self) -> str:
        """The text report: notes, one line per finding, and a summary line."""
        lines = list(self.notes)
        against = ", ".join(self.against)
        if self.ok:
            lines.append(
                f"{self.queries} named queries ({self.statements} statements) check out "
                f"against {against}"
            )
        else:
            lines.append(
                f"{len(self.findings)} finding(s) in {self.queries} named queries "
                f"({self.statements} statements) against {against}:"
            )
            lines += [f"  {f.text()}" for f in self.findings]
        if self.written is not None:
            lines.append(f"wrote {display_path(self.written)}")
        return "\n".join(lines)


def lock_path(settings: Settings) -> Path:
    """Where ``--write`` stores the lock file and ``--offline`` reads it."""
    return settings.project_dir / ".querykit" / "queries.lock"


def check(
    settings: Settings,
    *,
    pending: bool = False,
    write: bool = False,
    offline: bool = False,
) -> CheckResult:
    """Check every named query of the configured modules (see the module docstring)."""
    if offline and (pending or write):
        raise ConfigError(
            "--offline reads the lock file; it cannot be combined with --pending or --write"
        )
    named = load_named(None, settings)
    statements = compile_statements(named)
    columns = schema_columns(settings)
    if offline:
        return _check_offline(settings, len(named), statements, columns)
    migrations = discover(settings.migrations)
    head, notes = _head(settings, migrations)
    last = migrations[-1].version if migrations else None
    with ExitStack() as stack:
        shadow = scratch_shadow(stack, settings)
        targets: list[tuple[str, Version | None]] = [("head", head)]
        if pending and last != head:
            targets.append(("pending", last))
        elif pending:
            notes.append("no pending migration: head is the newest file")
        result = CheckResult(len(named), len(statements), [])
        result.notes = notes
        descriptions: list[Description] = []
        for label, version in targets:
            shadow.apply_through(version)
            descriptions = describe_all(shadow.url, statements)
            result.against.append(f"{label} ({_version_text(migrations, version)})")
            changed = [
                m for m in migrations if label == "pending" and (head is None or m.version > head)
            ]
            result.findings += _findings(
                statements, descriptions, columns, label, migrations, version, changed
            )
    result.findings = _dedupe(result.findings)
    if write:
        result.written = _write_lock(lock_path(settings), statements, descriptions)
    return result


def check_statements(
    url: str,
    statements: Sequence[Statement],
    schema_columns: dict[str, Any],
    against: str,
    migrations: Sequence[Migration] = (),
    version: Version | None = None,
) -> list[Finding]:
    """Describe ``statements`` on ``url`` and compare: the part of :func:`check` after the shadow."""
    descriptions = describe_all(url, statements)
    return _findings(statements, descriptions, schema_columns, against, migrations, version)


def _findings(
    statements: Sequence[Statement],
    descriptions: Sequence[Description],
    schema_columns: dict[str, Any],
    against: str,
    migrations: Sequence[Migration],
    version: Version | None,
    changed: Sequence[Migration] = (),
) -> list[Finding]:
    """Findings for described statements; ``changed`` are the migrations new in this target,
    searched for the one that altered a column a ``type`` or ``null`` finding is about."""
    out: list[Finding] = []
    for statement, described in zip(statements, descriptions, strict=True):
        if described.ok:
            out += [
                _changed_by(f, changed, version)
                for f in compare(statement, described, schema_columns, against)
            ]
            continue
        error = described.error or ""
        if described.param_error:
            sent = ", ".join(type(p).__name__ for p in statement.compiled.params)
            error = f"the parameters querykit sends ({sent}) do not fit: {error}"
        where = culprit(migrations, error, newest=version)
        out.append(
            Finding(
                statement.query,
                statement.where,
                "param" if described.param_error else "prepare",
                error,
                against,
                described.sqlstate,
                where,
            )
        )
    return out


def _changed_by(finding: Finding, changed: Sequence[Migration], version: Version | None) -> Finding:
    if not changed or finding.column is None:
        return finding
    _, table, column = finding.column.split(".", 2)
    where = _find_statement(changed, column, ("ALTER", "DROP", "ADD"), version, table=table)
    return dataclasses.replace(finding, migration=where) if where else finding


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """A problem already found at head is not repeated for head + pending."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.statement, f.kind, f.message)
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def _head(settings: Settings, migrations: Sequence[Migration]) -> tuple[Version | None, list[str]]:
    """The newest version applied on the configured database, or the newest file."""
    if not migrations:
        return None, ["no migration files: checking against an empty database"]
    applied = [e.version for e in status(settings).entries if e.state in ("applied", "baseline")]
    if not applied:
        return migrations[-1].version, [
            "the database has no migration applied: head is every migration file"
        ]
    return max(applied), []


def _version_text(migrations: Sequence[Migration], version: Version | None) -> str:
    for m in migrations:
        if m.version == version:
            return m.filename
    return "no migrations"


# -- the lock file ------------------------------------------------------------------------------


def _write_lock(
    path: Path, statements: Sequence[Statement], descriptions: Sequence[Description]
) -> Path:
    queries: dict[str, list[dict[str, Any]]] = {}
    for statement, described in zip(statements, descriptions, strict=True):
        entry = {"sql_sha256": statement.sql_hash, **described.to_dict()}
        if not described.ok:
            entry["error"] = described.error
        queries.setdefault(statement.query, []).append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"version": LOCK_VERSION, "queries": dict(sorted(queries.items()))}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _keep_tracked(path)
    return path


def _keep_tracked(path: Path) -> None:
    """The lock is for CI, so git must see it: the embedded server's ``.querykit/.gitignore``
    (written by querykit, ignoring everything) gets a ``!queries.lock`` line if it lacks one."""
    from .embedded import IGNORE_FILE

    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        return
    text = ignore.read_text(encoding="utf-8")
    if text.startswith(IGNORE_FILE.splitlines()[0]) and f"!{path.name}" not in text.split():
        keep = "".join(IGNORE_FILE.splitlines(keepends=True)[2:])  # the comment and !queries.lock
        ignore.write_text(text + ("" if text.endswith("\n") else "\n") + keep, encoding="utf-8")


def _check_offline(
    settings: Settings,
    queries: int,
    statements: Sequence[Statement],
    schema_columns: dict[str, Any],
) -> CheckResult:
    path = lock_path(settings)
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{display_path(path)} does not exist; run `querykit check --write` with a database first"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{display_path(path)}:{exc.lineno}: not valid JSON ({exc.msg}); "
            "run `querykit check --write` to rewrite it"
        ) from None
    if lock.get("version") != LOCK_VERSION:
        raise ConfigError(
            f"{display_path(path)} has version {lock.get('version')!r}, this querykit writes "
            f"{LOCK_VERSION}; run `querykit check --write`"
        )
    result = CheckResult(queries, len(statements), [f"lock ({display_path(path)})"])
    entries: dict[str, list[dict[str, Any]]] = lock.get("queries", {})
    for statement in statements:
        stored = entries.get(statement.query, [])
        entry = stored[statement.index - 1] if statement.index <= len(stored) else None
        if entry is None or entry.get("sql_sha256") != statement.sql_hash:
            why = "is not in the lock" if entry is None else "changed since the lock was written"
            result.findings.append(
                Finding(
                    statement.query,
                    statement.where,
                    "lock",
                    f"its SQL {why}; run `querykit check --write` against the database",
                    "lock",
                )
            )
            continue
        if entry.get("error"):
            result.findings.append(
                Finding(statement.query, statement.where, "prepare", entry["error"], "lock")
            )
            continue
        described = Description.from_dict(entry)
        result.findings += compare(statement, described, schema_columns, "lock")
    return result
