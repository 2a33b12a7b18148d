"""Named queries: the queries a project keeps in a module, for ``querykit sql`` and tools.

A module's named queries are

- its public module-level query objects (``recent_runs = select(...)``), and
- its public functions defined in that module whose return annotation is a
  querykit query type; they are called with their default arguments, so every
  parameter needs a default (``def failed_runs(hours: int = 24) -> NestedQuery[...]``).

    >>> [q.name for q in load_named("queries", settings)]
    ['failed_runs', 'cost_by_pipeline', ...]
"""

from __future__ import annotations

import ast
import inspect
import itertools
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa

from ._project import import_project_module
from .build.query import Query
from .build.sqltext import CompiledSQL
from .errors import ConfigError, QueryKitError
from .execute.connect import connect, describe_target
from .execute.diagnose import database_error
from .execute.pool import register_pgvector
from .settings import Settings

__all__ = ["NamedQuery", "ddl", "explain", "format_params", "load_named", "statements_of"]


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


def load_named(target: str | None, settings: Settings) -> list[NamedQuery]:
    """The named queries of ``module``, ``module:name``, or (None) the configured modules."""
    if target is None:
        if not settings.queries:
            raise ConfigError(
                "no queries module configured; give a TARGET (module or module:name) or set "
                "queries = [...] in [tool.querykit]"
            )
        return [q for module in settings.queries for q in load_named(module, settings)]
    module_name, _, wanted = target.partition(":")
    module = import_project_module(module_name, settings)
    found = _named_in(module)
    if wanted:
        match = [q for q in found if q.name == wanted]
        if not match:
            names = ", ".join(q.name for q in found) or "none"
            raise ConfigError(f"{module_name} has no named query {wanted!r}; it has: {names}")
        return match
    return found


def _named_in(module: Any) -> list[NamedQuery]:
    out: list[NamedQuery] = []
    docs = _attribute_docs(module)
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Query):
            out.append(NamedQuery(module.__name__, name, value, "", docs.get(name, "")))
        elif (
            inspect.isfunction(value)
            and value.__module__ == module.__name__
            and _returns_query(value)
        ):
            out.append(_call_with_defaults(module.__name__, name, value))
    return out


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


def _returns_query(fn: Any) -> bool:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations: not a named query
        return False
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and issubclass(origin, Query)


def _call_with_defaults(module: str, name: str, fn: Any) -> NamedQuery:
    signature = inspect.signature(fn, eval_str=True).replace(
        return_annotation=inspect.Signature.empty
    )
    missing = [
        p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty
    ]
    if missing:
        raise ConfigError(
            f"{module}:{name}{signature} needs arguments ({', '.join(missing)}); give every "
            "parameter a default (or a placeholder) so it can be shown"
        )
    try:
        query = fn()
    except QueryKitError as exc:
        raise ConfigError(f"{module}:{name}: building the query failed: {exc}") from exc
    doc = inspect.getdoc(fn) or ""
    return NamedQuery(module, name, query, str(signature), doc, fn)


def statements_of(query: Query[Any]) -> list[CompiledSQL]:
    """Every statement a query sends: one, or one per level for batched nested queries."""
    many = getattr(query, "statements", None)
    return list(many()) if callable(many) else [query.to_sql()]


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
                rows = conn.execute(statement, compiled.params).fetchall()
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
