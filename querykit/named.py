"""Named queries: the queries a project keeps in a module, for ``querykit sql`` and tools.

A module's named queries are

- its public module-level query objects (``recent_runs = select(...)``), and
- its public functions defined in that module whose return annotation is a
  querykit query type; they are called with their default arguments, so every
  parameter needs a default (``def failed_runs(hours: int = 24) -> NestedQuery[...]``).

A public function that may build a query but cannot be shown (no return
annotation, or a parameter without a default) is not silently dropped:
:func:`find_named` lists it in ``skipped`` with what it needs.

    >>> [q.name for q in load_named("queries", settings)]
    ['failed_runs', 'cost_by_pipeline', ...]
    >>> run_named(q, url, parse_arguments(q, {"hours": "48"}), limit=20).rows
"""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import enum
import inspect
import itertools
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pglast
import psycopg
import sqlalchemy as sa

from ._project import import_project_module
from .build.query import Query
from .build.sqltext import CompiledSQL
from .errors import ConfigError, QueryKitError, ValidationError
from .execute.connect import connect, describe_target
from .execute.diagnose import database_error
from .execute.pool import register_pgvector
from .settings import Settings
from .trusted_sql import trusted

__all__ = [
    "NamedQueries",
    "NamedQuery",
    "NamedRun",
    "Skipped",
    "ddl",
    "explain",
    "find_named",
    "format_params",
    "load_named",
    "named_for_run",
    "not_migrated_hint",
    "parse_arguments",
    "returns_rows",
    "run_named",
    "statements_of",
]


@dataclass(frozen=True)
class NamedQuery:
    """One named query: where it lives, how it is called, and the query itself."""

    module: str
    name: str
    query: Query[Any]
    signature: str
    """``(hours: int = 24)`` for a function, ``""`` for a query object."""
    doc: str
    factory: Any = None
    """The function that builds the query, to call with other arguments; None for an object."""

    @property
    def target(self) -> str:
        """``module:name``, as the CLI and the Studio name the query."""
        return f"{self.module}:{self.name}"


@dataclass(frozen=True)
class Skipped:
    """A public function that looks like a named query but cannot be shown, and why."""

    target: str
    reason: str
    """What it needs: ``no return annotation; ...`` or ``needs arguments (run_id); ...``."""


@dataclass(frozen=True)
class NamedQueries:
    """What :func:`find_named` found: the named queries, and the functions it skipped."""

    queries: list[NamedQuery]
    skipped: list[Skipped]


def load_named(target: str | None, settings: Settings) -> list[NamedQuery]:
    """The named queries of ``module``, ``module:name``, or (None) the configured modules."""
    return find_named(target, settings).queries


def find_named(target: str | None, settings: Settings) -> NamedQueries:
    """Like :func:`load_named`, and also the public functions skipped, each with its reason.

    ``module:name`` naming a skipped function is a ``ConfigError`` that says what
    the function needs; one function that cannot be shown never hides the others.
    """
    if target is None:
        if not settings.queries:
            raise ConfigError(
                "no queries module configured; give a TARGET (module or module:name) or set "
                "queries = [...] in [tool.querykit]"
            )
        parts = [find_named(module, settings) for module in settings.queries]
        return NamedQueries(
            [q for p in parts for q in p.queries], [s for p in parts for s in p.skipped]
        )
    module_name, _, wanted = target.partition(":")
    module = import_project_module(module_name, settings)
    found, skipped = _named_in(module)
    if wanted:
        match = [q for q in found if q.name == wanted]
        if not match:
            for s in skipped:
                if s.target == f"{module.__name__}:{wanted}":
                    raise ConfigError(f"{s.target} cannot be shown: {s.reason}")
            names = ", ".join(q.name for q in found) or "none"
            raise ConfigError(f"{module_name} has no named query {wanted!r}; it has: {names}")
        return NamedQueries(match, [])
    return NamedQueries(found, skipped)


def _named_in(module: Any) -> tuple[list[NamedQuery], list[Skipped]]:
    out: list[NamedQuery] = []
    skipped: list[Skipped] = []
    docs = _attribute_docs(module)
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Query):
            out.append(NamedQuery(module.__name__, name, value, "", docs.get(name, "")))
        elif inspect.isfunction(value) and value.__module__ == module.__name__:
            target = f"{module.__name__}:{name}"
            returns, why = _returns_query(value)
            if why:
                skipped.append(Skipped(target, why))
            elif returns:
                named = _call_with_defaults(module.__name__, name, value)
                if isinstance(named, Skipped):
                    skipped.append(named)
                else:
                    out.append(named)
    return out, skipped


