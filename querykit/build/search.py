"""Full-text search and hybrid (vector + text) search, as plain SQL.

Full-text search matches a ``tsvector`` column against a query parsed on the
server, ranks with ``ts_rank``, and is served by a GIN index:

    >>> class doc_cols(TypedColumns):
    ...     body: Column[str] = Column(Text, nullable=False)
    ...     search: Column[str] = tsvector_column("body")   # generated, stored
    >>> rank = ts_rank(doc.c.search, "fat cats").label("rank")
    >>> select(doc.c.id, rank).where(matches(doc.c.search, "fat cats")).order_by(desc(rank))
    SELECT doc.id, ts_rank(doc.search, websearch_to_tsquery('english', %s)) AS rank
    FROM doc WHERE doc.search @@ websearch_to_tsquery('english', %s) ORDER BY rank DESC

The user's text is always a bound parameter. ``mode`` picks the parser:
``"websearch"`` (``websearch_to_tsquery``: quotes, ``or``, ``-word``; never a
syntax error), ``"plain"`` (``plainto_tsquery``: all words), ``"phrase"``
(``phraseto_tsquery``: words in order) or ``"raw"`` (``to_tsquery``: the
tsquery syntax itself; malformed input is an error from the server). The text
search configuration (``config``) is an identifier, checked and written into
the SQL, never taken from user input unchecked.

:func:`hybrid_search` fuses a KNN search and a full-text search by reciprocal
rank fusion in one statement.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Hashable, Sequence
from typing import Any, Final, Literal, TypeVarTuple, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql._annotated_cols import HasRowPos
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.selectable import FromClause

from ..arguments import count_argument
from ..codecs.dialect import DIALECT
from ..errors import CompileError, SchemaError
from ..schema.indexes import build_index, table_column
from ..schema.naming import column_label
from .binding import Binder, operand_core, operand_key, type_of
from .operators import Condition, as_condition
from .query import Query
from .vector import (
    OPERATORS,
    Distance,
    IterativeScan,
    Metric,
    knn_settings,
    resolve_metric,
    vector_type,
)

__all__ = [
    "HybridSearchQuery",
    "TextMode",
    "hybrid_search",
    "matches",
    "ts_rank",
    "ts_rank_cd",
    "tsquery",
    "tsvector_column",
    "tsvector_index",
]

Ts = TypeVarTuple("Ts")

TextMode = Literal["websearch", "plain", "phrase", "raw"]

_PARSERS: Final = {
    "websearch": "websearch_to_tsquery",
    "plain": "plainto_tsquery",
    "phrase": "phraseto_tsquery",
    "raw": "to_tsquery",
}
# A text search configuration: a lower-case identifier, optionally schema-qualified.
_CONFIG = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
_WEIGHTS = ("A", "B", "C", "D")
_TEXT: Final = sa.Text()


def _check_config(config: Any) -> str:
    if not isinstance(config, str) or not _CONFIG.match(config):
        raise CompileError(
            f"config must be a text search configuration name such as 'english' or "
            f"'public.my_config' (lower-case letters, digits, _), got {config!r}"
        )
    return config


def _config_sql(config: str) -> ColumnElement[Any]:
    return sa.literal_column(f"'{_check_config(config)}'")  # checked: no quote can get in


def _parser(mode: Any) -> str:
    parser = _PARSERS.get(mode) if isinstance(mode, str) else None
    if parser is None:
        raise CompileError(f"mode must be one of {', '.join(_PARSERS)}, got {mode!r}")
    return parser


def _check_document(document: Any, what: str) -> None:
    t = type_of(document)
    if not isinstance(t, postgresql.TSVECTOR):
        raise SchemaError(
            f"{what} needs a tsvector column or expression (see tsvector_column()); "
            f"{column_label(document)} is {t if t is not None else type(document).__name__}",
            column=column_label(document),
        )


def _tsquery_core(parser: str, config: str, text: Any) -> ColumnElement[str]:
    result: ColumnElement[str] = getattr(sa.func, parser)(
        _config_sql(config), text, type_=postgresql.TSQUERY()
    )
    return result


def tsquery(
    text: str, *, mode: TextMode = "websearch", config: str = "english"
) -> ColumnElement[str]:
    """The user's ``text`` parsed as a tsquery on the server, e.g. ``websearch_to_tsquery('english', %s)``."""
    parser = _parser(mode)
    if not isinstance(text, str):
        raise CompileError(f"tsquery() takes the search text as a str, got {text!r}")
    return _tsquery_core(
        parser, config, BindParameter("text query", text, type_=_TEXT, unique=True)
    )


