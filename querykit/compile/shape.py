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

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.sql import elements, schema
from sqlalchemy.types import TypeEngine

from .. import codecs
from ..build.binding import Binder, Compilable, Values
from ..build.sqltext import CompiledSQL, compiled_sql, register_renderer
from ..codecs.dialect import DIALECT
from ..codegen import generate
from ..errors import CompileError, ValidationError
from ..schema.naming import column_label

__all__ = [
    "Shape",
    "build_shape",
    "cache_info",
    "clear_cache",
    "compile_query",
    "to_compiled_sql",
    "to_sql",
]


MAX_CACHE = 4096


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
    in_order: bool = False
    """True when each value feeds one placeholder, in walk order (no constants): the
    values as given are then the raw values of :func:`to_compiled_sql`."""
    cached: bool = True
    """False for a shape compiled for one call only (Core's tuple ``IN``): nothing that
    outlives the call may keep it, or one entry per list length would pile up."""

    read: bool = False
    """A plain read that takes no locks: outside a transaction a read replica may run it."""
    rows_known: bool = True
    """False for raw SQL, whose text alone does not say whether it returns rows."""
    render: Callable[[list[Any]], CompiledSQL] | None = field(
        default=None, repr=False, compare=False
    )
    """``render(values)``: what :func:`to_sql` returns, for a shape ``in_order``
    (made by :func:`shape_functions`); None otherwise."""

    @property
    def returns_rows(self) -> bool | None:
        """Whether the statement returns rows; None when only running it tells (raw SQL)."""
        return bool(self.columns) if self.rows_known else None


def adapt_params(
    values: Sequence[Any],
    slots: Sequence[int],
    adapters: Sequence[codecs.Adapter | None],
    labels: Sequence[str],
    constants: Sequence[Any],
) -> tuple[Any, ...]:
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
    return tuple(out)


def params_function(
    slots: Sequence[int],
    adapters: Sequence[codecs.Adapter | None],
    labels: Sequence[str],
    constants: Sequence[Any],
    passthrough: bool,
) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """:func:`adapt_params` for one shape as a generated function: no loop, no lookups.

    Only indices, generated names and the adapters' own ``codecs.unchanged_when``
    tests and ``codecs.adapted_when`` expressions go into its source; adapters,
    constants and the objects those expressions use are passed in by name. A value
    an adapter refuses goes through :func:`adapt_params`, which raises the error that
    names the column.
    """
    return shape_functions(slots, adapters, labels, constants, passthrough, None)[0]


Render = Callable[[list[Any]], CompiledSQL]


def shape_functions(
    slots: Sequence[int],
    adapters: Sequence[codecs.Adapter | None],
    labels: Sequence[str],
    constants: Sequence[Any],
    passthrough: bool,
    rendered: tuple[str, tuple[TypeEngine[Any], ...]] | None,
) -> tuple[Callable[[Sequence[Any]], Sequence[Any]], Render | None]:
    """:func:`params_function`, and with ``rendered`` (the SQL and the placeholders'
    types of a shape whose values feed its placeholders in walk order) ``render``: what
    :func:`to_sql` returns, the parameters and the :class:`CompiledSQL` made without a
    call between them. Both come from one generated source (one ``linecache`` entry)."""
    render: Render | None = None
    if passthrough:
        if rendered is not None:
            sql, types = rendered
            render = lambda values: compiled_sql(sql, tuple(values), types, values)  # noqa: E731
        return _same_values, render
    expression, namespace = _params_expression(slots, adapters, labels, constants)
    source = (
        "def params(values):\n"
        "    try:\n"
        f"        return {expression}\n"
        "    except (Rejected, TypeError):  # TypeError: an inline test's way to say 'call'\n"
        "        return slow(values)\n"
    )
    if rendered is not None:
        namespace.update(compiled_sql=compiled_sql, sql=rendered[0], types=rendered[1])
        source += (
            "def render(values):\n"
            "    try:\n"
            f"        params = {expression}\n"
            "    except (Rejected, TypeError):\n"
            "        params = slow(values)\n"
            "    return compiled_sql(sql, params, types, values)"  # values: this call's own
        )
    generate("params", source, namespace)  # nothing from the query's values goes into the source
    return namespace["params"], namespace.get("render")