def _attribute_docs(module: Any) -> dict[str, str]:
    """Docstrings written under module-level assignments (the convention Sphinx reads)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body
    for node, after in itertools.pairwise(body):
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        if (
            targets
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            for target in targets:
                docs[target] = inspect.cleandoc(after.value.value)
    return docs


def _returns_query(fn: Any) -> tuple[bool, str]:
    """(returns a query type, why it cannot be told): a function without a return
    annotation might build a query, so it is reported, never silently passed over."""
    if inspect.signature(fn).return_annotation is inspect.Signature.empty:
        return False, (
            "no return annotation, so querykit cannot tell whether it builds a query; if it "
            "does, annotate it (-> SelectQuery[...], NestedQuery[...], InsertQuery[...]...)"
        )
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception as exc:  # an annotation that does not resolve: say which
        return False, f"its annotations do not resolve ({type(exc).__name__}: {exc})"
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and issubclass(origin, Query), ""


def _call_with_defaults(module: str, name: str, fn: Any) -> NamedQuery | Skipped:
    signature = inspect.signature(fn, eval_str=True).replace(
        return_annotation=inspect.Signature.empty
    )
    missing = [
        p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty
    ]
    if missing:
        return Skipped(
            f"{module}:{name}",
            f"needs arguments ({', '.join(missing)}) and is shown with its defaults; give "
            f"{'each' if len(missing) > 1 else 'it'} a default (or a placeholder()) in "
            f"{name}{signature}",
        )
    try:
        query = fn()
    except QueryKitError as exc:
        raise ConfigError(f"{module}:{name}: building the query failed: {exc}") from exc
    doc = inspect.getdoc(fn) or ""
    return NamedQuery(module, name, query, str(signature), doc, fn)


def statements_of(query: Query[Any]) -> list[CompiledSQL]:
    """Every statement a query sends: one, or one per level for batched nested queries."""
    many: Callable[[], Iterable[CompiledSQL]] | None = getattr(query, "statements", None)
    return list(many()) if many is not None else [query.to_sql()]


def parse_arguments(named: NamedQuery, texts: Mapping[str, str]) -> dict[str, Any]:
    """Arguments given as text (``--param hours=48``), typed by the function's signature.

    ``int``, ``float``, ``Decimal``, ``bool`` (true/false/1/0/yes/no), ``datetime``
    and ``date`` (ISO 8601; a datetime without offset is UTC), an ``Enum`` by
    member name or value, ``X | None`` (``none`` or an empty text is None), and
    ``str``; other annotations (``list[float]``, a dict) are read as JSON. An
    unknown name or a text that does not convert is a ``ConfigError`` that says
    which parameter and what it takes.
    """
    if not texts:
        return {}
    if named.factory is None:
        raise ConfigError(f"{named.target} is a query object: it takes no parameters")
    return _parse(named.target, named.factory, texts)


def _parse(target: str, factory: Any, texts: Mapping[str, str]) -> dict[str, Any]:
    parameters = inspect.signature(factory, eval_str=True).parameters
    out: dict[str, Any] = {}
    for name, text in texts.items():
        if name not in parameters:
            known = ", ".join(_describe_parameter(p) for p in parameters.values()) or "none"
            raise ConfigError(f"{target} has no parameter {name!r}; its parameters: {known}")
        annotation = parameters[name].annotation
        try:
            out[name] = convert_argument(annotation, text)
        except (ValueError, KeyError, TypeError, decimal.InvalidOperation) as exc:
            raise ConfigError(
                f"parameter {name} of {target}: {text[:80]!r} is not a valid "
                f"{_type_name(annotation)}"
            ) from exc
    return out


def named_for_run(
    target: str, settings: Settings, texts: Mapping[str, str]
) -> tuple[NamedQuery, dict[str, Any]]:
    """The named query ``module:name`` and its arguments parsed from ``texts``, to run.

    Unlike :func:`find_named`, a query function whose parameters lack defaults is
    fine here, when ``texts`` gives each of them; one still missing is a
    ``ConfigError`` that names it and says how to pass it.
    """
    module_name, _, wanted = target.partition(":")
    if not wanted:
        found = find_named(target, settings).queries
        names = ", ".join(q.target for q in found) or "none"
        raise ConfigError(f"--run runs one named query: give module:name (found: {names})")
    module = import_project_module(module_name, settings)
    fn = vars(module).get(wanted)
    is_function = inspect.isfunction(fn) and fn.__module__ == module.__name__
    if not is_function or _returns_query(fn) != (True, ""):
        named = find_named(target, settings).queries[0]  # a query object, or the error why not
        return named, parse_arguments(named, texts)
    arguments = _parse(f"{module.__name__}:{wanted}", fn, texts)
    signature = inspect.signature(fn, eval_str=True).replace(
        return_annotation=inspect.Signature.empty
    )
    missing = [
        p.name
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty and p.name not in arguments
    ]
    if missing:
        given = " ".join(f"--param {m}=VALUE" for m in missing)
        raise ConfigError(
            f"{module.__name__}:{wanted}{signature} needs arguments ({', '.join(missing)}): {given}"
        )
    query = _build(f"{module.__name__}:{wanted}", fn, arguments)
    doc = inspect.getdoc(fn) or ""
    return NamedQuery(module.__name__, wanted, query, str(signature), doc, fn), {}


def convert_argument(annotation: Any, text: str) -> Any:
    """One argument from its text, by its annotation (see :func:`parse_arguments`)."""
    annotation, optional = unwrap_optional(annotation)
    if optional and text.strip().lower() in ("", "none", "null"):
        return None
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is str:
        return text
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered not in _BOOLEANS:
            raise ValueError(text)
        return _BOOLEANS[lowered]
    if annotation is int:
        return int(text)
    if annotation is float:
        return float(text)
    if annotation is decimal.Decimal:
        return decimal.Decimal(text)
    if annotation is dt.datetime:
        moment = dt.datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if annotation is dt.date:
        return dt.date.fromisoformat(text)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if text in annotation.__members__:
            return annotation[text]
        return annotation(text)
    return json.loads(text)


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); anything else → (annotation, False)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation)


def _describe_parameter(p: inspect.Parameter) -> str:
    kind = "" if p.annotation is inspect.Parameter.empty else f": {_type_name(p.annotation)}"
    return f"{p.name}{kind}"


def returns_rows(query: Query[Any]) -> bool:
    """Whether running the query gives rows (a SELECT, or a write with RETURNING)."""
    from .compile import compile_query

    if callable(getattr(query, "statements", None)) or not hasattr(query, "statement"):
        return True  # nested queries and raw SQL: rows
    return compile_query(query)[0].returns_rows is not False


@dataclass(frozen=True)
class NamedRun:
    """The rows of a named query that ran: the first ``limit`` of ``total``."""

    target: str
    columns: list[str]
    rows: list[Any] = field(default_factory=list)
    """Tuples, or dicts for nested queries; at most the ``limit`` asked for."""
    total: int = 0
    written: int | None = None
    """The row count of a write that returns no rows; None for a query that gives rows."""

    @property
    def more(self) -> int:
        """Rows the query gave beyond those kept: shown as "… N more"."""
        return self.total - len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON, for ``querykit sql --run --json``."""
        return {
            "name": self.target,
            "columns": self.columns,
            "rows": [jsonable_row(r) for r in self.rows],
            "row_count": self.total,
            "shown": len(self.rows),
            "more": self.more,
            "written": self.written,
        }