def _query_operand(document: Any, query: Any, mode: Any, config: str) -> Any:
    if isinstance(query, ColumnElement):
        return query
    if not isinstance(query, str):
        raise CompileError(f"the search text must be a str or a tsquery expression, got {query!r}")
    text = BindParameter(column_label(document), query, type_=_TEXT, unique=True)
    return _tsquery_core(_parser(mode), config, text)


class _Matches(Condition):
    """``document @@ <parser>(config, %s)``."""

    __slots__ = ("config", "document", "parser", "query")

    def __init__(self, document: Any, query: Any, parser: str, config: str) -> None:
        self.document, self.query, self.parser, self.config = document, query, parser, config

    def _key(self, values: list[Any]) -> Hashable:
        return (
            "@@",
            self.parser,
            self.config,
            operand_key(self.document, values),
            operand_key(self.query, values),
        )

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        document = operand_core(self.document, binder, None, "")
        if isinstance(self.query, str):
            text = binder.bind(_TEXT, column_label(self.document))
            query: Any = _tsquery_core(self.parser, self.config, text)
        else:
            query = operand_core(self.query, binder, None, "")
        return document.op("@@", is_comparison=True)(query)  # type: ignore[no-any-return]


def matches(
    document: ColumnElement[Any],
    query: str | ColumnElement[Any],
    *,
    mode: TextMode = "websearch",
    config: str = "english",
) -> Condition:
    """``document @@ websearch_to_tsquery('english', %s)``: the document matches the search.

    ``query`` is the user's text (parsed by ``mode``) or a tsquery expression.
    A GIN index on the column serves it (:func:`tsvector_index`).
    """
    _check_document(document, "matches()")
    if not isinstance(query, str | ColumnElement):
        raise CompileError(f"matches() needs the search text as a str, got {query!r}")
    return _Matches(document, query, _parser(mode), _check_config(config))


def _rank(
    function: str,
    document: Any,
    query: Any,
    mode: Any,
    config: str,
    normalization: int,
) -> ColumnElement[float]:
    _check_document(document, f"{function}()")
    count_argument(normalization, "normalization (a bit mask, 0 to 63)", CompileError)
    if normalization > 63:
        raise CompileError(f"normalization is a bit mask from 0 to 63, got {normalization}")
    args = [document, _query_operand(document, query, mode, config)]
    if normalization:
        args.append(sa.literal_column(str(normalization)))
    result: ColumnElement[float] = getattr(sa.func, function)(*args, type_=sa.Float())
    return result


def ts_rank(
    document: ColumnElement[Any],
    query: str | ColumnElement[Any],
    *,
    mode: TextMode = "websearch",
    config: str = "english",
    normalization: int = 0,
) -> ColumnElement[float]:
    """``ts_rank(document, query)``: how well the document matches (higher is better).

    Order by it descending. ``normalization`` is PostgreSQL's bit mask (e.g. 1
    divides by 1 + log(length), 32 scales to 0..1).
    """
    return _rank("ts_rank", document, query, mode, config, normalization)


def ts_rank_cd(
    document: ColumnElement[Any],
    query: str | ColumnElement[Any],
    *,
    mode: TextMode = "websearch",
    config: str = "english",
    normalization: int = 0,
) -> ColumnElement[float]:
    """``ts_rank_cd(document, query)``: cover density ranking, which rewards terms close together."""
    return _rank("ts_rank_cd", document, query, mode, config, normalization)


