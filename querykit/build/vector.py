"""pgvector: typed distance operators, KNN queries and HNSW / IVFFlat index helpers.

    >>> q = nearest(embedding.c.embedding, query_vector, 5, where=eq(embedding.c.content, "faq"))
    >>> print(q.to_sql().sql)
    SELECT embedding.id, ..., embedding.embedding <=> %s AS distance
    FROM embedding
    WHERE embedding.content = %s ORDER BY distance
     LIMIT %s

Metrics, their operators and the columns they apply to:

=================  ==========  ==================================  =========================
metric             operator    columns                             index (operator class)
=================  ==========  ==================================  =========================
``l2``             ``<->``     vector, halfvec, sparsevec          HNSW, IVFFlat (not sparse)
``cosine``         ``<=>``     vector, halfvec, sparsevec          HNSW, IVFFlat (not sparse)
``inner_product``  ``<#>``     vector, halfvec, sparsevec          HNSW, IVFFlat (not sparse)
``l1``             ``<+>``     vector, halfvec, sparsevec          HNSW
``hamming``        ``<~>``     bit                                 HNSW, IVFFlat
``jaccard``        ``<%>``     bit                                 HNSW
=================  ==========  ==================================  =========================

``<#>`` is the NEGATIVE inner product: pgvector negates it so that ascending
order puts the most similar row first, which is the order an index serves.
:func:`negative_inner_product` is that operator (what ``nearest(metric=
"inner_product")`` orders by and returns as ``distance``); :func:`inner_product`
is the inner product itself, ``(a <#> b) * -1``, for display and thresholds.

Query vectors are bound as ONE parameter of the column's type, so they are
checked against the column before anything is sent: dimension, emptiness,
NaN/infinity and non-numeric components each raise a ``ValidationError``
naming the column. Lists, tuples, numpy arrays and pgvector values are
accepted (``{index: value}`` dicts for sparsevec, ``"0101"`` strings for bit).
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final, Literal, TypeVarTuple, overload

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql._annotated_cols import HasRowPos
from sqlalchemy.sql.elements import (
    BindParameter,
    ClauseElement,
    ColumnClause,
    ColumnElement,
    Grouping,
    Label,
)
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.visitors import InternalTraversal

from ..columns import VectorType, as_vector_type
from ..errors import CompileError, SchemaError
from ..schema.indexes import build_index, table_column
from ..schema.naming import column_label
from .binding import Binder, Node, keys_as_value, learn_key, operand_core, operand_key, type_of
from .operators import Condition
from .query import SelectQuery, knn_parts, select, with_columns, with_known_key

__all__ = [
    "IterativeScan",
    "Metric",
    "cosine_distance",
    "distance",
    "hamming_distance",
    "hnsw_index",
    "inner_product",
    "ivfflat_index",
    "jaccard_distance",
    "knn_settings",
    "l1_distance",
    "l2_distance",
    "nearest",
    "negative_inner_product",
]

Ts = TypeVarTuple("Ts")

Metric = Literal["l2", "cosine", "inner_product", "l1", "hamming", "jaccard"]
IterativeScan = Literal["off", "relaxed_order", "strict_order"]

OPERATORS: Final[Mapping[str, str]] = {
    "l2": "<->",
    "cosine": "<=>",
    "inner_product": "<#>",
    "l1": "<+>",
    "hamming": "<~>",
    "jaccard": "<%>",
}
_FLOAT_METRICS = ("l2", "cosine", "inner_product", "l1")
_METRICS: Final[Mapping[str, tuple[str, ...]]] = {
    "vector": _FLOAT_METRICS,
    "halfvec": _FLOAT_METRICS,
    "sparsevec": _FLOAT_METRICS,
    "bit": ("hamming", "jaccard"),
}
_DEFAULT_METRIC: Final[Mapping[str, str]] = {
    "vector": "cosine",
    "halfvec": "cosine",
    "sparsevec": "cosine",
    "bit": "hamming",
}
# Which (type, metric) pairs each index method has an operator class for (pgvector 0.8).
_INDEXABLE: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "hnsw": _METRICS,
    "ivfflat": {
        "vector": ("l2", "cosine", "inner_product"),
        "halfvec": ("l2", "cosine", "inner_product"),
        "bit": ("hamming",),
    },
}
_OPCLASS_SUFFIX: Final[Mapping[str, str]] = {
    "l2": "l2_ops",
    "cosine": "cosine_ops",
    "inner_product": "ip_ops",
    "l1": "l1_ops",
    "hamming": "hamming_ops",
    "jaccard": "jaccard_ops",
}
# The most dimensions an HNSW or IVFFlat index takes (sparsevec: 1,000 non-zero elements).
_MAX_INDEX_DIM: Final[Mapping[str, int]] = {"vector": 2000, "halfvec": 4000, "bit": 64000}

# pgvector's own defaults and limits, checked here so a bad value fails at build time.
# querykit's default for a KNN query that names no ef_search. Measured with ``make bench``
# on 100,000 clustered 384-d vectors under an HNSW index of m=16, ef_construction=64,
# k=10 (recall@10, and k=1 and k=40 alike): ef_search 40 -> 0.90, 60 -> 0.94, 80 -> 0.95,
# 100 -> 0.96, 120 -> 0.98. 100 is the smallest round value at or above 0.95; recall
# depended on ef_search, not on k (k <= ef_search), so the default is max(100, k).
EF_SEARCH_FOR_RECALL: Final = 100
_EF_SEARCH = (1, 1000)
_PROBES = (1, 32768)
_MAX_SCAN_TUPLES = (1, 2**31 - 1)
_M = (2, 100)
_EF_CONSTRUCTION = (4, 1000)
_LISTS = (1, 32768)


# -- distance expressions ------------------------------------------------------------

# User-defined operators bind tighter than comparisons and looser than + - * /
# in PostgreSQL; this precedence makes SQLAlchemy add parentheses accordingly.
_OPERATOR_PRECEDENCE: operators.custom_op[Any] = operators.custom_op("<->", precedence=6)
_MUL_PRECEDENCE = operators.mul


class Distance(Node, ColumnElement[float]):
    """``left <op> right`` for a pgvector operator; ``negate`` gives ``(left <op> right) * -1``.

    A Core element that also describes itself to the key walk (``_key`` and
    ``_core``), so a query holding one costs about a microsecond to key
    instead of the twenty Core's cache key takes. ``other`` is the query
    vector (bound as one parameter of the column's type) or an expression.
    """

    __visit_name__ = "querykit_distance"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration style)
        ("left", InternalTraversal.dp_clauseelement),
        ("operator", InternalTraversal.dp_string),
        ("right", InternalTraversal.dp_clauseelement),
        ("negate", InternalTraversal.dp_boolean),
    ]
    type = sa.Float()

    def __init__(self, left: Any, operator: str, other: Any, negate: bool = False) -> None:
        self.left = left
        self.operator = operator
        self.other = other
        self.negate = negate

    @property
    def right(self) -> Any:
        """``other`` as Core: for use of this element inside plain SQLAlchemy constructs."""
        right = self.__dict__.get("_right")
        if right is None:
            other = self.other
            if isinstance(other, ClauseElement):
                right = other
            elif hasattr(other, "__clause_element__"):
                right = other.__clause_element__()
            else:
                right = BindParameter(
                    column_label(self.left), other, type_=self.left.type, unique=True
                )
            self.__dict__["_right"] = right
        return right

    @right.setter
    def right(self, value: Any) -> None:  # SQLAlchemy's cloning sets what it traverses
        self.__dict__["_right"] = value

    def _key(self, values: list[Any]) -> Hashable:
        left = operand_key(self.left, values)
        return ("distance", self.operator, self.negate, left, operand_key(self.other, values))

    def _core(self, binder: Binder) -> Distance:
        left = operand_core(self.left, binder, None, "")
        # The query vector: ONE parameter of the column's type, so querykit's codecs check
        # it (dimension, NaN, empty, non-numeric) and an error names the column.
        right = operand_core(self.other, binder, type_of(self.left), column_label(self.left))
        return Distance(left, self.operator, right, self.negate)

    def label(self, name: str | None) -> Label[float]:  # type: ignore[override]
        if name is None:
            return super().label(name)
        return DistanceLabel(name, self)

    @property
    def _from_objects(self) -> list[Any]:
        return [*self.left._from_objects, *self.right._from_objects]

    def self_group(self, against: Any = None) -> Any:
        op = _MUL_PRECEDENCE if self.negate else _OPERATOR_PRECEDENCE
        if against is not None and operators.is_precedent(op, against):
            return Grouping(self)
        return self


class DistanceLabel(Node, Label[float]):
    """``distance AS name``, keyed as cheaply as the distance itself."""

    inherit_cache = True

    def __init__(self, name: str, distance: Distance) -> None:
        if _FAST_LABEL:  # nearest() makes one of these per query
            _init_label(self, name, distance)
        else:
            super().__init__(name, distance, distance.type)
        self.distance = distance

    def _key(self, values: list[Any]) -> Hashable:
        return ("label", self.name, self.distance._key(values))

    def _core(self, binder: Binder) -> Any:
        return self.distance._core(binder).label(self.name)


def _init_label(label: Any, name: str, distance: Distance) -> None:
    """What ``Label.__init__`` sets when its element is a plain column expression already
    (which it would coerce to itself), without the coercion machinery."""
    label.name = label.key = label._tq_label = label._tq_key_label = name
    label._element = distance
    label.type = distance.type
    label._proxies = [distance]


def _init_label_matches_core() -> bool:
    """Whether ``_init_label`` sets just what this SQLAlchemy release's ``Label`` does."""
    distance = Distance(sa.column("x", sa.Float()), "<->", [1.0])
    fast, core = Label.__new__(Label), Label.__new__(Label)
    _init_label(fast, "d", distance)
    Label.__init__(core, "d", distance, distance.type)
    return fast.__dict__ == core.__dict__


_FAST_LABEL: Final = _init_label_matches_core()


@compiles(Distance)
def _compile_distance(element: Distance, compiler: Any, **kw: Any) -> str:
    left = compiler.process(element.left.self_group(against=_OPERATOR_PRECEDENCE), **kw)
    right = compiler.process(element.right.self_group(against=_OPERATOR_PRECEDENCE), **kw)
    operator = compiler.post_process_text(element.operator)  # <%> becomes <%%> for psycopg
    text = f"{left} {operator} {right}"
    return f"({text}) * -1" if element.negate else text


def vector_type(column: Any, what: str) -> VectorType[Any]:
    """The pgvector type of ``column``, or a SchemaError naming the column."""
    t = type_of(column)
    pgvector = as_vector_type(t)
    if pgvector is not None:
        return pgvector
    raise SchemaError(
        f"{what} needs a pgvector column (vector, halfvec, sparsevec or bit); "
        f"{column_label(column)} is {t if t is not None else type(column).__name__}",
        column=column_label(column),
    )


def resolve_metric(type_: VectorType[Any], metric: str | None, column: Any) -> str:
    """``metric`` checked against the column type; None gives the type's default."""
    if metric is None:
        return _DEFAULT_METRIC[type_.kind]
    allowed = _METRICS[type_.kind]
    if metric not in allowed:
        problem = (
            f"the {metric} metric does not apply to"
            if metric in OPERATORS
            else f"{metric!r} is not a metric for"
        )
        raise SchemaError(
            f"{problem} {column_label(column)} ({type_.get_col_spec()}); "
            f"use one of {', '.join(allowed)}",
            column=column_label(column),
        )
    return metric


def distance(
    column: ColumnElement[Any], other: Any, metric: Metric | None = None
) -> ColumnElement[float]:
    """The distance between ``column`` and ``other`` (a vector or another column) by ``metric``.

    ``metric`` defaults to cosine (hamming for bit columns). For
    ``"inner_product"`` this is ``<#>``, the NEGATIVE inner product: smaller
    is closer, which is the order an index serves.

        >>> distance(embedding.c.embedding, v, "l2")     # embedding.embedding <-> %s
    """
    return _distance(column, other, metric, "distance()")


def _distance(
    column: Any, other: Any, metric: str | None, what: str, negate: bool = False
) -> Distance:
    type_ = vector_type(column, what)
    operator = OPERATORS[resolve_metric(type_, metric, column)]
    if other is None:
        raise CompileError(f"a distance to {column_label(column)} needs a query vector, not None")
    return Distance(column, operator, other, negate)


def l2_distance(column: ColumnElement[Any], other: Any) -> ColumnElement[float]:
    """Euclidean distance, ``column <-> other`` (vector, halfvec, sparsevec)."""
    return _distance(column, other, "l2", "l2_distance()")


def cosine_distance(column: ColumnElement[Any], other: Any) -> ColumnElement[float]:
    """Cosine distance, ``column <=> other``: 1 - cosine similarity, from 0 to 2."""
    return _distance(column, other, "cosine", "cosine_distance()")


def negative_inner_product(column: ColumnElement[Any], other: Any) -> ColumnElement[float]:
    """``column <#> other``: the NEGATIVE inner product, smallest for the most similar.

    This is the operator an inner-product index (``*_ip_ops``) serves; order by
    it ascending. For the inner product itself use :func:`inner_product`.
    """
    return _distance(column, other, "inner_product", "negative_inner_product()")


def inner_product(column: ColumnElement[Any], other: Any) -> ColumnElement[float]:
    """The inner (dot) product, ``(column <#> other) * -1``, since ``<#>`` is its negative.

    For display and thresholds (``gt(inner_product(c, v), 0.8)``). To let an
    index find the largest, order by :func:`negative_inner_product` (ascending)
    or use ``nearest(..., metric="inner_product")``.
    """
    return _distance(column, other, "inner_product", "inner_product()", negate=True)


def l1_distance(column: ColumnElement[Any], other: Any) -> ColumnElement[float]:
    """Taxicab distance, ``column <+> other`` (vector, halfvec, sparsevec)."""
    return _distance(column, other, "l1", "l1_distance()")


def hamming_distance(column: ColumnElement[Any], other: Any) -> ColumnElement[float]:
    """Hamming distance between bit strings, ``column <~> other``."""
    return _distance(column, other, "hamming", "hamming_distance()")


def jaccard_distance(column: ColumnElement[Any], other: Any) -> ColumnElement[float]:
    """Jaccard distance between bit strings, ``column <%> other``."""
    return _distance(column, other, "jaccard", "jaccard_distance()")


# -- search settings and KNN queries ---------------------------------------------------


def _check_int(value: Any, bounds: tuple[int, int], what: str) -> int:
    low, high = bounds
    number: int = value
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise CompileError(f"{what} must be an int from {low} to {high}, got {value!r}")
        number = int(value)
    if not low <= number <= high:
        raise CompileError(f"{what} must be from {low} to {high}, got {number}")
    return number


_ITERATIVE_SCANS = ("off", "relaxed_order", "strict_order")


def knn_settings(
    k: int,
    *,
    ef_search: int | None = None,
    iterative_scan: IterativeScan | None = None,
    max_scan_tuples: int | None = None,
    probes: int | None = None,
) -> dict[str, str]:
    """The pgvector search settings for a KNN query returning ``k`` rows.

    For ``query.with_settings(...)`` on a hand-built KNN query; :func:`nearest`
    applies them itself. The executor runs them as ``SET LOCAL`` around that
    query only.

    - ``ef_search``: HNSW's candidate list (1 to 1000). When not given it is
      ``max(100, k)``, not pgvector's 40: at 40 an HNSW scan of clustered
      384-d data finds 90% of the true ten nearest, at 100 about 96% (``make
      bench``), for about 1.5x the index time. An HNSW scan returns at most
      ``ef_search`` rows, hence at least ``k``.
    - ``iterative_scan``: ``"relaxed_order"`` or ``"strict_order"`` makes a
      filtered search scan more of the index until ``k`` rows pass the filter
      (pgvector 0.8). Relaxed applies to HNSW and IVFFlat; strict to HNSW only
      (IVFFlat has no strict order). ``"off"`` turns both off.
    - ``max_scan_tuples``: the most tuples an iterative HNSW scan visits (default 20,000).
    - ``probes``: IVFFlat lists to search (1 to 32768, default 1).

        >>> knn_settings(10, ef_search=200, iterative_scan="relaxed_order")
        {'hnsw.ef_search': '200', 'hnsw.iterative_scan': 'relaxed_order',
         'ivfflat.iterative_scan': 'relaxed_order'}
    """
    k = _check_int(k, (1, 2**31 - 1), "k")
    if iterative_scan is not None and iterative_scan not in _ITERATIVE_SCANS:
        raise CompileError(
            f"iterative_scan must be one of {', '.join(_ITERATIVE_SCANS)}, got {iterative_scan!r}"
        )
    iterative = iterative_scan in ("relaxed_order", "strict_order")
    out: dict[str, str] = {}
    if ef_search is not None:
        ef_search = _check_int(ef_search, _EF_SEARCH, "ef_search")
        if ef_search < k and not iterative:
            raise CompileError(
                f"ef_search={ef_search} is less than k={k}: an HNSW scan returns at most "
                "ef_search rows. Raise ef_search, or pass iterative_scan='relaxed_order'"
            )
        out["hnsw.ef_search"] = str(ef_search)
    else:
        out["hnsw.ef_search"] = str(min(max(k, EF_SEARCH_FOR_RECALL), _EF_SEARCH[1]))
    if iterative_scan is not None:
        out["hnsw.iterative_scan"] = iterative_scan
        if iterative_scan != "strict_order":
            out["ivfflat.iterative_scan"] = iterative_scan
    if max_scan_tuples is not None:
        out["hnsw.max_scan_tuples"] = str(
            _check_int(max_scan_tuples, _MAX_SCAN_TUPLES, "max_scan_tuples")
        )
    if probes is not None:
        out["ivfflat.probes"] = str(_check_int(probes, _PROBES, "probes"))
    return out


class _OutputColumn(Node, ColumnClause[float]):
    """A result column referred to by name (``ORDER BY distance``)."""

    inherit_cache = True

    def __init__(self, name: str) -> None:
        super().__init__(name, sa.Float(), is_literal=True)

    def _key(self, values: list[Any]) -> Hashable:
        return ("output column", self.name)

    def _core(self, binder: Binder) -> Any:
        return self


# ORDER BY the output column: the distance is computed, and its vector sent, once.
_BY_DISTANCE = _OutputColumn("distance")


@overload
def nearest(
    column: ColumnElement[Any],
    query_vector: Any,
    k: int,
    *,
    columns: FromClause[HasRowPos[*Ts]],  # type: ignore[type-var]
    metric: Metric | None = None,
    where: Condition | ColumnElement[bool] | None = None,
    ef_search: int | None = None,
    iterative_scan: IterativeScan | None = None,
    max_scan_tuples: int | None = None,
    probes: int | None = None,
) -> SelectQuery[*Ts, float]: ...


@overload
def nearest(
    column: ColumnElement[Any],
    query_vector: Any,
    k: int,
    *,
    columns: Sequence[ColumnElement[Any]] | None = None,
    metric: Metric | None = None,
    where: Condition | ColumnElement[bool] | None = None,
    ef_search: int | None = None,
    iterative_scan: IterativeScan | None = None,
    max_scan_tuples: int | None = None,
    probes: int | None = None,
) -> SelectQuery[*tuple[Any, ...]]: ...


def nearest(
    column: ColumnElement[Any],
    query_vector: Any,
    k: int,
    *,
    columns: Any = None,
    metric: Metric | None = None,
    where: Condition | ColumnElement[bool] | None = None,
    ef_search: int | None = None,
    iterative_scan: IterativeScan | None = None,
    max_scan_tuples: int | None = None,
    probes: int | None = None,
) -> Any:
    """The ``k`` rows nearest to ``query_vector``, each with its ``distance``, nearest first.

    A plain SELECT that an HNSW or IVFFlat index on ``column`` serves:
    ``ORDER BY distance LIMIT k``, where ``distance`` is ``column <op> %s`` for
    ``metric`` (cosine by default, hamming for bit; use the metric of the index).
    It selects every column of the table (or ``columns``: a table, which also
    types the rows, or a list of columns) and then ``distance``. It is a
    :class:`SelectQuery`: ``.where()``, ``.to_sql()`` and the rest apply.

    ``where`` filters before the limit; with a selective filter an index scan
    may find fewer than ``k`` matching rows: pass ``iterative_scan=
    "relaxed_order"`` (pgvector 0.8) to scan on. The search settings
    (``ef_search``, ``iterative_scan``, ``max_scan_tuples``, ``probes``; see
    :func:`knn_settings`) ride on the query and are applied with ``SET LOCAL``
    inside its transaction only.

        >>> rows = db.all(nearest(embedding.c.embedding, v, 10, columns=embedding))
        >>> # list[tuple[int, str, Vector, dict[str, Any], datetime, float]]
    """
    fixed: Hashable | None = None
    if (
        where is None
        and type(k) is int
        and (ef_search is None or type(ef_search) is int)
        and (max_scan_tuples is None or type(max_scan_tuples) is int)
        and (probes is None or type(probes) is int)
    ):
        # Calls that differ only in the query vector make the same query around it. (Exact
        # ints: True or 10.0 equal 1 or 10 as keys, but are refused as arguments.)
        if columns is not None and not isinstance(columns, FromClause):
            columns = (*columns,)  # hashable, and read once
        searching = (ef_search, iterative_scan, max_scan_tuples, probes)
        fixed = (column, metric, columns, k, searching, type(query_vector))
        try:
            template = _KNN_TEMPLATES.get(fixed)
        except TypeError:  # something unhashable: the checks below will say what is wrong
            template = fixed = None
        if template is not None:
            return template.query_for(query_vector)
    query = _nearest(
        column, query_vector, k, columns, metric, ef_search, iterative_scan, max_scan_tuples, probes
    )
    if where is not None:
        return query.where(where)
    if fixed is not None:
        if len(_KNN_TEMPLATES) >= _MAX_KNN_TEMPLATES:
            _KNN_TEMPLATES.clear()
        template = _KNN_TEMPLATES[fixed] = _KnnTemplate(query, query_vector)
        # From the template too, so that this query and the next share one key object
        # (the compile cache then compares keys by identity).
        return template.query_for(query_vector)
    return query


def _nearest(
    column: Any,
    query_vector: Any,
    k: int,
    columns: Any,
    metric: Metric | None,
    ef_search: int | None,
    iterative_scan: IterativeScan | None,
    max_scan_tuples: int | None,
    probes: int | None,
) -> SelectQuery[*tuple[Any, ...]]:
    vcol = table_column(column, "nearest()")
    settings = knn_settings(
        k,
        ef_search=ef_search,
        iterative_scan=iterative_scan,
        max_scan_tuples=max_scan_tuples,
        probes=probes,
    )
    dist = distance(vcol, query_vector, metric).label("distance")
    selected: Sequence[Any]
    if columns is None:
        selected = list(vcol.table.c)
    elif isinstance(columns, FromClause):
        selected = list(columns.c)
    else:
        selected = list(columns)
    if any(getattr(c, "name", None) == "distance" for c in selected):
        raise CompileError(
            f"nearest(): {vcol.table.name} has a column named distance, which would clash "
            "with the distance nearest() adds (ORDER BY distance would be ambiguous); "
            "select it under another name: columns=[..., "
            f"{vcol.table.name}.c.distance.label('stored_distance')]"
        )
    query = select(*selected, dist).from_(vcol.table).order_by(_BY_DISTANCE).limit(k)
    return query.with_settings(settings) if settings else query


class _KnnTemplate:
    """What ``nearest()`` calls that differ only in the query vector share.

    The checked vector column and operator, the query without its distance column,
    and its key, learned from the first query's key walk when the query vector's
    type always keys as a bound value (else each query walks its own).
    """

    __slots__ = ("column", "key", "operator", "prototype")

    def __init__(self, query: SelectQuery[*tuple[Any, ...]], query_vector: Any) -> None:
        columns, limit = knn_parts(query)
        distance: Distance = columns[-1].distance
        self.column = distance.left
        self.operator = distance.operator
        self.prototype = with_columns(query, columns[:-1])
        self.key = None
        if keys_as_value(type(query_vector)):
            self.key = learn_key(query, (query_vector, limit))

    def query_for(self, query_vector: Any) -> SelectQuery[*tuple[Any, ...]]:
        prototype = self.prototype
        dist = DistanceLabel("distance", Distance(self.column, self.operator, query_vector))
        columns, limit = knn_parts(prototype)
        if self.key is None:
            return with_columns(prototype, (*columns, dist))
        return with_known_key(prototype, (*columns, dist), self.key, (query_vector, limit))


_KNN_TEMPLATES: dict[Hashable, _KnnTemplate] = {}
_MAX_KNN_TEMPLATES = 1024


# -- indexes ------------------------------------------------------------------------------


def _index_type(column: Any, method: str, metric: str | None) -> tuple[str, str]:
    """The operator class for ``column`` and ``metric`` under ``method``, and a short tag."""
    type_ = vector_type(column, f"{method}_index()")
    resolved = resolve_metric(type_, metric, column)
    supported = _INDEXABLE[method].get(type_.kind, ())
    if resolved not in supported:
        hint = (
            f"{method} supports {', '.join(supported)} on {type_.kind}"
            if supported
            else f"{method} does not index {type_.kind}"
        )
        raise SchemaError(
            f"no {method} operator class for {resolved} on {column_label(column)} "
            f"({type_.get_col_spec()}): {hint}; HNSW covers every metric",
            column=column_label(column),
        )
    limit = _MAX_INDEX_DIM.get(type_.kind)
    if type_.dim is None:
        raise SchemaError(
            f"{column_label(column)} has no dimensions ({type_.kind} without a size); "
            f"an index needs {type_.kind}(n)",
            column=column_label(column),
        )
    if limit is not None and type_.dim > limit:
        raise SchemaError(
            f"{method} indexes at most {limit} dimensions of {type_.kind}; "
            f"{column_label(column)} has {type_.dim}. Index a halfvec expression or reduce "
            "the dimensions",
            column=column_label(column),
        )
    suffix = _OPCLASS_SUFFIX[resolved]
    return f"{type_.kind}_{suffix}", suffix.removesuffix("_ops")


def hnsw_index(
    column: ColumnElement[Any],
    metric: Metric | None = None,
    *,
    m: int | None = None,
    ef_construction: int | None = None,
    name: str | None = None,
) -> sa.Index:
    """An HNSW index on ``column`` with the operator class for its type and ``metric``.

    ``m`` (2 to 100, default 16) is the links per node; ``ef_construction``
    (4 to 1000, default 64, at least 2 × m) the candidate list while building.
    Give the metric your queries order by, or the index is not used.

        >>> index_sql(hnsw_index(embedding.c.embedding, "cosine", m=24))
        'CREATE INDEX embedding_embedding_hnsw_cosine_idx ON embedding
         USING hnsw (embedding vector_cosine_ops) WITH (m = 24)'
    """
    col = table_column(column, "hnsw_index()")
    opclass, tag = _index_type(col, "hnsw", metric)
    options: dict[str, int] = {}
    if m is not None:
        options["m"] = _check_int(m, _M, "m")
    if ef_construction is not None:
        options["ef_construction"] = _check_int(
            ef_construction, _EF_CONSTRUCTION, "ef_construction"
        )
        if options["ef_construction"] < 2 * options.get("m", 16):
            raise CompileError(
                f"ef_construction ({ef_construction}) must be at least 2 × m "
                f"({2 * options.get('m', 16)})"
            )
    elif "m" in options and options["m"] * 2 > 64:
        raise CompileError(
            f"m={m} needs ef_construction of at least {2 * options['m']} (default 64); pass it"
        )
    return build_index(
        col,
        method="hnsw",
        opclass=opclass,
        options=options,
        name=name,
        suffix=f"hnsw_{tag}",
        what="hnsw_index()",
    )


def ivfflat_index(
    column: ColumnElement[Any],
    metric: Metric | None = None,
    *,
    lists: int | None = None,
    name: str | None = None,
) -> sa.Index:
    """An IVFFlat index on ``column`` with the operator class for its type and ``metric``.

    ``lists`` (1 to 32768, default 100): about rows / 1000 up to a million
    rows, sqrt(rows) beyond. Create it after loading data: the lists are
    trained on the rows present. IVFFlat has no l1, no jaccard and no sparsevec.
    """
    col = table_column(column, "ivfflat_index()")
    opclass, tag = _index_type(col, "ivfflat", metric)
    options = {} if lists is None else {"lists": _check_int(lists, _LISTS, "lists")}
    return build_index(
        col,
        method="ivfflat",
        opclass=opclass,
        options=options,
        name=name,
        suffix=f"ivfflat_{tag}",
        what="ivfflat_index()",
    )