def run_named(
    named: NamedQuery, url: str, arguments: Mapping[str, Any] | None = None, *, limit: int = 20
) -> NamedRun:
    """Build the named query with ``arguments`` (its defaults for the rest) and run it.

    Every row is read (``total`` counts them) and the first ``limit`` are kept
    (0 keeps all). A query that gives no rows (an INSERT without RETURNING)
    reports its row count in ``written``. It runs in its own transaction, so a
    write is committed, as ``db.execute()`` would.
    """
    from .execute.database import connect as connect_database

    query = build_named(named, arguments or {})
    with connect_database(url, min_size=1, max_size=1) as db:
        if not returns_rows(query):
            return NamedRun(named.target, [], written=db.execute(query))
        rows = db.all(query)
    kept = rows if limit <= 0 else rows[:limit]
    width = len(rows[0]) if rows and not isinstance(rows[0], dict) else 0
    columns = list(rows[0]) if rows and isinstance(rows[0], dict) else result_names(query, width)
    return NamedRun(named.target, columns, list(kept), len(rows))


def build_named(named: NamedQuery, arguments: Mapping[str, Any]) -> Query[Any]:
    """The named query built with ``arguments``; the user's function refusing them is a
    ``ValidationError`` naming it."""
    if not arguments or named.factory is None:
        return named.query
    return _build(named.target, named.factory, arguments)