def tsvector_column(
    *sources: str,
    config: str = "english",
    weights: Sequence[str] | None = None,
    name: str | None = None,
) -> sa.Column[str]:
    """A generated, stored tsvector column over the text columns named in ``sources``.

    In a ``TypedColumns`` class the attribute names it; in a plain ``Table``
    give ``name``.

        >>> search: Column[str] = tsvector_column("title", "body", weights=["A", "B"])
        >>> # search TSVECTOR GENERATED ALWAYS AS (setweight(to_tsvector('english',
        >>> #   coalesce(title, '')), 'A') || setweight(to_tsvector('english',
        >>> #   coalesce(body, '')), 'B')) STORED NOT NULL

    Missing (NULL) sources count as empty text. ``weights`` (A, the highest,
    to D) label each source's words for ranking.
    """
    if not sources:
        raise CompileError("tsvector_column() needs at least one source column name")
    names = []
    for source in sources:
        if not isinstance(source, str) or not source or "\x00" in source:
            raise CompileError(f"tsvector_column() takes column names, got {source!r}")
        names.append(DIALECT.identifier_preparer.quote(source))
    cfg = f"'{_check_config(config)}'"
    if weights is None:
        text = " || ' ' || ".join(f"coalesce({name}, '')" for name in names)
        expression = f"to_tsvector({cfg}, {text})"
    else:
        if len(weights) != len(names) or any(w not in _WEIGHTS for w in weights):
            raise CompileError(
                f"weights must give one of A, B, C, D for each of the {len(names)} sources, "
                f"got {list(weights)!r}"
            )
        expression = " || ".join(
            f"setweight(to_tsvector({cfg}, coalesce({name}, '')), '{weight}')"
            for name, weight in zip(names, weights, strict=True)
        )
    computed = sa.Computed(expression, persisted=True)
    column: sa.Column[str] = (
        sa.Column(postgresql.TSVECTOR(), computed, nullable=False)
        if name is None
        else sa.Column(name, postgresql.TSVECTOR(), computed, nullable=False)
    )
    return column


def tsvector_index(column: ColumnElement[Any], *, name: str | None = None) -> sa.Index:
    """A GIN index on a tsvector column, which serves :func:`matches`.

    >>> index_sql(tsvector_index(doc.c.search))
    'CREATE INDEX doc_search_gin_idx ON doc USING gin (search)'
    """
    col = table_column(column, "tsvector_index()")
    _check_document(col, "tsvector_index()")
    return build_index(
        col,
        method="gin",
        opclass=None,
        options={},
        name=name,
        suffix="gin",
        what="tsvector_index()",
    )


# -- hybrid search --------------------------------------------------------------------------


def _check_positive_int(value: Any, what: str) -> int:
    return count_argument(value, what, CompileError, minimum=1)


def _check_weight(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise CompileError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


class HybridSearchQuery(Query[*Ts]):
    """A vector search and a full-text search fused by reciprocal rank fusion; see :func:`hybrid_search`."""

    plain_read = True

    __slots__ = (
        "_columns",
        "_config",
        "_k",
        "_key_column",
        "_limit",
        "_operator",
        "_parser",
        "_query_vector",
        "_settings",
        "_text_candidates",
        "_text_column",
        "_text_query",
        "_text_weight",
        "_vector_candidates",
        "_vector_column",
        "_vector_weight",
        "_where",
    )

    _columns: tuple[Any, ...]
    _config: str
    _k: float
    _key_column: sa.Column[Any]
    _limit: int
    _operator: str
    _parser: str
    _query_vector: Any
    _settings: tuple[tuple[str, str], ...]
    _text_candidates: int
    _text_column: sa.Column[Any]
    _text_query: str
    _text_weight: float
    _vector_candidates: int
    _vector_column: sa.Column[Any]
    _vector_weight: float
    _where: Condition | None

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, f"_{name}", value)

    @property
    def settings(self) -> tuple[tuple[str, str], ...]:
        """The ``SET LOCAL`` settings the query runs with, as (name, value) pairs."""
        return self._settings

    def _key(self, values: list[Any]) -> Hashable:
        # The values go in the order _core binds them.
        values.append(self._query_vector)
        where_key = None if self._where is None else self._where._key(values)
        values += (
            self._vector_candidates,
            self._text_query,
            self._text_candidates,
            self._k,
            self._vector_weight,
            self._text_weight,
            self._limit,
        )
        return (
            self._vector_column,
            self._operator,
            self._text_column,
            self._parser,
            self._config,
            self._key_column,
            self._columns,
            where_key,
        )

    def _core(self, binder: Binder) -> Any:
        vcol, tcol, key = self._vector_column, self._text_column, self._key_column
        table = vcol.table
        binder.push_scope([table])
        query_vector = binder.bind(vcol.type, column_label(vcol))
        where = None if self._where is None else self._where._core(binder)
        binder.pop_scope()
        vector_candidates = binder.bind(sa.Integer(), "vector_candidates")
        text = binder.bind(_TEXT, column_label(tcol))
        text_candidates = binder.bind(sa.Integer(), "text_candidates")
        k = binder.bind(sa.Float(), "k")
        vector_weight = binder.bind(sa.Float(), "vector_weight")
        text_weight = binder.bind(sa.Float(), "text_weight")
        limit = binder.bind(sa.Integer(), "limit")

        # Vector candidates: a KNN scan the index serves (ORDER BY distance LIMIT n), then ranked.
        dist = Distance(vcol, self._operator, query_vector).label("distance")
        knn = sa.select(key.label("key"), dist).select_from(table)
        if where is not None:
            knn = knn.where(where)
        knn_sub = knn.order_by(dist).limit(vector_candidates).subquery("knn")
        vector_hits = sa.select(
            knn_sub.c.key, sa.func.row_number().over(order_by=knn_sub.c.distance).label("rank")
        ).cte("vector_hits")

        # Text candidates: GIN-matched documents by ts_rank, then ranked.
        tsq = _tsquery_core(self._parser, self._config, text)
        score = sa.func.ts_rank(tcol, tsq, type_=sa.Float()).label("score")
        fts = sa.select(key.label("key"), score).select_from(table)
        fts = fts.where(tcol.op("@@", is_comparison=True)(tsq))
        if where is not None:
            fts = fts.where(where)
        fts_sub = fts.order_by(score.desc(), key).limit(text_candidates).subquery("fts")
        text_hits = sa.select(
            fts_sub.c.key,
            sa.func.row_number()
            .over(order_by=(fts_sub.c.score.desc(), fts_sub.c.key))
            .label("rank"),
        ).cte("text_hits")

        # Reciprocal rank fusion: weight / (k + rank) per list; a missing rank adds 0.
        fused_score = _plus(
            _rrf_term(vector_weight, k, vector_hits.c.rank),
            _rrf_term(text_weight, k, text_hits.c.rank),
        )
        fused = (
            sa.select(
                sa.func.coalesce(vector_hits.c.key, text_hits.c.key).label("key"),
                fused_score.label("score"),
                vector_hits.c.rank.label("vector_rank"),
                text_hits.c.rank.label("text_rank"),
            )
            .select_from(
                vector_hits.join(text_hits, vector_hits.c.key == text_hits.c.key, full=True)
            )
            .cte("fused")
        )
        return (
            sa.select(*self._columns, fused.c.score, fused.c.vector_rank, fused.c.text_rank)
            .select_from(fused.join(table, key == fused.c.key))
            .order_by(fused.c.score.desc(), fused.c.key)
            .limit(limit)
        )


