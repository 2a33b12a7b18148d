"""Bulk writes: ``db.insert_many(table, rows)`` and ``db.upsert_many(table, rows, conflict=...)``.

Rows are mappings of column name (or Column) to value. They are checked
against the table, row by row, before each row is sent: an unknown column, a
NULL or a missing value for a NOT NULL column without a default, a value of the
wrong type; the error names the row's index and the column. Everything runs in
one transaction (a savepoint inside ``db.transaction()``), so a bad row, or any
error from the server, leaves nothing written.

The rows go by binary COPY, with each column's type taken from the table.
Python-side defaults (``Column(default=cuid)``) are filled in; columns left
out get their server default. Where COPY cannot express the rows, a multi-row
INSERT (the ``insert()`` builder, in chunks) takes over, in these cases:

- a value is a SQL expression (``func.now()``, ``sql("...")``);
- rows leave out a column that other rows give and that has a server-side
  default (COPY cannot say DEFAULT for one row);
- a column's type has no binary COPY form here: arrays of enums or of pgvector
  types, and types querykit has no rule for (``citext``, ``inet``...).

``upsert_many`` copies into a temporary table with the given columns' types,
then runs ``INSERT ... SELECT ... ON CONFLICT (conflict) DO UPDATE SET col =
EXCLUDED.col`` for the ``update`` columns (``DO NOTHING`` with ``update=()``).
Rows that give different columns run as one such statement per set of columns
(:meth:`BulkJob.parts`), so an update never writes a column its row left out.

Values are checked by ``codecs``, the same rules as every other path. A server
error names the row where it can (:meth:`BulkJob.failing_row`).

An iterator (not a list) is streamed: the job holds its first ``STREAM_CHUNK``
rows, and :meth:`BulkJob.next_chunk` reads the next ones as a job of their own
(checked on their own, sharing the generated encoders), so memory does not grow
with the input. The drivers keep one COPY open across chunks of the same columns.
After a chunk whose rows all give the same keys, :meth:`BulkJob.stream_rows` takes
the rows that follow with those keys straight from the input, ``STREAM_BATCH`` at a
time, until one differs: the next chunk starts at that row.

This module holds the I/O-free part (:class:`BulkJob`); :mod:`querykit.execute.bulk_run_async`
(and the sync :mod:`querykit.execute.bulk_run` generated from it) runs a job on a connection.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from decimal import Decimal
from typing import Any, overload

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.types.string import BytesBinaryDumper
from sqlalchemy.sql import schema
from sqlalchemy.sql.elements import ClauseElement

from .. import codecs
from ..build.query import InsertQuery, excluded, insert, python_default
from ..codecs.copy import Converter, copy_form
from ..codegen import generate
from ..columns import as_vector_type
from ..errors import ArgumentError, SchemaError, ValidationError

__all__ = ["BulkJob", "NeedsInsert", "copy_cursor", "temp_table_name"]

Row = Mapping[Any, Any]
Encoders = tuple[Callable[[Row], tuple[Any, ...]], Callable[..., None], Callable[..., Any]]
"""A column layout's generated ``encode(row)``, ``write_all(...)`` and ``stream(...)``
(:meth:`BulkJob._generated`)."""

INSERT_CHUNK = 1000
STREAM_CHUNK = 1000
"""Rows of a streamed input (an iterator, not a list) analysed as one job, and the step of
its progress reports."""
STREAM_BATCH = 100
"""Rows :meth:`BulkJob.stream_rows` encodes at a time. Small on purpose: a batch stays in the
CPU's cache until it is written (1000 rows of 384-d vectors did not, and cost a third more)."""
MAX_PARAMS = 65535  # PostgreSQL's limit of parameters in one statement


class NeedsInsert(Exception):
    """Raised mid-COPY when a row turns out to need INSERT (a SQL expression)."""


class _Null(Exception):
    """Raised by the generated encoder for a value the checked path must look at."""


_FULL = object()  # the generated stream() read all it was asked for
_END = object()  # ... or the input ended


# -- column rules -----------------------------------------------------------------------