def _build(target: str, factory: Any, arguments: Mapping[str, Any]) -> Query[Any]:
    try:
        query = factory(**arguments)
    except QueryKitError:
        raise
    except Exception as exc:  # the user's function refused the arguments
        raise ValidationError(f"{target} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(query, Query):
        raise ValidationError(f"{target} returned {type(query).__name__}, not a query")
    return query


def jsonable_row(row: Any) -> Any:
    """A row (tuple, or dict of a nested query) as JSON data."""
    from .codecs import json_safe

    if isinstance(row, dict):
        return {str(k): jsonable_row(v) for k, v in row.items()}
    if isinstance(row, list | tuple):
        return [jsonable_row(v) for v in row]
    return json_safe(row)


def result_names(query: Any, width: int) -> list[str]:
    """Column headings for a query's rows: its selected or returned names, else numbers."""
    statement = None if callable(getattr(query, "statements", None)) else query.statement
    exported = getattr(statement, "exported_columns", None)
    names = list(exported.keys()) if exported is not None else _raw_names(query.to_sql().sql)
    if width == 0:  # no rows: the names as declared
        return names
    if len(names) != width:
        names = [f"column {i}" for i in range(1, width + 1)]
    return names


def _raw_names(sql: str) -> list[str]:
    """Output names of hand-written SQL, as PostgreSQL would name them (alias or last field)."""
    try:
        stmt = pglast.parse_sql(sql.replace("%s", "NULL"))[-1].stmt
    except pglast.parser.ParseError:
        return []
    names = []
    for target in getattr(stmt, "targetList", None) or ():
        fields = getattr(target.val, "fields", None)
        if target.name:
            names.append(target.name)
        elif fields and hasattr(fields[-1], "sval"):
            names.append(fields[-1].sval)
        else:
            names.append("?column?")
    return names


def not_migrated_hint(settings: Settings) -> str | None:
    """Why a table may be missing: the migrations this database has not applied, and the
    command that applies them; None when none is pending (or the runner cannot tell)."""
    from . import migrate

    try:
        report = migrate.status(settings)
    except QueryKitError:
        return None
    pending = report.of("pending")
    if not pending:
        return None
    total = len(report.entries)
    return (
        f"the database is not migrated: {len(pending)} of {total} migration(s) are pending "
        f"(first: {pending[0].filename}); apply them with: querykit migrate up"
    )


def explain(url: str, compiled: CompiledSQL, *, analyze: bool = False) -> str:
    """EXPLAIN (or EXPLAIN ANALYZE) of one statement on the database, as text.

    ANALYZE runs the statement, so it runs inside a transaction that is rolled
    back: an INSERT shown with --analyze writes nothing. A statement the server
    refuses (or, with ANALYZE, fails while running) is a ``DatabaseError``.
    """
    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    statement = f"EXPLAIN ({options}) {compiled.sql}"
    with connect(url) as conn:
        register_pgvector(conn)  # the parameters are those the pool sends: vectors too
        try:
            with conn.transaction(force_rollback=True):
                for name, value in compiled.settings:
                    conn.execute("SELECT set_config(%s, %s, true)", (name, value))
                rows = conn.execute(trusted(statement), compiled.params).fetchall()
        except psycopg.Error as exc:
            raise database_error(exc, statement, describe_target(url), lost=conn.closed) from exc
    return "\n".join(str(r[0]) for r in rows)


def ddl(schema_module: str, settings: Settings) -> str:
    """CREATE statements for the tables in ``schema_module``: a start for a migration file."""
    from .columns import as_vector_type
    from .schema.indexes import ddl_text

    module = import_project_module(schema_module, settings)
    metadatas = [v for v in vars(module).values() if isinstance(v, sa.MetaData)]
    if not metadatas:
        raise ConfigError(f"{schema_module} has no SQLAlchemy MetaData; is it the schema module?")
    statements: list[str] = []
    needs_vector = any(
        as_vector_type(c.type) is not None
        for md in metadatas
        for t in md.tables.values()
        for c in t.columns
    )
    if needs_vector:
        statements.append("CREATE EXTENSION IF NOT EXISTS vector")

    def collect(sql: Any, *multiparams: Any, **params: Any) -> None:
        statements.append(ddl_text(sql, f"the DDL of {schema_module}").strip())

    engine = sa.create_mock_engine("postgresql+psycopg://", collect)
    for md in metadatas:
        md.create_all(engine, checkfirst=False)
    return "\n\n".join(s + ";" for s in statements)


def format_params(params: Sequence[Any]) -> str:
    """``$1 = 'FAILED', $2 = [0.1, 0.2, ... 384 values]``: parameters for human eyes."""
    return ", ".join(f"${i} = {_short(v)}" for i, v in enumerate(params, 1))


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 6:
        head = ", ".join(_short(v) for v in value[:3])
        return f"[{head}, ... {len(value)} values]"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
