"""From a query to SQL text and parameters: cached per shape, pure, no I/O.

A querykit query describes itself in two passes:

1. ``_key(values)`` walks the query, appends every bound value to ``values``
   in a fixed order and returns a hashable *shape key*: the structure without
   the values. This is cheap, and runs on every execution.
2. ``_core(binder)`` builds the SQLAlchemy Core statement, asking the binder
   for one bind parameter per value in the same order. It runs only when the
   shape is not in the cache; SQLAlchemy then compiles the statement.

The compiled :class:`Shape` keeps the SQL text (psycopg ``%s`` placeholders),
which value feeds each placeholder, the value adapters of each placeholder's
type (from :mod:`querykit.codecs`), and the decoders of the result columns.
Executing a known shape is then: walk, look up, adapt, send.

Any SQLAlchemy Core expression can appear inside a query; its own bind
parameters are found through Core's cache key, so Core expressions are cached
by shape too. Core's expanding ``IN`` parameters are the exception (their SQL
depends on the list length): such statements compile on every call. Use
``in_array``, which binds one array.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg, PGIdentifierPreparer_psycopg
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.sql import elements, schema
from sqlalchemy.sql import operators as sa_operators
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.visitors import replacement_traverse
from sqlalchemy.types import TypeEngine

from . import codecs
from .errors import CompileError, SchemaError, ValidationError

__all__ = [
    "Binder",
    "CompiledSQL",
    "Node",
    "Shape",
    "cache_info",
    "clear_cache",
    "compile_query",
]


class _QuoteCache(dict[str, str]):
    """SQLAlchemy's per-dialect cache of quoted identifiers, bounded.

    Core keeps every identifier it ever quoted; with label names made from data (one
    per distinct alias), one module-level dialect would grow without end.
    """

    MAX = 4096

    def __setitem__(self, key: str, value: str) -> None:
        if len(self) >= self.MAX:
            del self[next(iter(self))]
        super().__setitem__(key, value)


class _Preparer(PGIdentifierPreparer_psycopg):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._strings = _QuoteCache()


class _Dialect(PGDialect_psycopg):
    """PostgreSQL for psycopg with plain ``%s`` placeholders and no automatic casts.

    querykit adapts every value to the exact psycopg type itself (see codecs),
    so the server infers parameter types from the SQL, and the SQL stays readable.
    """

    bind_typing = BindTyping.NONE
    preparer = _Preparer


DIALECT = _Dialect(paramstyle="format")  # type: ignore[no-untyped-call]

MAX_CACHE = 4096


class Compilable(Protocol):
    def _key(self, values: list[Any]) -> Hashable: ...

    def _core(self, binder: Binder) -> ClauseElement: ...


class Values(list[Any]):
    """The values met by a key walk, in order. ``cacheable`` turns False when the walk
    meets something whose SQL text depends on its values (Core's expanding IN)."""

    cacheable = True


# -- binding ---------------------------------------------------------------------


class Binder:
    """Hands out bind parameters in the order the key walk met the values.

    It also checks that columns used in conditions belong to the query's FROM
    list (``allow``/``scope``), so a stray column is an error, not a silent
    cartesian product.
    """

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.types: list[TypeEngine[Any]] = []
        self.labels: list[str] = []
        self.slot_of_key: dict[str, int] = {}
        """Bind parameter key -> index of its value in ``values``, for every parameter bound."""
        self._scopes: list[frozenset[Any]] = []
        self._relation_sources: list[Any] = []

    def bind(self, type_: TypeEngine[Any], label: str) -> BindParameter[Any]:
        """A bind parameter for the next value of the key walk.

        It is *unique*, as Core's own literal values are: its key is made from the
        object's identity, so a statement built on its own (``query.statement``) and
        then embedded in another query keeps its values apart from the outer query's.
        ``label`` names the value in errors; it survives embedding as the key's stem.
        """
        index = len(self.types)
        self.types.append(type_)
        self.labels.append(label)
        bp = BindParameter(label, self.values[index], type_=type_, unique=True)
        self.slot_of_key[bp.key] = index
        return bp

    def core(self, element: Any) -> Any:
        """Register the bind parameters of a Core element (in cache-key order).

        Returns the element to embed: the element itself, or its ``= ANY`` form when it
        holds an expanding ``IN`` (see :func:`in_as_any`), as the key walk saw it.
        """
        key = element._generate_cache_key() if isinstance(element, ClauseElement) else None
        if key is not None and any(bp.expanding for bp in key.bindparams):
            element = in_as_any(element)
            key = element._generate_cache_key()
        if key is not None:
            for bp in key.bindparams:
                self.slot_of_key[bp.key] = len(self.types)
                self.types.append(bp.type)
                self.labels.append(getattr(bp, "_orig_key", None) or str(bp.key))
        return element

    def slot_of(self, bind: BindParameter[Any]) -> int | None:
        """The value index of a parameter found in the compiled statement, or None.

        Core may render a *copy* of a registered parameter (a statement adapted for
        LATERAL, an alias, a CTE); a copy keeps its original in ``_cloned_set``, which
        is how Core's own compiled cache matches them.
        """
        index = self.slot_of_key.get(bind.key)
        if index is None:
            for original in bind._cloned_set:
                index = self.slot_of_key.get(original.key)
                if index is not None:
                    break
        return index

    # relation filters (some/none/every) resolve against the innermost table ------

    def push_relation_source(self, table: Any) -> None:
        """Enter a nested relation whose columns may refer to ``table``."""
        self._relation_sources.append(table)

    def pop_relation_source(self) -> None:
        """Leave the innermost relation entered with ``push_relation_source``."""
        self._relation_sources.pop()

    def relation_source(self) -> Any:
        """The table of the innermost relation being compiled, or None."""
        return self._relation_sources[-1] if self._relation_sources else None

    # FROM scope checks ---------------------------------------------------------

    def push_scope(self, froms: Sequence[Any] | None) -> None:
        """Columns met until ``pop_scope`` must come from ``froms`` or an outer scope.

        ``None`` turns the check off: for select lists (they define the FROM list)
        and for queries turned into Core on their own, whose outer query is unknown.
        """
        outer = self._scopes[-1] if self._scopes else frozenset()
        if froms is None or outer is _UNCHECKED:
            self._scopes.append(_UNCHECKED)
            return
        expanded: set[Any] = set(outer)
        for f in froms:
            expanded.add(f)
            expanded.update(getattr(f, "_from_objects", ()))
            expanded.update(_join_members(f))
        self._scopes.append(frozenset(expanded))

    def pop_scope(self) -> None:
        """Leave the FROM scope entered with ``push_scope``."""
        self._scopes.pop()

    def check_column(self, column: Any) -> None:
        """Refuse a column whose table is not in the current FROM scope (a forgotten join)."""
        if not self._scopes or not isinstance(column, schema.Column):
            return
        scope = self._scopes[-1]
        table = column.table
        if scope is _UNCHECKED or table is None or table in scope:
            return
        names = sorted({getattr(f, "name", str(f)) for f in self._scopes[-1] if hasattr(f, "name")})
        raise SchemaError(
            f"column {column_label(column)} is not from a table in this query "
            f"(FROM {', '.join(names) or 'nothing'}); add its table with from_() or join()",
            column=column_label(column),
        )


_UNCHECKED: frozenset[Any] = frozenset({"<unchecked>"})


def _join_members(f: Any) -> list[Any]:
    if isinstance(f, sa.Join):
        return [f.left, f.right, *_join_members(f.left), *_join_members(f.right)]
    return []


def column_label(column: Any) -> str:
    table = getattr(column, "table", None)
    name = getattr(column, "name", None) or getattr(column, "key", None) or str(column)
    table_name = getattr(table, "name", None)
    return f"{table_name}.{name}" if table_name else str(name)


# -- operand walking, shared by every node -------------------------------------------

VALUE = "?"  # marks "a bound value sits here" in shape keys


class Node:
    """Mixin for Core elements that also describe themselves the builders' way.

    ``_key(values)`` and ``_core(binder)`` as for a query. The key walk then
    takes the cheap path for them instead of generating Core's cache key, which
    costs tens of microseconds per fresh element (e.g. ``querykit.vectors.Distance``).
    """

    __slots__ = ()

    def _key(self, values: list[Any]) -> Hashable:
        raise NotImplementedError

    def _core(self, binder: Binder) -> Any:
        raise NotImplementedError


# Values of these exact types are bound as they are: no key method, no Core element.
_PLAIN_VALUES = frozenset(
    {int, float, str, bool, bytes, Decimal, dt.datetime, dt.date, dt.time, dt.timedelta}
    | {uuid.UUID, list, tuple, dict, type(None)}
)


def operand_key(x: Any, values: list[Any]) -> Hashable:
    """Key of one operand; bound values are appended to ``values``."""
    # The common cases first: a table's own column, a plain value, a querykit node.
    if isinstance(x, schema.Column) and isinstance(x.table, sa.Table):
        return x
    if type(x) in _PLAIN_VALUES:
        values.append(x)
        return VALUE
    if isinstance(x, Node):
        return x._key(values)
    if isinstance(x, ClauseElement):
        if type(x) is sa.Table:
            return (x,)  # Core's own cache key for a table, without computing it
        return core_key(x, values)
    key_method = getattr(x, "_key", None)
    if key_method is not None:
        return key_method(values)  # type: ignore[no-any-return]
    clause = getattr(x, "__clause_element__", None)
    if clause is not None:
        return core_key(clause(), values)
    values.append(x)
    return VALUE


def keys_as_value(cls: type) -> bool:
    """Whether every instance of ``cls`` is a bound value to :func:`operand_key`.

    True for plain data types whose instances cannot carry attributes of their own
    (no ``__dict__``, no attribute hooks), so that no instance can have a ``_key`` or
    ``__clause_element__`` its class lacks: lists, tuples, numpy arrays...
    """
    if cls in _PLAIN_VALUES:
        return True
    return (
        not issubclass(cls, Node | ClauseElement)
        and not hasattr(cls, "_key")
        and not hasattr(cls, "__clause_element__")
        and getattr(cls, "__dictoffset__", 1) == 0
        and not hasattr(cls, "__getattr__")
        and cls.__getattribute__ is object.__getattribute__
    )


def learn_key(query: Compilable, values: Sequence[Any]) -> Hashable | None:
    """The key of ``query`` if its key walk finds exactly ``values`` (the same objects).

    For builders that make many queries differing only in those values (``nearest()``,
    one per query vector): such a query can take its key from the first one
    (``SelectQuery.memoise_key``) instead of walking again. None if it cannot.
    """
    walked = Values()
    key = query._key(walked)
    if walked.cacheable and len(walked) == len(values) and all(map(operator.is_, walked, values)):
        return key
    return None


def core_key(element: ClauseElement, values: list[Any]) -> Hashable:
    ck = element._generate_cache_key()
    if ck is None:  # a Core construct that opts out of caching
        _mark_uncacheable(values)
        return id(element)
    if any(bp.expanding for bp in ck.bindparams):
        ck = in_as_any(element)._generate_cache_key()
        assert ck is not None  # the rewrite keeps the element cacheable
    for bp in ck.bindparams:
        if bp.expanding:
            _mark_uncacheable(values)
        values.append(bp.effective_value)
    return ck.key


def needs_array_cast(item_type: Any) -> bool:
    """Whether an array parameter of ``item_type`` needs a cast to be compared with a column.

    psycopg sends a list of str as text[]; the server will not compare an enum or uuid
    column with text[] on its own.
    """
    return isinstance(item_type, sa.Enum | sa.Uuid)


def any_array(column: Any, array: Any, *, negate: bool) -> Any:
    """``column = ANY(array)``, or ``column <> ALL(array)`` with ``negate``."""
    item_type = type_of(column) or sa.types.NULLTYPE
    if needs_array_cast(item_type):
        array = sa.cast(array, sa.ARRAY(item_type))
    return column != sa.all_(array) if negate else column == sa.any_(array)


def in_as_any(element: ClauseElement) -> ClauseElement:
    """``element`` with each Core ``col.in_([...])`` turned into ``col = ANY(%s)``.

    Core's expanding IN renders one placeholder per item, so every list length is a new
    statement: a new shape, a new server plan, a new prepared statement. One array
    parameter serves every length, as :func:`querykit.in_array` does. ``IN`` and ``= ANY``
    agree on NULLs and on an empty list. Tuple ``IN`` keeps Core's form (and is compiled
    on every call).
    """

    def replace(element: Any, **kw: Any) -> Any:
        e = element
        if not (
            isinstance(e, elements.BinaryExpression)
            and e.operator in _IN_OPS
            and isinstance(e.right, BindParameter)
            and e.right.expanding
            and not isinstance(e.left, elements.Tuple)
        ):
            return None
        item_type = type_of(e.left) or sa.types.NULLTYPE
        array = BindParameter(
            e.right._orig_key or None,
            list(e.right.effective_value or ()),
            type_=sa.ARRAY(item_type),
            unique=True,
        )
        return any_array(e.left, array, negate=e.operator is sa_operators.not_in_op)

    return cast(ClauseElement, replacement_traverse(element, _NO_OPTIONS, replace))


_IN_OPS = (sa_operators.in_op, sa_operators.not_in_op)
_NO_OPTIONS: dict[str, Any] = {}


def _mark_uncacheable(values: list[Any]) -> None:
    if isinstance(values, Values):
        values.cacheable = False


def operand_core(x: Any, binder: Binder, type_: TypeEngine[Any] | None, label: str) -> Any:
    """The Core element for an operand; a bound value becomes a bind parameter of ``type_``."""
    if isinstance(x, schema.Column) and isinstance(x.table, sa.Table):
        binder.check_column(x)
        return x
    if isinstance(x, Node):
        return x._core(binder)
    core_method = getattr(x, "_core", None)
    if core_method is not None and not isinstance(x, ClauseElement):
        return core_method(binder)
    if isinstance(x, ClauseElement):
        return binder.core(x)
    clause = getattr(x, "__clause_element__", None)
    if clause is not None:
        return binder.core(clause())
    return binder.bind(type_ if type_ is not None else sa.types.NULLTYPE, label)


def type_of(x: Any) -> TypeEngine[Any] | None:
    """The SQL type of an operand, if it has one (columns and expressions do)."""
    t = getattr(x, "type", None)
    if isinstance(t, TypeEngine):
        return t
    return None


# -- shapes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """One compiled query shape."""

    sql: str
    slots: tuple[int, ...]
    """For each ``%s`` in order, the index of its value in the key walk's values."""
    adapters: tuple[codecs.Adapter | None, ...]
    labels: tuple[str, ...]
    types: tuple[TypeEngine[Any], ...]
    columns: tuple[str, ...]
    """Result column names; empty when the statement returns no rows."""
    column_types: tuple[TypeEngine[Any], ...]
    decoders: tuple[codecs.Decoder | None, ...]
    params: Callable[[Sequence[Any]], Sequence[Any]] = field(repr=False, compare=False)
    """``params(values)``: the parameters to send for the key walk's values, adapted and
    checked; a bad value names its column. Made for the shape by :func:`params_function`."""
    constants: tuple[Any, ...] = ()
    """Values the statement binds itself; a negative slot ``-k`` means ``constants[k - 1]``."""
    passthrough: bool = field(default=False)
    """True when values go to psycopg exactly as given (no adapter, same order)."""
    cached: bool = True
    """False for a shape compiled for one call only (Core's tuple ``IN``): nothing that
    outlives the call may keep it, or one entry per list length would pile up."""

    @property
    def returns_rows(self) -> bool:
        """Whether the statement returns rows (a SELECT, or DML with RETURNING)."""
        return bool(self.columns)


def adapt_params(
    values: Sequence[Any],
    slots: Sequence[int],
    adapters: Sequence[codecs.Adapter | None],
    labels: Sequence[str],
    constants: Sequence[Any],
) -> list[Any]:
    """The parameters to send, adapted and checked; a bad value names its column."""
    out = []
    for index, adapt, label in zip(slots, adapters, labels, strict=True):
        value = values[index] if index >= 0 else constants[-index - 1]
        if adapt is not None and value is not None:
            try:
                value = adapt(value)
            except codecs.ValueRejected as exc:
                raise ValidationError(f"{label}: {exc}", column=label) from None
        out.append(value)
    return out


def params_function(
    slots: Sequence[int],
    adapters: Sequence[codecs.Adapter | None],
    labels: Sequence[str],
    constants: Sequence[Any],
    passthrough: bool,
) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """:func:`adapt_params` for one shape as a generated function: no loop, no lookups.

    Only indices, generated names and the adapters' own ``codecs.unchanged_when``
    tests go into its source; adapters and constants are passed in by name. A value
    an adapter refuses goes through :func:`adapt_params`, which raises the error that
    names the column.
    """
    if passthrough:
        return _same_values
    slots, adapters, labels, constants = (
        tuple(slots),
        tuple(adapters),
        tuple(labels),
        tuple(constants),
    )
    namespace: dict[str, Any] = {
        **codecs.UNCHANGED_GLOBALS,
        "Rejected": codecs.ValueRejected,
        "slow": lambda values: adapt_params(values, slots, adapters, labels, constants),
    }
    items = []
    for pos, (index, adapt) in enumerate(zip(slots, adapters, strict=True)):
        if index >= 0:
            value = f"values[{index}]"
        else:
            value = f"c{pos}"
            namespace[value] = constants[-index - 1]
        if adapt is None:
            items.append(value)
            continue
        namespace[f"a{pos}"] = adapt
        unchanged = codecs.unchanged_when(adapt)
        if unchanged is None:
            items.append(f"(None if (v{pos} := {value}) is None else a{pos}(v{pos}))")
        else:  # the usual value passes without a call
            passes = unchanged.format(v=f"v{pos}")
            items.append(f"(v{pos} if (v{pos} := {value}) is None or {passes} else a{pos}(v{pos}))")
    source = (
        "def params(values):\n"
        "    try:\n"
        f"        return [{', '.join(items)}]\n"
        "    except Rejected:\n"
        "        return slow(values)"
    )
    exec(source, namespace)  # nothing from the query's values goes into the source
    function: Callable[[Sequence[Any]], Sequence[Any]] = namespace["params"]
    return function


def _same_values(values: Sequence[Any]) -> Sequence[Any]:
    return values


_CACHE: dict[Hashable, Shape] = {}
_stats = {"hits": 0, "misses": 0, "uncacheable": 0}


def cache_info() -> dict[str, int]:
    """Hits, misses, uncacheable compiles and the current size of the compile cache."""
    return {**_stats, "size": len(_CACHE)}


def clear_cache() -> None:
    """Empty the compiled-shape cache and zero its counters (for tests and benchmarks)."""
    _CACHE.clear()
    for k in _stats:
        _stats[k] = 0


def compile_query(query: Compilable) -> tuple[Shape, list[Any]]:
    """The shape of ``query`` (from the cache when possible) and its values in walk order."""
    values = Values()
    key: Hashable | None = (type(query), query._key(values))
    if not values.cacheable:
        key = None
    if key is not None:
        shape = _CACHE.get(key)
        if shape is not None:
            _stats["hits"] += 1
            return shape, values
        _stats["misses"] += 1
    else:
        _stats["uncacheable"] += 1
    shape = build_shape(query, values, cacheable=key is not None)
    if key is not None:
        if len(_CACHE) >= MAX_CACHE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = shape
    return shape, values


def build_shape(query: Compilable, values: list[Any], *, cacheable: bool = True) -> Shape:
    """Compile ``query`` with SQLAlchemy and record where each placeholder's value comes from."""
    binder = Binder(values)
    statement = query._core(binder)
    if len(binder.types) != len(values):
        raise CompileError(
            f"internal error: the key walk found {len(values)} values but the statement "
            f"binds {len(binder.types)}; please report this with the query"
        )
    compile_kwargs = {} if cacheable else {"render_postcompile": True}
    try:
        compiled: Any = statement.compile(dialect=DIALECT, compile_kwargs=compile_kwargs)
    except sa.exc.CompileError as exc:
        raise CompileError(f"cannot compile the query: {exc}") from exc
    except sa.exc.ArgumentError as exc:
        raise CompileError(f"invalid query: {exc}") from exc
    slots: list[int] = []
    types: list[TypeEngine[Any]] = []
    labels: list[str] = []
    positions = compiled.positiontup or []
    params = None if cacheable else compiled.construct_params()
    constants: list[Any] = []
    for name in positions:
        found = binder.slot_of(compiled.binds[name]) if name in compiled.binds else None
        if found is not None:
            index = found
        elif params is not None:  # an expanded IN element: its own value, this call only
            index = len(values)
            values.append(params[name])
            binder.types.append(
                compiled.binds[name].type if name in compiled.binds else sa.types.NULLTYPE
            )
            binder.labels.append(name)
        else:  # a constant the statement itself made (e.g. literal(1)): part of the shape
            bind = compiled.binds[name]
            constants.append(bind.effective_value)
            slots.append(-len(constants))
            types.append(bind.type)
            labels.append(name)
            continue
        slots.append(index)
        types.append(binder.types[index])
        labels.append(binder.labels[index])
    adapters = tuple(codecs.adapter_for(t) for t in types)
    columns, column_types = _result_columns(compiled)
    decoders = tuple(
        _result_decoder(t, expr)
        for t, expr in zip(column_types, _result_exprs(compiled), strict=True)
    )
    passthrough = all(a is None for a in adapters) and slots == list(range(len(values)))
    return Shape(
        sql=codecs.checked_sql_text(compiled.string),
        slots=tuple(slots),
        adapters=adapters,
        labels=tuple(labels),
        types=tuple(types),
        columns=columns,
        column_types=column_types,
        decoders=decoders,
        params=params_function(slots, adapters, labels, constants, passthrough),
        constants=tuple(constants),
        passthrough=passthrough,
        cached=cacheable,
    )


def _result_columns(compiled: Any) -> tuple[tuple[str, ...], tuple[TypeEngine[Any], ...]]:
    entries = getattr(compiled, "_result_columns", None) or []
    if not entries:
        return (), ()
    return tuple(e.keyname for e in entries), tuple(e.type for e in entries)


def _result_exprs(compiled: Any) -> list[Any]:
    entries = getattr(compiled, "_result_columns", None) or []
    return [e.objects[0] if e.objects else None for e in entries]


def _result_decoder(type_: TypeEngine[Any], expr: Any) -> codecs.Decoder | None:
    decoder = codecs.decoder_for(type_, column_label(expr) if hasattr(expr, "name") else None)
    # sum() of a bigint is numeric in PostgreSQL; the declared type says int.
    is_computed_int = isinstance(type_, sa.Integer) and not isinstance(expr, schema.Column)
    if decoder is None and is_computed_int and isinstance(expr, elements.ColumnElement):
        return _exact_int
    return decoder


def _exact_int(value: Any) -> Any:
    return int(value) if value is not None and not isinstance(value, int) else value


# -- what to_sql() returns -----------------------------------------------------------


@dataclass(frozen=True)
class CompiledSQL:
    """SQL and parameters exactly as the executor sends them.

    ``sql`` uses psycopg's ``%s`` placeholders and ``params`` holds the adapted
    values. ``inline()`` renders literal SQL for psql; ``pretty()`` formats it.
    """

    sql: str
    params: tuple[Any, ...]
    _types: tuple[TypeEngine[Any], ...] = field(repr=False, compare=False)
    _raw: tuple[Any, ...] = field(repr=False, compare=False)
    settings: tuple[tuple[str, str], ...] = ()
    """Server settings applied around the query (``SET LOCAL``), e.g. ``hnsw.ef_search``."""

    def __str__(self) -> str:
        return self.sql

    def inline(self) -> str:
        """The SQL with every parameter rendered as a quoted, cast literal (pastes into psql)."""
        literals = iter([codecs.literal(t, v) for t, v in zip(self._types, self._raw, strict=True)])
        return _PLACEHOLDER.sub(lambda m: "%" if m.group(0) == "%%" else next(literals), self.sql)

    def numbered(self) -> str:
        """The SQL with ``$1, $2...`` placeholders, as PostgreSQL's own logs show it."""
        counter = iter(range(1, len(self.params) + 1))
        return _PLACEHOLDER.sub(
            lambda m: "%" if m.group(0) == "%%" else f"${next(counter)}", self.sql
        )

    def script(self) -> str:
        """A psql-ready script: the settings as ``SET LOCAL`` in a transaction, then the query."""
        if not self.settings:
            return self.inline() + ";"
        sets = "".join(
            f"SET LOCAL {name} = {codecs.quote_text(value)};\n" for name, value in self.settings
        )
        return f"BEGIN;\n{sets}{self.inline()};\nCOMMIT;"

    def pretty(self, *, inline: bool = False) -> str:
        """Formatted for humans by pglast; placeholders as ``$n`` (or literals with inline=True)."""
        return prettify(self.inline() if inline else self.numbered())


_PLACEHOLDER = re.compile(r"%%|%s")


def to_compiled_sql(shape: Shape, values: Sequence[Any]) -> CompiledSQL:
    raw = tuple(values[i] if i >= 0 else shape.constants[-i - 1] for i in shape.slots)
    return CompiledSQL(shape.sql, tuple(shape.params(values)), shape.types, raw)


def prettify(sql: str) -> str:
    """Pretty-print SQL with pglast; SQL pglast cannot parse is returned as is."""
    try:
        from pglast import prettify as pg_prettify

        return str(pg_prettify(sql, preserve_comments=True))
    except Exception:  # pglast raises several parser error types; pretty is best effort
        return sql


Renderer = Callable[[Compilable], CompiledSQL]


def to_sql(query: Compilable) -> CompiledSQL:
    shape, values = compile_query(query)
    return to_compiled_sql(shape, values)
