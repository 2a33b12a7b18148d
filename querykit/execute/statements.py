"""querykit's own server-side prepared statements, sent below psycopg's cursor.

A repeated statement (``db.prepare(q)``, or a query shape a connection runs a
second time) is prepared once per connection under a name of querykit's own
(``_qk_1``, ``_qk_2``..., never psycopg's ``_pg3_<n>``) and then run with
psycopg's public low-level API: the parameters dumped by a psycopg
``Transformer``, ``pgconn.send_query_prepared``, psycopg's own ``execute``
generator and the connection's ``wait``, under the connection's lock; rows
are loaded by the same ``Transformer``, whose loaders are set once per
statement (a prepared statement's columns cannot change: PostgreSQL refuses
with "cached plan must not change result type"). That is what psycopg's
cursor does for a prepared statement, minus what a general cursor needs (a
query parsed and a key built per call, the prepared-statement cache
bookkeeping, the result state): about 10 µs less client CPU per call here
(``make bench``, "select by primary key").

A query with per-query settings (``nearest()``'s ``ef_search``,
``with_settings``) runs the same way: outside a transaction ``BEGIN``, the
``SELECT set_config(..., true)`` (the same SQL for the same number of settings:
a statement of its own here too), the statement and ``COMMIT``, under one hold
of the connection's lock; inside one, the old values read, the statement, the
old values put back (``database_async._send_with_settings``).

This module holds the part without I/O: :class:`Statements`, one per
connection, from SQL (and parameter types) to :class:`Statement`, bounded like
psycopg's own cache (``prepared_max``, least recently used out, closed on the
server); the execute faces (``database_async.py``) send and read.

**Staying coherent with psycopg.** psycopg drops every prepared statement of a
connection (``DEALLOCATE ALL``) after a rollback and after a command such as
``DISCARD ALL``, ``DEALLOCATE ALL``, ``DROP`` or ``ALTER`` (its
``PrepareManager``): the same object may come back with another OID. querykit's
statements follow that rule exactly: the connection's ``PrepareManager`` is
:class:`_Manager`, which forgets querykit's statements whenever psycopg clears
its own, and makes sure the ``DEALLOCATE ALL`` is sent when querykit had some.
Anything else that drops them (a pooler, a user's ``DEALLOCATE ALL`` psycopg did
not see) shows as SQLSTATE 26000 on the next run: outside a transaction nothing
ran, so it is prepared again and run once more; inside one, the error stands
(the transaction is aborted) and the statements are forgotten.

**Internals.** psycopg's ``PrepareManager`` (``psycopg._preparing``), the
connection's ``_prepared`` and ``PostgresQuery`` (``psycopg._queries``, which
turns ``%s`` into ``$1`` as the cursor does) are not public: pyproject.toml pins
the psycopg minor releases tests/execute/test_statements.py checks, and when
what is read from them is missing a warning says so and every query takes
psycopg's cursor, as before.
"""

from __future__ import annotations

import itertools
import warnings
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg import adapt, pq

if TYPE_CHECKING:
    from collections.abc import Sequence

    from psycopg._preparing import Key
    from psycopg.pq.abc import PGresult

# The internals this module relies on (see the module docstring): both modules are in
# every psycopg 3 release; what is read from them is checked by _has_internals().
from psycopg._preparing import Prepare, PrepareManager
from psycopg._queries import PostgresQuery

__all__ = ["Statement", "Statements", "install", "result_of", "rowcount"]

# What _Manager overrides or reads in psycopg's PrepareManager.
_MANAGER_INTERNALS = ("clear", "validate", "_names", "_to_flush")


class Statement:
    """One statement prepared by querykit on one connection (for one set of parameter types)."""

    __slots__ = (
        "formats",
        "name",
        "nfields",
        "nparams",
        "prepared",
        "query",
        "sql",
        "tx",
        "types",
        "used",
    )

    def __init__(
        self,
        sql: str,
        query: bytes,
        formats: list[Any],
        tx: Any,
        types: tuple[int, ...],
    ) -> None:
        self.sql = sql
        self.name = b""
        """Its name on the server, given when it is prepared (``_qk_<n>``)."""
        self.query = query
        """The SQL as the server gets it (``$1``... for ``%s``), from psycopg's own conversion."""
        self.formats = formats
        """psycopg's wanted format per parameter (``%s``, ``%b``, ``%t``)."""
        self.nparams = len(formats)
        self.tx = tx
        """The psycopg ``Transformer`` that dumps the parameters and loads the rows."""
        self.types = types
        """The parameter type OIDs it is prepared with (psycopg's dumpers choose them)."""
        self.prepared = False
        self.nfields = -1
        """The result's column count once its loaders are set (-1: not yet)."""
        self.used = True