class _ColumnSpec:
    """How one table column's values are checked and sent by COPY."""

    __slots__ = (
        "adapt",
        "column",
        "convert",
        "copy_adapt",
        "copy_type",
        "key",
        "name",
        "notnull",
    )

    def __init__(self, column: schema.Column[Any], key: Any) -> None:
        self.column = column
        self.key = key
        self.name = column.name
        self.adapt = codecs.adapter_for(column.type)
        self.notnull = not column.nullable
        self.copy_type, self.convert = copy_form(column.type)
        # vector(n) and halfvec(n): check and encode in one step, on the binary form
        t = as_vector_type(column.type)
        self.copy_adapt: codecs.Adapter | None = None
        if t is not None and t.kind in ("vector", "halfvec"):
            self.copy_adapt = codecs.vector_binary_adapter(t.dim, t.kind)
        elif self.copy_type == "bytea" and self.convert is not None:
            self.copy_adapt = codecs.json_copy_adapter(column.type)  # None unless json


def _has_server_default(column: schema.Column[Any]) -> bool:
    table = column.table
    return (
        column.server_default is not None
        or column.identity is not None
        or (isinstance(table, sa.Table) and table.autoincrement_column is column)
    )


def _is_expression(value: Any) -> bool:
    return isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")


def _plain(value: Any) -> Any:
    """A value of a column without adapter, for COPY: SQL expressions go the checked way."""
    if _is_expression(value):
        raise _Null
    return value


# -- the job ---------------------------------------------------------------------------------

_MISSING = object()


def _own(row: Row) -> Row:
    """A held row of a stream, copied: a generator may yield one dict mutated each time.

    Rows streamed past a chunk are encoded as they are read, but a chunk is held
    until it is checked; without the copy every held row would read as the last.
    """
    return dict(row) if isinstance(row, Mapping) else row