def _params_expression(
    slots: Sequence[int],
    adapters: Sequence[codecs.Adapter | None],
    labels: Sequence[str],
    constants: Sequence[Any],
) -> tuple[str, dict[str, Any]]:
    """The tuple expression of the parameters (of ``values``) and the names it uses."""
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
        inline = codecs.adapted_when(adapt)
        if unchanged is not None:  # the usual value passes without a call
            passes = unchanged.format(v=f"v{pos}")
            items.append(f"(v{pos} if (v{pos} := {value}) is None or {passes} else a{pos}(v{pos}))")
        elif inline is not None:  # the usual value is adapted without a call
            names = {"v": f"v{pos}", "t": f"t{pos}"}
            for name, obj in inline.names.items():
                names[name] = f"n{pos}_{name}"
                namespace[f"n{pos}_{name}"] = obj
            test, result = inline.test.format(**names), inline.result.format(**names)
            items.append(
                f"({result} if (v{pos} := {value}) is not None and {test} "
                f"else (None if v{pos} is None else a{pos}(v{pos})))"
            )
        else:
            items.append(f"(None if (v{pos} := {value}) is None else a{pos}(v{pos}))")
    return f"({''.join(item + ', ' for item in items)})", namespace


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
    key = (type(query), query._key(values))
    if values.cacheable:  # the hot path: a hit is a walk and one lookup
        shape = _CACHE.get(key)
        if shape is not None:
            _stats["hits"] += 1
            return shape, values
    return _compiled(query, key, values), values


def _compiled(query: Compilable, key: Hashable, values: Values) -> Shape:
    """The shape of a query not in the cache: compiled, and cached when its key allows."""
    if not values.cacheable:
        _stats["uncacheable"] += 1
        return build_shape(query, values, cacheable=False)
    _stats["misses"] += 1
    shape = build_shape(query, values)
    if len(_CACHE) >= MAX_CACHE:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[key] = shape
    return shape


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
    except sqlalchemy.exc.CompileError as exc:
        raise CompileError(f"cannot compile the query: {exc}") from exc
    except sqlalchemy.exc.ArgumentError as exc:
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
    in_order = slots == list(range(len(values)))
    passthrough = in_order and all(a is None for a in adapters)
    sql = codecs.checked_sql_text(compiled.string)
    rendered = (sql, tuple(types)) if in_order else None
    params, render = shape_functions(slots, adapters, labels, constants, passthrough, rendered)
    return Shape(
        sql=sql,
        slots=tuple(slots),
        adapters=adapters,
        labels=tuple(labels),
        types=tuple(types),
        columns=columns,
        column_types=column_types,
        decoders=decoders,
        params=params,
        constants=tuple(constants),
        passthrough=passthrough,
        in_order=in_order,
        cached=cacheable,
        read=query._reads_only(),
        rows_known=query.rows_known,
        render=render,
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
    computed = not isinstance(expr, schema.Column) and isinstance(expr, elements.ColumnElement)
    return codecs.result_decoder(
        type_, column_label(expr) if hasattr(expr, "name") else None, computed=computed
    )


# -- what to_sql() returns -----------------------------------------------------------


def to_compiled_sql(shape: Shape, values: Sequence[Any]) -> CompiledSQL:
    """The SQL and the adapted parameters of one execution of ``shape`` with ``values``."""
    if shape.in_order:
        raw = tuple(values)
    else:
        raw = tuple(values[i] if i >= 0 else shape.constants[-i - 1] for i in shape.slots)
    return compiled_sql(shape.sql, tuple(shape.params(values)), shape.types, raw)


def to_sql(query: Compilable) -> CompiledSQL:
    """What ``.to_sql()`` returns: the renderer the compile layer registers for the builders.

    :func:`compile_query` then :func:`to_compiled_sql`, written out for the usual case
    (a cache hit, values in walk order): the compile-cache benchmark times this path.
    """
    values = Values()
    key = (type(query), query._key(values))
    shape = _CACHE.get(key) if values.cacheable else None
    if shape is None:
        shape = _compiled(query, key, values)
    else:
        _stats["hits"] += 1
    render = shape.render
    return to_compiled_sql(shape, values) if render is None else render(values)


register_renderer(to_sql)