class Statements:
    """The statements querykit prepared on one connection: SQL (and types) to :class:`Statement`.

    Changed only by the connection's user, under its lock. ``limit`` is
    psycopg's ``prepared_max``: past it, the least recently used statement is
    closed on the server (a second-chance "clock": a hit costs one attribute).
    """

    __slots__ = ("_counter", "closing", "limit", "seen", "table")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.table: dict[str | tuple[str, tuple[int, ...]], Statement] = {}
        """By SQL: its statement for the parameter types it had first; by (SQL, types):
        statements for other types (``int2``, ``int8``... as psycopg's dumpers choose)."""
        self.seen: set[str] = set()
        """SQL run once: prepared the second time (psycopg's ``prepare_threshold=1``)."""
        self.closing: list[bytes] = []
        """Names to close on the server before the next statement is prepared."""
        self._counter = itertools.count(1)

    def __len__(self) -> int:
        return len(self.table)

    def next_name(self) -> bytes:
        """A name never used on this connection: a PREPARE that was interrupted cannot clash."""
        return b"_qk_%d" % next(self._counter)

    def first_time(self, sql: str) -> bool:
        """True the first time ``sql`` comes without ``prepare=True``: psycopg's cursor runs it."""
        seen = self.seen
        if sql in seen:
            return False
        if len(seen) >= 4 * self.limit:
            seen.clear()
        seen.add(sql)
        return True

    def new(self, sql: LiteralString, context: Any, params: Sequence[Any]) -> Statement:
        """A statement for ``sql``, not prepared yet, its ``%s`` turned into ``$n`` by psycopg."""
        tx = adapt.Transformer(context)
        pgq = PostgresQuery(tx)
        pgq.convert(sql, params)  # psycopg's parse of the placeholders, and a first dump
        assert pgq._want_formats is not None  # querykit's plans: a list of parameters
        statement = Statement(sql, pgq.query, pgq._want_formats, tx, pgq.types)
        self._make_room()
        self.table[sql] = statement
        return statement

    def variant(self, head: Statement, types: tuple[int, ...]) -> Statement:
        """The statement of ``head``'s SQL for other parameter types (made when new)."""
        key = (head.sql, types)
        found = self.table.get(key)
        if found is None:
            tx = adapt.Transformer(head.tx)  # its own loaders: the columns may differ
            found = Statement(head.sql, head.query, head.formats, tx, types)
            self._make_room()
            self.table[key] = found
        found.used = True
        return found

    def _make_room(self) -> None:
        """At ``limit``, queue the least recently used statement to be closed."""
        table = self.table
        while len(table) >= self.limit:
            key, statement = next(iter(table.items()))
            del table[key]
            if statement.used:  # used since the hand last passed: a second chance
                statement.used = False
                table[key] = statement
            elif statement.prepared:
                self.closing.append(statement.name)

    def forget(self) -> bool:
        """Forget every statement (the server dropped them); True if there were some."""
        had = bool(self.table)
        self.table.clear()
        self.closing.clear()
        return had


_OK = frozenset({pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK})


def result_of(results: Sequence[PGresult], cursor: Any) -> PGresult:
    """The result of one statement, or the error psycopg's ``cursor`` raises for it."""
    if len(results) != 1 or results[0].status not in _OK:
        cursor._check_results(results)  # psycopg's own check: its errors, its messages
    return results[0]


def rowcount(result: PGresult) -> int:
    """The cursor's ``rowcount`` for a result: rows returned, else rows changed, else -1."""
    if result.status == pq.ExecStatus.TUPLES_OK:
        return result.ntuples
    changed = result.command_tuples
    return changed if changed is not None else -1


class _Manager(PrepareManager):
    """psycopg's prepared-statement cache, which drops querykit's statements with its own."""

    def __init__(self, statements: Statements) -> None:
        super().__init__()
        self.qk_statements = statements

    def clear(self) -> bool:
        """psycopg forgets its statements (and queues a ``DEALLOCATE ALL``): querykit's too."""
        flushed = super().clear()
        if self.qk_statements.forget() and not flushed:
            self._to_flush.clear()  # querykit had some: the server must drop them too
            self._to_flush.append(None)  # None: DEALLOCATE ALL (psycopg's maintain_gen)
            return True
        return flushed

    def validate(self, key: Key, prep: Prepare, name: bytes, results: Sequence[PGresult]) -> None:
        """psycopg's check of a new statement's results, counting querykit's statements.

        psycopg looks for ``DISCARD ALL``, ``DEALLOCATE ALL``, ``ROLLBACK``, ``DROP``
        and ``ALTER`` only when it has statements of its own or prepares one.
        """
        if self.qk_statements and not self._names:
            prep = Prepare.SHOULD  # only that check reads it
        super().validate(key, prep, name, results)


def _has_internals(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    manager = getattr(conn, "_prepared", None)
    if isinstance(manager, PrepareManager):
        missing = [f"PrepareManager.{n}" for n in _MANAGER_INTERNALS if not hasattr(manager, n)]
    else:
        missing = ["Connection._prepared"]
    if not hasattr(PostgresQuery, "convert"):
        missing.append("psycopg._queries.PostgresQuery.convert")
    if not hasattr(psycopg.Cursor, "_check_results"):
        missing.append("psycopg.Cursor._check_results")
    if missing and not _warned:
        _warned.append(True)
        warnings.warn(
            f"psycopg {psycopg.__version__} lacks {', '.join(missing)}: querykit's own "
            "prepared statements are off (each query takes psycopg's cursor, about 10 µs "
            "more per call); install the psycopg version querykit pins",
            RuntimeWarning,
            stacklevel=3,
        )
    return not missing


_warned: list[bool] = []


def install(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> Statements | None:
    """querykit's statements for a new connection, or None where it must not prepare.

    None when the connection prepares nothing (``prepare_threshold=None``: a
    transaction-mode pooler, ``connect(prepare=False)``) or psycopg's internals
    are not the pinned ones. Call before the connection runs anything.
    """
    if conn.prepare_threshold is None or not _has_internals(conn):
        return None
    statements = Statements(conn._prepared.prepared_max)  # psycopg's bound, 100 by default
    manager = _Manager(statements)
    vars(manager).update(vars(conn._prepared))  # its threshold, size and anything it holds
    conn._prepared = manager
    return statements