def _plus(left: Any, right: Any) -> ColumnElement[float]:
    result: ColumnElement[float] = left.op("+", return_type=sa.Float())(right)
    return result


def _rrf_term(weight: Any, k: Any, rank: Any) -> ColumnElement[float]:
    """``coalesce(weight / (k + rank), 0)``. Generic operators, because SQLAlchemy's own
    ``/`` on floats adds casts that only obscure the formula."""
    share = weight.op("/", return_type=sa.Float())(_plus(k, rank))
    result: ColumnElement[float] = sa.func.coalesce(share, sa.literal_column("0"), type_=sa.Float())
    return result


@overload
def hybrid_search(
    vector_column: ColumnElement[Any],
    query_vector: Any,
    text_column: ColumnElement[Any],
    text_query: str,
    *,
    columns: FromClause[HasRowPos[*Ts]],  # type: ignore[type-var]
    limit: int = 10,
    k: float = 60,
    vector_weight: float = 1.0,
    text_weight: float = 1.0,
    vector_candidates: int = 40,
    text_candidates: int = 40,
    metric: Metric | None = None,
    mode: TextMode = "websearch",
    config: str = "english",
    where: Condition | ColumnElement[bool] | None = None,
    key: ColumnElement[Any] | None = None,
    ef_search: int | None = None,
    iterative_scan: IterativeScan | None = None,
    probes: int | None = None,
) -> HybridSearchQuery[*Ts, float, int | None, int | None]: ...


@overload
def hybrid_search(
    vector_column: ColumnElement[Any],
    query_vector: Any,
    text_column: ColumnElement[Any],
    text_query: str,
    *,
    columns: Sequence[ColumnElement[Any]] | None = None,
    limit: int = 10,
    k: float = 60,
    vector_weight: float = 1.0,
    text_weight: float = 1.0,
    vector_candidates: int = 40,
    text_candidates: int = 40,
    metric: Metric | None = None,
    mode: TextMode = "websearch",
    config: str = "english",
    where: Condition | ColumnElement[bool] | None = None,
    key: ColumnElement[Any] | None = None,
    ef_search: int | None = None,
    iterative_scan: IterativeScan | None = None,
    probes: int | None = None,
) -> HybridSearchQuery[*tuple[Any, ...]]: ...