class BulkJob:
    """Rows checked against one table, with the plan to send them (COPY or INSERT)."""

    def __init__(
        self,
        table: sa.Table,
        rows: Iterable[Row],
        *,
        method: str = "insert_many",
        conflict: Sequence[Any] | str | None = None,
        update: Sequence[Any] | None = None,
        numbers: Sequence[int] | None = None,
        start: int = 0,
        encoders: dict[Any, Encoders] | None = None,
        head: tuple[Row, ...] = (),
    ) -> None:
        if not isinstance(table, sa.Table):
            raise ArgumentError(f"{method}() takes a Table, got {type(table).__name__}")
        if isinstance(rows, Mapping):
            raise ArgumentError(f"{method}() takes a list of rows; wrap one row in a list")
        self.table = table
        self.method = method
        self.total: int | None = len(rows) if isinstance(rows, Sized) else None
        """How many rows the caller gave, when the input knows (for progress)."""
        self.rest: Iterator[Row] | None = None
        """A streamed input's rows after this chunk (see :meth:`next_chunk`), or None."""
        if isinstance(rows, Sequence):
            self.rows: Sequence[Row] = rows
        else:  # stream: hold one chunk at a time, never the whole input
            it = iter(rows)  # ``head``: rows already read from it (see :meth:`next_chunk`)
            held = itertools.islice(it, STREAM_CHUNK - len(head))
            self.rows = [_own(row) for row in itertools.chain(head, held)]
            self.rest = it if len(self.rows) == STREAM_CHUNK else None
        self._streamed = 0
        """Rows :meth:`stream_rows` took from ``rest``, past this chunk's own."""
        self._held: tuple[Row, ...] = ()
        """The row that stopped :meth:`stream_rows`: the next chunk's first."""
        self._stream: Callable[..., Any] | None = None
        self.start = start
        """The index, in the caller's input, of this job's first row (a stream's chunk)."""
        self.numbers = numbers
        """For a part of a job (see :meth:`parts`): each row's index in the caller's list."""
        self._encoders: dict[Any, Encoders] = {} if encoders is None else encoders
        self._arguments = (conflict, update)
        self.specs: list[_ColumnSpec] = []
        """The COPY columns, in table order: the given ones and those with Python defaults."""
        self.uniform = True
        self.reason: str | None = None
        """Why COPY cannot apply, or None."""
        self._analyse()
        self.conflict: tuple[schema.Column[Any], ...] = ()
        self.update: tuple[schema.Column[Any], ...] = ()
        if method == "upsert_many":
            self._resolve_conflict(conflict, update)
            if numbers is None:
                self._check_conflict_keys()

    def number(self, i: int) -> int:
        """The index, in the caller's list, of this job's row ``i``."""
        return self.start + i if self.numbers is None else self.numbers[i]

    @property
    def streamed(self) -> bool:
        """Whether the input is an iterator taken chunk by chunk (not a list)."""
        return self.rest is not None or self.start > 0

    @property
    def end(self) -> int:
        """The number of the caller's rows up to the end of this chunk (and those streamed after it)."""
        return self.start + len(self.rows) + self._streamed

    def next_chunk(self) -> BulkJob | None:
        """A streamed input's next chunk, as a job of its own; None at the end.

        Each chunk is checked on its own (its column sets may differ from the
        first's); the generated encoders are shared, so equal chunks compile once.
        """
        if self.rest is None:
            return None
        rest, self.rest = self.rest, None
        conflict, update = self._arguments
        job = BulkJob(
            self.table,
            rest,
            method=self.method,
            conflict=conflict,
            update=update,
            start=self.end,
            encoders=self._encoders,
            head=self._held,
        )
        job.total = self.total
        return job if job.rows else None

    @property
    def signature(self) -> tuple[tuple[str, Any], ...]:
        """The COPY columns and the row keys they come from: equal jobs share a COPY."""
        return tuple(
            (s.name, None if s.key is _MISSING else s.key if isinstance(s.key, str) else id(s.key))
            for s in self.specs
        )

    def parts(self) -> list[BulkJob]:
        """The jobs to run, in one transaction: this one, or one per set of given columns.

        An upsert's ``DO UPDATE`` must set only the columns a row gives: a row that
        leaves ``status`` out keeps its stored status, as in Prisma's ``upsert``. One
        statement sets the same columns for every row, so ``upsert_many`` with rows
        of different column sets runs one statement per set (each by COPY where it
        can), updating the ``update`` columns that set gives.
        """
        if self.method != "upsert_many" or self.uniform or self.numbers is not None:
            return [self]
        groups: dict[frozenset[Any], list[int]] = {}
        for i, row in enumerate(self.rows):
            groups.setdefault(frozenset(row.keys()), []).append(i)
        parts = []
        for keys, indexes in groups.items():
            update = [s.column for s in self.specs if s.key in keys and s.column in self.update]
            parts.append(
                BulkJob(
                    self.table,
                    [self.rows[i] for i in indexes],
                    method=self.method,
                    conflict=self.conflict,
                    update=update,
                    numbers=[self.number(i) for i in indexes],
                    encoders=self._encoders,
                )
            )
        return parts

    # -- analysis (keys only: cheap, before anything is sent) ------------------------

    def _column(self, key: Any, row: int) -> schema.Column[Any]:
        table = self.table
        if isinstance(key, str):
            column = table.c.get(key)
            if column is not None:
                return column
        elif isinstance(key, schema.Column) and key.table is table:
            return key
        name = key if isinstance(key, str) else getattr(key, "name", repr(key))
        raise ValidationError(
            f"row {row}: {table.name} has no column {name!r}; "
            f"valid columns: {', '.join(table.c.keys())}",
            row=row,
            column=str(name),
        )

    def _analyse(self) -> None:
        given: dict[schema.Column[Any], Any] = {}  # column -> key used in the rows
        seen: dict[frozenset[Any], None] = {}
        first_keys: Any = None
        rows: Sequence[Any] = self.rows  # the caller's: not yet known to be mappings
        for n, row in enumerate(rows):
            if type(row) is not dict and not isinstance(row, Mapping):
                i = self.number(n)
                raise ValidationError(
                    f"row {i}: expected a mapping of column name -> value, "
                    f"got {type(row).__name__}",
                    row=i,
                )
            keys = row.keys()
            if first_keys is None:
                first_keys = keys
            elif keys == first_keys:
                continue
            else:
                self.uniform = False
            i = self.number(n)
            frozen = frozenset(keys)
            if frozen in seen:
                continue
            seen[frozen] = None
            for key in keys:
                column = self._column(key, i)
                if column.computed is not None:
                    raise ValidationError(
                        f"row {i}, column {column.name}: the database generates this column; "
                        "leave it out",
                        row=i,
                        column=column.name,
                    )
                previous = given.setdefault(column, key)
                if previous is not key and previous != key:
                    raise ValidationError(
                        f"row {i}: column {column.name} is given both as {previous!r} and "
                        f"{key!r}; use one spelling",
                        row=i,
                        column=column.name,
                    )
        specs = []
        for column in self.table.columns:
            if column in given:
                specs.append(_ColumnSpec(column, given[column]))
            elif python_default(column)[0]:
                specs.append(_ColumnSpec(column, _MISSING))
            elif not column.nullable and not _has_server_default(column) and self.rows:
                raise ValidationError(
                    f"row {self.number(0)}, column {column.name}: missing, and "
                    f"{self.table.name}.{column.name} is NOT NULL without a default",
                    row=self.number(0),
                    column=column.name,
                )
        self.specs = specs
        self.reason = self._copy_blocker(seen)

    def _copy_blocker(self, key_sets: Mapping[frozenset[Any], None]) -> str | None:
        for spec in self.specs:
            if spec.copy_type is None:
                return f"column {spec.name} has type {spec.column.type} with no binary COPY form"
        if not self.uniform:
            for keys in key_sets:
                for spec in self.specs:
                    if spec.key is _MISSING or spec.key in keys:
                        continue
                    if _has_server_default(spec.column):
                        return (
                            f"some rows leave out {spec.name}, which has a server default, "
                            "and others give it"
                        )
        return None

    def _resolve_conflict(self, conflict: Sequence[Any] | str | None, update: Any) -> None:
        where = f"{self.method}({self.table.name})"
        if conflict is None or (not isinstance(conflict, str) and not conflict):
            raise ArgumentError(f"{where}: give conflict=[...], the columns of a unique index")
        names = [conflict] if isinstance(conflict, str) else list(conflict)
        by_column = {spec.column: spec for spec in self.specs if spec.key is not _MISSING}
        self.conflict = tuple(self._named(c, where, "conflict") for c in names)
        for column in self.conflict:
            if column not in by_column:
                raise ArgumentError(
                    f"{where}: conflict column {column.name} is not in the rows; "
                    "every row must give the conflict columns"
                )
        if update is None:  # the given columns (not those filled by Python defaults)
            chosen = [c for c in by_column if c not in self.conflict]
        elif isinstance(update, str):
            chosen = [self._named(update, where, "update")]
        else:
            chosen = [self._named(c, where, "update") for c in update]
        for column in chosen:
            if column not in by_column:
                raise ArgumentError(f"{where}: update column {column.name} is not in the rows")
            if column in self.conflict:
                raise ArgumentError(
                    f"{where}: {column.name} is a conflict column; it cannot also be updated"
                )
        self.update = tuple(chosen)

    def _named(self, key: Any, where: str, what: str) -> schema.Column[Any]:
        table = self.table
        if isinstance(key, schema.Column) and key.table is table:
            return key
        if isinstance(key, str) and key in table.c:
            return table.c[key]
        raise SchemaError(
            f"{where}: {what} column {key!r} is not a column of {table.name}; "
            f"valid columns: {', '.join(table.c.keys())}",
            column=str(key),
        )

    def _check_conflict_keys(self) -> None:
        if not self.update:
            return  # DO NOTHING skips repeats itself
        keys = [spec.key for spec in self.specs if spec.column in self.conflict]
        first: dict[tuple[Any, ...], int] = {}
        for n, row in enumerate(self.rows):
            i = self.number(n)
            value = tuple(row.get(k) for k in keys)
            j = first.setdefault(value, i)
            if j != i:
                names = ", ".join(c.name for c in self.conflict)
                raise ValidationError(
                    f"row {i} repeats the conflict key ({names}) = {value!r} of row {j}; "
                    "ON CONFLICT DO UPDATE cannot change one row twice in a statement",
                    row=i,
                    column=names,
                )

    # -- encoding (per row, while sending) -------------------------------------------

    def copy_types(self) -> list[str]:
        """The ``Copy.set_types`` names of the columns, in order."""
        return [s.copy_type or "" for s in self.specs]

    def encoded(self, *, for_copy: bool) -> Iterator[tuple[Any, ...]]:
        """Each row checked and adapted, as a tuple in ``specs`` order.

        Raises ``ValidationError`` naming the row, or ``NeedsInsert`` (with
        ``for_copy``) when a value is a SQL expression.
        """
        columns = self._columns(for_copy)
        if for_copy and self.uniform:
            encode = self._generated(columns)[0]
            for i, row in enumerate(self.rows):
                try:
                    values = encode(row)
                except Exception:  # the checked path raises the error naming row and column
                    values = self._encode_row(i, row, columns, for_copy)
                yield values
            return
        for i, row in enumerate(self.rows):
            yield self._encode_row(i, row, columns, for_copy)

    def _columns(self, for_copy: bool) -> list[tuple[Any, ...]]:
        """Per column: key, adapter, converter, NOT NULL, Column (for COPY or for INSERT)."""
        out: list[tuple[Any, ...]] = []
        for s in self.specs:
            if for_copy and s.copy_adapt is not None:
                out.append((s.key, s.copy_adapt, None, s.notnull, s.column))
            else:
                convert = s.convert if for_copy else None
                out.append((s.key, s.adapt, convert, s.notnull, s.column))
        return out

    def _encode_row(
        self, i: int, row: Row, columns: list[tuple[Any, ...]], for_copy: bool
    ) -> tuple[Any, ...]:
        """One row, checked value by value: the errors name the row and the column."""
        i = self.number(i)
        out = []
        for key, adapt, convert, notnull, column in columns:
            if key is _MISSING:
                value = python_default(column)[1]
            elif self.uniform:
                value = row[key]
            else:
                value = row.get(key, _MISSING)
                if value is _MISSING:
                    value = self._absent(i, column, for_copy)
            if value is None:
                if notnull:
                    raise ValidationError(
                        f"row {i}, column {column.name}: None (NULL) in a NOT NULL column",
                        row=i,
                        column=column.name,
                    )
            elif value is _DEFAULT:
                pass
            elif adapt is not None or _is_expression(value):
                value = self._adapt(i, column, adapt, convert, value, for_copy)
            elif convert is not None:
                value = self._adapt(i, column, None, convert, value, for_copy)
            out.append(value)
        return tuple(out)

    def _generated(self, columns: list[tuple[Any, ...]]) -> Encoders:
        """The per-row work of :meth:`_encode_row`, unrolled into generated functions.

        ``encode(row)`` returns one row's tuple; ``write_all(rows, write_row, slow)``
        runs the same lines in a loop, handing each tuple to ``write_row`` (a
        COPY's); ``stream(rows, out, limit)`` reads up to ``limit`` rows of an
        iterator into ``out`` while each is a dict with exactly these keys (see
        :meth:`stream_rows`). Only column numbers and the adapters' own
        ``codecs.unchanged_when`` tests go into the source (the usual int or str
        passes without a call); keys, adapters and converters are passed in as
        names. Any exception hands the row to the checked path (``slow``, or the
        next chunk), which raises the error naming row and column. The chunks of
        a streamed input share them (compiled once, see :meth:`next_chunk`).
        """
        cache_key = self.signature
        cached = self._encoders.get(cache_key)
        if cached is not None:
            return cached
        namespace: dict[str, Any] = {
            **codecs.UNCHANGED_GLOBALS,
            "_plain": _plain,
            "_Null": _Null,
            "_FULL": _FULL,
            "_END": _END,
            "islice": itertools.islice,
            "n_keys": sum(key is not _MISSING for key, *_ in columns),
        }
        body = []
        for n, (key, adapt, convert, notnull, column) in enumerate(columns):
            if key is _MISSING:
                namespace[f"d{n}"] = column
                namespace["python_default"] = python_default
                body.append(f"v{n} = python_default(d{n})[1]")
            else:
                namespace[f"k{n}"] = key
                body.append(f"v{n} = row[k{n}]")
            if notnull:
                body.append(f"if v{n} is None: raise _Null")
            test = f"v{n} is not None and " if not notnull else ""
            unchanged = codecs.unchanged_when(adapt) if adapt is not None else None
            if unchanged is not None and convert is None:  # the usual value passes as it is
                body.append(f"if {test}not ({unchanged.format(v=f'v{n}')}): v{n} = a{n}(v{n})")
                namespace[f"a{n}"] = adapt
                continue
            call = f"v{n}"
            if adapt is not None:
                namespace[f"a{n}"] = adapt
                call = f"a{n}({call})"
            elif convert is None:
                call = f"_plain({call})"
            if convert is not None:
                namespace[f"c{n}"] = convert
                call = f"c{n}({call})"
            body.append(f"if v{n} is not None: v{n} = {call}" if test else f"v{n} = {call}")
        values = f"({', '.join(f'v{n}' for n in range(len(columns)))},)"
        source = [
            "def encode(row):",
            *(" " * 4 + line for line in body),
            f"    return {values}",
            "def write_all(rows, write_row, slow, start):",
            "    for i, row in enumerate(rows, start):",
            "        try:",
            *(" " * 12 + line for line in body),
            f"            values = {values}",
            "        except Exception:",
            "            values = slow(i, row)",
            "        write_row(values)",
            "def stream(rows, out, limit):",
            "    append = out.append",
            "    for row in islice(rows, limit):",
            "        try:",
            "            if type(row) is not dict or len(row) != n_keys: raise _Null",
            *(" " * 12 + line for line in body),
            f"            append({values})",
            "        except Exception:",
            "            return row",
            "    return _FULL if len(out) == limit else _END",
        ]
        generate("COPY row encoder", source, namespace)
        made: Encoders = namespace["encode"], namespace["write_all"], namespace["stream"]
        self._encoders[cache_key] = made
        return made

    def stream_rows(self, limit: int = STREAM_BATCH) -> list[tuple[Any, ...]]:
        """Up to ``limit`` more rows of a streamed input, read past this chunk, checked and encoded.

        A uniform chunk's COPY goes on with the rows after it while they are dicts
        with the chunk's exact keys: read one at a time, never held as a chunk (the
        driver writes each batch before asking for the next), with the chunk's
        checks. [] when the input ended, or when the next row needs more than that
        (other keys, a value to refuse, a SQL expression): :meth:`next_chunk` then
        starts from that row, and the checked path says what is wrong with it.
        """
        if self.rest is None or self._held or not self.uniform or self.reason is not None:
            return []
        if self._stream is None:
            self._stream = self._generated(self._columns(True))[2]
        out: list[tuple[Any, ...]] = []
        stopped = self._stream(self.rest, out, limit)
        self._streamed += len(out)
        if stopped is _END:
            self.rest = None
        elif stopped is not _FULL:
            self._held = (stopped,)
        return out

    def copy_to(
        self,
        write_row: Callable[[tuple[Any, ...]], object],
        advance: Callable[[int], object] | None = None,
    ) -> int:
        """Check every row and hand it to ``write_row`` (a COPY's); the number of rows.

        ``advance(n)`` is told after each ``STREAM_CHUNK`` rows (progress).
        """
        columns = self._columns(True)

        def slow(i: int, row: Row) -> tuple[Any, ...]:
            return self._encode_row(i, row, columns, True)

        rows = self.rows
        step = STREAM_CHUNK if advance is not None else max(1, len(rows))
        write_all = self._generated(columns)[1] if self.uniform else None
        for first in range(0, len(rows), step):
            chunk = rows[first : first + step]
            if write_all is not None:
                write_all(chunk, write_row, slow, first)
            else:
                for i, row in enumerate(chunk, first):
                    write_row(slow(i, row))
            if advance is not None:
                advance(len(chunk))
        return len(rows)

    def encode_all(self) -> list[tuple[Any, ...]]:
        """Every row checked and in its COPY form (a streamed chunk, before its COPY)."""
        out: list[tuple[Any, ...]] = []
        self.copy_to(out.append)
        return out

    def _absent(self, i: int, column: schema.Column[Any], for_copy: bool) -> Any:
        """The value of a column this row leaves out (and other rows give)."""
        has, value = python_default(column)
        if has:
            return value
        if _has_server_default(column):
            assert not for_copy  # _copy_blocker sent such jobs to INSERT
            return _DEFAULT
        if column.nullable:
            return None
        raise ValidationError(
            f"row {i}, column {column.name}: missing, and the column is NOT NULL without a default",
            row=i,
            column=column.name,
        )

    @staticmethod
    def _adapt(
        i: int,
        column: schema.Column[Any],
        adapt: codecs.Adapter | None,
        convert: Converter | None,
        value: Any,
        for_copy: bool,
    ) -> Any:
        if _is_expression(value):
            if for_copy:
                raise NeedsInsert
            return value
        try:
            if adapt is not None:
                value = adapt(value)
            if convert is not None:
                value = convert(value)
        except codecs.ValueRejected as exc:
            raise ValidationError(
                f"row {i}, column {column.name}: {exc}", row=i, column=column.name
            ) from None
        except (ValueError, OverflowError, TypeError) as exc:  # from a COPY conversion
            raise ValidationError(
                f"row {i}, column {column.name}: {exc}", row=i, column=column.name
            ) from None
        return value

    # -- server errors ------------------------------------------------------------------

    def failing_row(
        self, exc: psycopg.Error, encoded: Sequence[tuple[Any, ...]] | None = None
    ) -> int | None:
        """The index, in the caller's list, of the row a server error is about, if it says.

        A COPY error's context names the line. Otherwise (a foreign key checked at the
        end of the COPY, the INSERT fallback, the upsert's INSERT ... SELECT) the
        detail may give the key, ``Key (ref)=(999) is not present in table "run"``: the
        row that holds that key is the one. ``encoded`` are the rows as sent (INSERT).
        """
        diag = exc.diag
        line = _copy_line(diag.context or "")
        if line is not None and 0 <= line < len(self.rows):
            return self.number(line)
        key = _detail_key(diag.message_detail or "")
        if key is None:
            return None
        names, text = key
        positions = {s.name: n for n, s in enumerate(self.specs)}
        if not all(name in positions for name in names):
            return None
        wanted = [self.specs[positions[name]] for name in names]
        for i, row in enumerate(self.rows):
            if encoded is not None:
                values = [encoded[i][positions[name]] for name in names]
            elif all(s.key is not _MISSING and s.key in row for s in wanted):
                values = [_adapted(s, row[s.key]) for s in wanted]
            else:
                continue
            if _key_text(values) == text:
                return self.number(i)
        return None

    def failing_row_of_copy(self, exc: psycopg.Error, first: int) -> int | None:
        """:meth:`failing_row` for a streamed COPY that began at the caller's row ``first``.

        That COPY may span several chunks (this job is its last): its line numbers
        count from ``first``. A key in the detail is looked for in this chunk only,
        the earlier ones are gone.
        """
        line = _copy_line(exc.diag.context or "")
        if line is not None:
            return first + line
        return self.failing_row(exc)

    # -- statements ---------------------------------------------------------------------

    def table_sql(self) -> sql.Composable:
        """The target table, schema-qualified when it has a schema."""
        if self.table.schema:
            return sql.Identifier(self.table.schema, self.table.name)
        return sql.Identifier(self.table.name)

    def column_list(self) -> sql.Composable:
        """The columns the rows give, as an identifier list."""
        return sql.SQL(", ").join(sql.Identifier(s.name) for s in self.specs)

    def copy_sql(self, target: sql.Composable) -> sql.Composed:
        """``COPY target (columns) FROM STDIN (FORMAT BINARY)``."""
        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, self.column_list())

    def temp_table_sql(self, temp: sql.Identifier) -> sql.Composed:
        # Only the given columns, with their exact types and no constraints: the
        # target's NOT NULL and defaults apply once, in the INSERT ... SELECT.
        """A temporary table for an upsert: the given columns, their exact types, no constraints."""
        return sql.SQL(
            "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(temp, self.column_list(), self.table_sql())

    def upsert_sql(self, temp: sql.Identifier) -> sql.Composed:
        """``INSERT ... SELECT`` from the temporary table with ``ON CONFLICT ... DO UPDATE``."""
        columns = self.column_list()
        conflict = sql.SQL(", ").join(sql.Identifier(c.name) for c in self.conflict)
        action: sql.Composable
        if self.update:
            action = sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in self.update
            )
        else:
            action = sql.SQL("DO NOTHING")
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
            self.table_sql(), columns, columns, temp, conflict, action
        )

    def insert_queries(self, rows: Sequence[tuple[Any, ...]]) -> Iterator[InsertQuery[()]]:
        """The multi-row INSERT fallback, chunked under PostgreSQL's parameter limit."""
        columns = [s.column for s in self.specs]
        size = max(1, min(INSERT_CHUNK, MAX_PARAMS // max(1, len(columns))))
        for start in range(0, len(rows), size):
            chunk = [
                {c: v for c, v in zip(columns, row, strict=True) if v is not _DEFAULT}
                for row in rows[start : start + size]
            ]
            query = insert(self.table).values(chunk)
            if self.method == "upsert_many":
                if self.update:
                    ex = excluded(self.table)
                    query = query.on_conflict_do_update(
                        list(self.conflict), {c: ex.c[c.key] for c in self.update}
                    )
                else:
                    query = query.on_conflict_do_nothing(list(self.conflict))
            yield query


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


_DEFAULT = _Default()


def _copy_line(context: str) -> int | None:
    """``COPY item, line 5, column ref: ...`` -> 4, the index of the row (line 1 is row 0)."""
    if not context.startswith("COPY "):
        return None
    match = re.search(r", line (\d+)", context)
    return int(match.group(1)) - 1 if match else None


def _detail_key(detail: str) -> tuple[list[str], str] | None:
    """``Key (a, b)=(1, x) already exists.`` -> (["a", "b"], "1, x")."""
    if not detail.startswith("Key ("):
        return None
    middle = detail.find(")=(")
    end = detail.rfind(")")
    if middle < 0 or end <= middle:
        return None
    names = [n.strip().strip('"') for n in detail[5:middle].split(",")]
    return names, detail[middle + 3 : end]


def _adapted(spec: _ColumnSpec, value: Any) -> Any:
    if value is None or spec.adapt is None:
        return value
    try:
        return spec.adapt(value)
    except codecs.ValueRejected:
        return None


def _key_text(values: Sequence[Any]) -> str | None:
    """The key as the server's detail prints it, for the plain types keys are made of."""
    texts = []
    for value in values:
        if isinstance(value, bool):
            texts.append("t" if value else "f")
        elif isinstance(value, str | int | uuid.UUID):
            texts.append(str(value))
        elif isinstance(value, Decimal) and value.is_finite():
            texts.append(format(value, "f"))
        else:
            return None
    return ", ".join(texts)


_temp_names = itertools.count(1)
_AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]


def temp_table_name() -> sql.Identifier:
    """A fresh name for an upsert's temporary table (unique in this process)."""
    return sql.Identifier(f"querykit_upsert_{next(_temp_names)}")


# -- what the drivers (bulk_run_async / bulk_run) share ------------------------------------------


@overload
def copy_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]: ...
@overload
def copy_cursor(conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncCursor[Any]: ...
def copy_cursor(conn: _AnyConnection) -> Any:
    """A cursor for COPY whose ``bytea`` fields use psycopg's plain (C) bytes dumper.

    ``psycopg.dbapi20`` registers a Python dumper for the bytea oid that also
    unwraps ``Binary``; COPY sends our ready-made binary values through it.
    """
    cur = conn.cursor()
    cur.adapters.register_dumper(bytes, BytesBinaryDumper)
    return cur
