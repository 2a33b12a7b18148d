"""How a builder turns its operands into Core elements, bind parameters and a shape key.

Every builder describes itself in two passes (see :mod:`querykit.compile`):
``_key(values)`` appends each bound value and returns the shape key, and
``_core(binder)`` builds the Core statement, asking the :class:`Binder` for one
bind parameter per value in the same order. This module is the vocabulary both
passes share; it renders no SQL text.
"""

from __future__ import annotations

import datetime as dt
import enum
import operator
import uuid
from collections.abc import Hashable, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.sql import elements, schema
from sqlalchemy.sql import operators as sa_operators
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.visitors import replacement_traverse
from sqlalchemy.types import TypeEngine

from ..errors import SchemaError
from ..schema.naming import column_label


class Compilable(Protocol):
    """What the compiler needs of a builder: the key walk, the Core statement, its kind."""

    rows_known: ClassVar[bool]

    def _key(self, values: list[Any]) -> Hashable: ...

    def _core(self, binder: Binder) -> ClauseElement: ...

    def _reads_only(self) -> bool: ...


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


# -- operand walking, shared by every node -------------------------------------------

VALUE = "?"  # marks "a bound value sits here" in shape keys


class Node:
    """Mixin for Core elements that also describe themselves the builders' way.

    ``_key(values)`` and ``_core(binder)`` as for a query. The key walk then
    takes the cheap path for them instead of generating Core's cache key, which
    costs tens of microseconds per fresh element (e.g. ``querykit.build.vector.Distance``).
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

VALUE_TYPES: set[type] = set(_PLAIN_VALUES)
"""The exact types :func:`operand_key` binds as values on sight: the plain ones, and each
type it has since met whose every instance is a value (:func:`keys_as_value`, enums).
Builders on the hot path test ``type(x) in VALUE_TYPES`` inline, as operand_key does."""


TABLE_COLUMNS: set[Any] = set()
"""The columns of plain ``sa.Table``s met so far: such a column keys as itself.

``x in TABLE_COLUMNS`` is one hash lookup, a quarter of the cost of the two
``isinstance`` tests that :func:`is_table_column` makes the first time. A column
never changes table (SQLAlchemy refuses a second parent), and its hash is its
identity: a member is exactly such a column, and a value is never one (a value
equal in hash would still fail Core's ``==``, which compares identities).
"""

_MAX_TABLE_COLUMNS = 100_000


def is_table_column(x: Any) -> bool:
    """Whether ``x`` is a column of a plain ``sa.Table`` (remembered in :data:`TABLE_COLUMNS`)."""
    try:
        if x in TABLE_COLUMNS:
            return True
    except TypeError:  # unhashable: a value, not a column
        return False
    if isinstance(x, schema.Column) and isinstance(x.table, sa.Table):
        if len(TABLE_COLUMNS) >= _MAX_TABLE_COLUMNS:  # tables made at run time, e.g. in tests
            TABLE_COLUMNS.clear()
        TABLE_COLUMNS.add(x)
        return True
    return False


def operand_key(x: Any, values: list[Any]) -> Hashable:
    """Key of one operand; bound values are appended to ``values``."""
    # The common cases first: a plain value, a table's own column, a querykit node.
    cls = type(x)
    if cls in VALUE_TYPES:  # never a column: VALUE_TYPES holds no ClauseElement type
        values.append(x)
        return VALUE
    if is_table_column(x):
        column: Hashable = x  # a Column: hashed by identity
        return column
    if isinstance(x, Node):
        return x._key(values)
    if isinstance(x, ClauseElement):
        if cls is sa.Table:
            return (x,)  # Core's own cache key for a table, without computing it
        return core_key(x, values)
    key_method = getattr(x, "_key", None)
    if key_method is not None:
        return key_method(values)  # type: ignore[no-any-return]
    clause = getattr(x, "__clause_element__", None)
    if clause is not None:
        return core_key(clause(), values)
    if _always_a_value(cls):
        VALUE_TYPES.add(cls)  # its next instances take the second test above
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


def _always_a_value(cls: type) -> bool:
    """Whether every instance of ``cls`` is a bound value: :func:`keys_as_value`, or an
    enum whose members, fixed when the class was made, are all plain values (psycopg and
    the codecs adapt them; no member carries a ``_key`` or ``__clause_element__``)."""
    if keys_as_value(cls):
        return True
    if not issubclass(cls, enum.Enum) or issubclass(cls, Node | ClauseElement):
        return False
    hooks = ("_key", "__clause_element__", "__getattr__")  # as an instance would see them
    return (
        not any(name in vars(klass) for klass in cls.__mro__ for name in hooks)
        and cls.__getattribute__ is object.__getattribute__
        and not any(name in vars(member) for member in cls for name in hooks)
    )


def learn_key(query: Compilable, values: Sequence[Any]) -> Hashable | None:
    """The key of ``query`` if its key walk finds exactly ``values`` (the same objects).

    For builders that make many queries differing only in those values (``nearest()``,
    one per query vector): such a query can take its key from the first one
    (``query.with_known_key``) instead of walking again. None if it cannot.
    """
    walked = Values()
    key = query._key(walked)
    if walked.cacheable and len(walked) == len(values) and all(map(operator.is_, walked, values)):
        return key
    return None


def core_key(element: ClauseElement, values: list[Any]) -> Hashable:
    """The shape key of a Core element, from Core's own cache key; its bound values go to ``values``."""
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
