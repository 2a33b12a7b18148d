"""querykit: a SQL-first, typed query-builder toolkit for PostgreSQL.

Not an ORM: tables are SQLAlchemy Core tables, queries are immutable builders
that always show their SQL, execution goes straight to psycopg 3.

    >>> from querykit import select, eq
    >>> select(run.c.id).where(eq(run.c.status, Status.FAILED)).to_sql().sql
    'SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.status = %s'
"""

import importlib as _importlib
import sys as _sys
from importlib import metadata as _metadata
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:
    from . import migrate
    from ._execute import QueryRecord
    from ._index import index_sql
    from .columns import bit, cuid, halfvec, jsonb, sparsevec, vector
    from .compile import CompiledSQL, cache_info
    from .db import Database, Transaction, connect
    from .db_async import AsyncDatabase, AsyncTransaction, connect_async
    from .errors import (
        CompileError,
        ConfigError,
        ConnectError,
        DatabaseError,
        DecodeError,
        EmbeddedError,
        ExecuteError,
        IsolationError,
        LockTimeout,
        MappingError,
        MigrationError,
        MigrationFailed,
        MigrationFileError,
        MigrationRefused,
        MultipleResultsError,
        NoResultError,
        QueryKitError,
        SchemaError,
        ValidationError,
    )
    from .functions import avg, count, count_distinct, max, min, sum
    from .json_ops import (
        has_all_keys,
        has_any_key,
        has_key,
        json_contained,
        json_contains,
        json_path,
        json_path_text,
        json_set,
        jsonb_index,
    )
    from .operators import (
        Condition,
        and_,
        array_contained,
        array_contains,
        array_overlaps,
        between,
        eq,
        escape_like,
        exists,
        gt,
        gte,
        ilike,
        in_array,
        is_not_null,
        is_null,
        like,
        lt,
        lte,
        ne,
        not_,
        not_exists,
        not_ilike,
        not_in_array,
        not_like,
        or_,
    )
    from .prepared import AsyncPreparedQuery, PreparedQuery, placeholder
    from .query import (
        CompoundQuery,
        DeleteQuery,
        InsertQuery,
        Query,
        SelectQuery,
        UpdateQuery,
        asc,
        columns,
        delete,
        desc,
        except_,
        except_all,
        excluded,
        insert,
        intersect,
        intersect_all,
        select,
        union,
        union_all,
        update,
    )
    from .raw import RawQuery, raw, sql
    from .relations import (
        NestedQuery,
        count_of,
        every,
        find_first,
        find_many,
        include,
        many_to_many,
        none,
        relation,
        relations_of,
        some,
    )
    from .search import (
        HybridSearchQuery,
        hybrid_search,
        matches,
        ts_rank,
        ts_rank_cd,
        tsquery,
        tsvector_column,
        tsvector_index,
    )
    from .settings import Settings, load_settings, mask_url
    from .vectors import (
        cosine_distance,
        distance,
        hamming_distance,
        hnsw_index,
        inner_product,
        ivfflat_index,
        jaccard_distance,
        knn_settings,
        l1_distance,
        l2_distance,
        nearest,
        negative_inner_product,
    )

# Where each public name lives. Importing querykit imports none of them: each module
# loads on first use, so that `querykit --help` does not wait for SQLAlchemy and
# psycopg. A test checks this table against the imports above.
_LAZY: dict[str, tuple[str, ...]] = {
    ".migrate": (),  # the subpackage itself: querykit.migrate
    "._execute": ("QueryRecord",),
    "._index": ("index_sql",),
    ".columns": ("bit", "cuid", "halfvec", "jsonb", "sparsevec", "vector"),
    ".compile": ("CompiledSQL", "cache_info"),
    ".db": ("Database", "Transaction", "connect"),
    ".db_async": ("AsyncDatabase", "AsyncTransaction", "connect_async"),
    ".errors": (
        "CompileError",
        "ConfigError",
        "ConnectError",
        "DatabaseError",
        "DecodeError",
        "EmbeddedError",
        "ExecuteError",
        "IsolationError",
        "LockTimeout",
        "MappingError",
        "MigrationError",
        "MigrationFailed",
        "MigrationFileError",
        "MigrationRefused",
        "MultipleResultsError",
        "NoResultError",
        "QueryKitError",
        "SchemaError",
        "ValidationError",
    ),
    ".functions": ("avg", "count", "count_distinct", "max", "min", "sum"),
    ".json_ops": (
        "has_all_keys",
        "has_any_key",
        "has_key",
        "json_contained",
        "json_contains",
        "json_path",
        "json_path_text",
        "json_set",
        "jsonb_index",
    ),
    ".operators": (
        "Condition",
        "and_",
        "array_contained",
        "array_contains",
        "array_overlaps",
        "between",
        "eq",
        "escape_like",
        "exists",
        "gt",
        "gte",
        "ilike",
        "in_array",
        "is_not_null",
        "is_null",
        "like",
        "lt",
        "lte",
        "ne",
        "not_",
        "not_exists",
        "not_ilike",
        "not_in_array",
        "not_like",
        "or_",
    ),
    ".prepared": ("AsyncPreparedQuery", "PreparedQuery", "placeholder"),
    ".query": (
        "CompoundQuery",
        "DeleteQuery",
        "InsertQuery",
        "Query",
        "SelectQuery",
        "UpdateQuery",
        "asc",
        "columns",
        "delete",
        "desc",
        "except_",
        "except_all",
        "excluded",
        "insert",
        "intersect",
        "intersect_all",
        "select",
        "union",
        "union_all",
        "update",
    ),
    ".raw": ("RawQuery", "raw", "sql"),
    ".relations": (
        "NestedQuery",
        "count_of",
        "every",
        "find_first",
        "find_many",
        "include",
        "many_to_many",
        "none",
        "relation",
        "relations_of",
        "some",
    ),
    ".search": (
        "HybridSearchQuery",
        "hybrid_search",
        "matches",
        "ts_rank",
        "ts_rank_cd",
        "tsquery",
        "tsvector_column",
        "tsvector_index",
    ),
    ".settings": ("Settings", "load_settings", "mask_url"),
    ".vectors": (
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
    ),
}
_EXPORTS: dict[str, str] = {name: module for module, names in _LAZY.items() for name in names}
_SUBMODULES = {"migrate"}
_EXPORTS["migrate"] = ".migrate"