def hybrid_search(
    vector_column: ColumnElement[Any],
    query_vector: Any,
    text_column: ColumnElement[Any],
    text_query: str,
    *,
    columns: Any = None,
    limit: int = 10,
    k: float = 60,
    vector_weight: float = 1.0,
    text_weight: float = 1.0,
    vector_candidates: int = 40,
    text_candidates: int = 40,
    metric: Metric | None = None,
    mode: TextMode = "websearch",
    config: str = "english",
    where: Condition | ColumnElement[bool] | None = None,
    key: ColumnElement[Any] | None = None,
    ef_search: int | None = None,
    iterative_scan: IterativeScan | None = None,
    probes: int | None = None,
) -> Any:
    """Rows ranked by a KNN search and a full-text search together, in ONE SQL statement.

    Each search takes its best candidates (``vector_candidates`` nearest by
    ``metric``, served by the vector index; ``text_candidates`` matching
    ``text_query`` by ``ts_rank``, served by the GIN index) and numbers them
    1, 2, 3... Reciprocal rank fusion then scores each row

        score = vector_weight / (k + vector_rank) + text_weight / (k + text_rank)

    where a row missing from one list gets 0 from it, so a row both searches
    found ranks above rows only one found. The result is the table's columns
    (or ``columns``: a table, which also types the rows, or a list of
    columns), then ``score``, ``vector_rank`` and ``text_rank`` (None where
    that search did not find the row), best first, ``limit`` rows.

    ``where`` filters both searches. ``key`` joins the two lists (default: the
    table's primary key). The search settings (``ef_search``,
    ``iterative_scan``, ``probes``) are those of :func:`knn_settings` for
    ``vector_candidates`` rows, applied to this statement only.

        >>> q = hybrid_search(doc.c.embedding, v, doc.c.search, "postgres tuning", columns=doc)
        >>> db.all(q)   # list[tuple[int, str, ..., float, int | None, int | None]]
    """
    vcol = table_column(vector_column, "hybrid_search()")
    tcol = table_column(text_column, "hybrid_search()")
    table = vcol.table
    if tcol.table is not table:
        raise SchemaError(
            f"hybrid_search() searches one table: {column_label(vcol)} and "
            f"{column_label(tcol)} are from different tables",
            column=column_label(tcol),
        )
    vtype = vector_type(vcol, "hybrid_search()")
    operator = OPERATORS[resolve_metric(vtype, metric, vcol)]
    _check_document(tcol, "hybrid_search()")
    if not isinstance(text_query, str):
        raise CompileError(f"hybrid_search() needs the search text as a str, got {text_query!r}")
    if query_vector is None:
        raise CompileError("hybrid_search() needs a query vector, not None")
    key_column = _key_column(table, key)
    if columns is None:
        selected = tuple(table.c)
    elif isinstance(columns, FromClause):
        selected = tuple(columns.c)
    else:
        selected = tuple(columns)
    weights = (
        _check_weight(vector_weight, "vector_weight"),
        _check_weight(text_weight, "text_weight"),
    )
    if weights == (0.0, 0.0):
        raise CompileError("vector_weight and text_weight cannot both be 0")
    vector_candidates = _check_positive_int(vector_candidates, "vector_candidates")
    settings = knn_settings(
        vector_candidates, ef_search=ef_search, iterative_scan=iterative_scan, probes=probes
    )
    return HybridSearchQuery(
        vector_column=vcol,
        query_vector=query_vector,
        text_column=tcol,
        text_query=text_query,
        columns=selected,
        key_column=key_column,
        operator=operator,
        parser=_parser(mode),
        config=_check_config(config),
        where=None if where is None else as_condition(where),
        k=_check_weight(k, "k"),
        vector_weight=weights[0],
        text_weight=weights[1],
        vector_candidates=vector_candidates,
        text_candidates=_check_positive_int(text_candidates, "text_candidates"),
        limit=_check_positive_int(limit, "limit"),
        settings=tuple(settings.items()),
    )


def _key_column(table: Any, key: Any) -> sa.Column[Any]:
    if key is not None:
        column = table_column(key, "hybrid_search(key=)")
        if column.table is not table:
            raise SchemaError(
                f"key {column_label(column)} is not a column of {table.name}",
                column=column_label(column),
            )
        return column
    primary: list[sa.Column[Any]] = list(table.primary_key.columns)
    if len(primary) != 1:
        raise SchemaError(
            f"hybrid_search() joins the two searches on a unique key; {table.name} has "
            f"{'a composite' if primary else 'no'} primary key: pass key=",
        )
    return primary[0]