class _Package(_ModuleType):
    """Keeps an exported function when a submodule of the same name loads.

    Importing ``querykit.raw`` sets the package's attribute ``raw`` to that module;
    the public ``querykit.raw`` is the function ``raw`` (likewise ``columns``).
    """

    def __setattr__(self, name: str, value: _Any) -> None:
        if isinstance(value, _ModuleType) and name in _EXPORTS and name not in _SUBMODULES:
            return
        super().__setattr__(name, value)


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'querykit' has no attribute {name!r}")
    loaded = _importlib.import_module(module, __name__)
    value = loaded if name in _SUBMODULES else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__version__: str = _metadata.version("querykit")
"""The installed distribution's version: pyproject.toml is the one place it is written."""


__all__ = [
    "AsyncDatabase",
    "AsyncPreparedQuery",
    "AsyncTransaction",
    "CompileError",
    "CompiledSQL",
    "CompoundQuery",
    "Condition",
    "ConfigError",
    "ConnectError",
    "Database",
    "DatabaseError",
    "DecodeError",
    "DeleteQuery",
    "EmbeddedError",
    "ExecuteError",
    "HybridSearchQuery",
    "InsertQuery",
    "IsolationError",
    "LockTimeout",
    "MappingError",
    "MigrationError",
    "MigrationFailed",
    "MigrationFileError",
    "MigrationRefused",
    "MultipleResultsError",
    "NestedQuery",
    "NoResultError",
    "PreparedQuery",
    "Query",
    "QueryKitError",
    "QueryRecord",
    "RawQuery",
    "SchemaError",
    "SelectQuery",
    "Settings",
    "Transaction",
    "UpdateQuery",
    "ValidationError",
    "__version__",
    "and_",
    "array_contained",
    "array_contains",
    "array_overlaps",
    "asc",
    "avg",
    "between",
    "bit",
    "cache_info",
    "columns",
    "connect",
    "connect_async",
    "cosine_distance",
    "count",
    "count_distinct",
    "count_of",
    "cuid",
    "delete",
    "desc",
    "distance",
    "eq",
    "escape_like",
    "every",
    "except_",
    "except_all",
    "excluded",
    "exists",
    "find_first",
    "find_many",
    "gt",
    "gte",
    "halfvec",
    "hamming_distance",
    "has_all_keys",
    "has_any_key",
    "has_key",
    "hnsw_index",
    "hybrid_search",
    "ilike",
    "in_array",
    "include",
    "index_sql",
    "inner_product",
    "insert",
    "intersect",
    "intersect_all",
    "is_not_null",
    "is_null",
    "ivfflat_index",
    "jaccard_distance",
    "json_contained",
    "json_contains",
    "json_path",
    "json_path_text",
    "json_set",
    "jsonb",
    "jsonb_index",
    "knn_settings",
    "l1_distance",
    "l2_distance",
    "like",
    "load_settings",
    "lt",
    "lte",
    "many_to_many",
    "mask_url",
    "matches",
    "max",
    "migrate",
    "min",
    "ne",
    "nearest",
    "negative_inner_product",
    "none",
    "not_",
    "not_exists",
    "not_ilike",
    "not_in_array",
    "not_like",
    "or_",
    "placeholder",
    "raw",
    "relation",
    "relations_of",
    "select",
    "some",
    "sparsevec",
    "sql",
    "sum",
    "ts_rank",
    "ts_rank_cd",
    "tsquery",
    "tsvector_column",
    "tsvector_index",
    "union",
    "union_all",
    "update",
    "vector",
]

_sys.modules[__name__].__class__ = _Package
