"""querykit: a SQL-first, typed query-builder toolkit for PostgreSQL.

Not an ORM: tables are SQLAlchemy Core tables, queries are immutable builders
that always show their SQL, execution goes straight to psycopg 3.

    >>> from querykit import select, eq
    >>> select(run.c.id).where(eq(run.c.status, Status.FAILED)).to_sql().sql
    'SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.status = %s'
"""

import importlib as _importlib
import sys as _sys
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:
    from . import columns, migrate
    from .build.functions import avg, count, count_distinct, fn
    from .build.jsonb import (
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
    from .build.nested import (
        NestedQuery,
        count_of,
        every,
        find_first,
        find_many,
        include,
        none,
        some,
    )
    from .build.operators import (
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
    from .build.placeholder import placeholder
    from .build.query import (
        CompoundQuery,
        DeleteQuery,
        InsertQuery,
        Query,
        SelectQuery,
        UpdateQuery,
        asc,
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
    from .build.raw import RawQuery, raw, sql
    from .build.search import (
        HybridSearchQuery,
        hybrid_search,
        matches,
        ts_rank,
        ts_rank_cd,
        tsquery,
        tsvector_column,
        tsvector_index,
    )
    from .build.sqltext import CompiledSQL
    from .build.vector import (
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
    from .codecs.jsonable import jsonable
    from .columns import bit, columns_of, cuid, cuid2, halfvec, jsonb, sparsevec, uuid7, vector
    from .compile import cache_info
    from .errors import (
        ArgumentError,
        ColumnTypeError,
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
    from .execute.database import Database, Transaction, connect
    from .execute.database_async import AsyncDatabase, AsyncTransaction, connect_async
    from .execute.prepared_query import PreparedQuery
    from .execute.prepared_query_async import AsyncPreparedQuery
    from .execute.querylog import QueryRecord
    from .schema.indexes import index_sql
    from .schema.relations import many_to_many, relation, relations_of
    from .schema.row_pos import check_row_pos
    from .settings import Settings, load_settings, mask_url

# Where each public name lives. Importing querykit imports none of them: each module
# loads on first use, so that `querykit --help` does not wait for SQLAlchemy and
# psycopg. A test checks this table against the imports above.
_LAZY: dict[str, tuple[str, ...]] = {
    ".migrate": (),  # the subpackage itself: querykit.migrate
    ".execute.querylog": ("QueryRecord",),
    ".schema.indexes": ("index_sql",),
    ".schema.row_pos": ("check_row_pos",),
    ".codecs.jsonable": ("jsonable",),
    ".columns": (
        "bit",
        "columns_of",
        "cuid",
        "cuid2",
        "halfvec",
        "jsonb",
        "sparsevec",
        "uuid7",
        "vector",
    ),
    ".build.sqltext": ("CompiledSQL",),
    ".compile": ("cache_info",),
    ".execute.database": ("Database", "Transaction", "connect"),
    ".execute.database_async": ("AsyncDatabase", "AsyncTransaction", "connect_async"),
    ".errors": (
        "ArgumentError",
        "ColumnTypeError",
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
    ".build.functions": ("avg", "count", "count_distinct", "fn"),
    ".build.jsonb": (
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
    ".build.operators": (
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
    ".build.placeholder": ("placeholder",),
    ".execute.prepared_query": ("PreparedQuery",),
    ".execute.prepared_query_async": ("AsyncPreparedQuery",),
    ".build.query": (
        "CompoundQuery",
        "DeleteQuery",
        "InsertQuery",
        "Query",
        "SelectQuery",
        "UpdateQuery",
        "asc",
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
    ".build.raw": ("RawQuery", "raw", "sql"),
    ".build.nested": (
        "NestedQuery",
        "count_of",
        "every",
        "find_first",
        "find_many",
        "include",
        "none",
        "some",
    ),
    ".schema.relations": ("many_to_many", "relation", "relations_of"),
    ".build.search": (
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
    ".build.vector": (
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
# Subpackages exported as themselves. ``querykit.columns`` was also a function (now
# ``columns_of``); the module stays callable, with a DeprecationWarning, for one release.
_SUBMODULES = {"columns", "migrate"}
_EXPORTS["columns"] = ".columns"
_EXPORTS["migrate"] = ".migrate"

# Names kept for one release: they warn and point to what replaced them. ``sum``, ``min``
# and ``max`` left ``__all__`` so that ``from querykit import *`` no longer shadows the
# builtins; they are ``fn.sum``, ``fn.min`` and ``fn.max``.
_DEPRECATED: dict[str, str] = {"sum": "fn.sum", "min": "fn.min", "max": "fn.max"}


class _Package(_ModuleType):
    """Keeps an exported function when a submodule of the same name loads.

    Python sets a package attribute to each submodule it imports; an exported name that
    is not a submodule export (a function) must not be replaced that way.
    """

    def __setattr__(self, name: str, value: _Any) -> None:
        if isinstance(value, _ModuleType) and name in _EXPORTS and name not in _SUBMODULES:
            return
        super().__setattr__(name, value)


def __getattr__(name: str) -> _Any:
    if name in _DEPRECATED:
        import warnings

        warnings.warn(
            f"querykit.{name} is deprecated and will be removed in the next release; "
            f"use querykit.{_DEPRECATED[name]} (it does not shadow the builtin {name}())",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(__getattr__("fn"), name)
    if name == "__version__":  # read on first use: importlib.metadata costs every CLI start ~25 ms
        from importlib import metadata

        version = metadata.version("querykit")
        globals()[name] = version
        return version
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'querykit' has no attribute {name!r}")
    loaded = _importlib.import_module(module, __name__)
    if module.startswith(".build"):
        # A builder's .to_sql() renders through the compile layer, which registers
        # itself on import: load it with the first builder.
        from . import compile as _compile  # noqa: F401
    value = loaded if name in _SUBMODULES else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if _TYPE_CHECKING:
    __version__: str
    """The installed distribution's version: pyproject.toml is the one place it is written."""


__all__ = [
    "ArgumentError",
    "AsyncDatabase",
    "AsyncPreparedQuery",
    "AsyncTransaction",
    "ColumnTypeError",
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
    "check_row_pos",
    "columns",
    "columns_of",
    "connect",
    "connect_async",
    "cosine_distance",
    "count",
    "count_distinct",
    "count_of",
    "cuid",
    "cuid2",
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
    "fn",
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
    "jsonable",
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
    "migrate",
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
    "ts_rank",
    "ts_rank_cd",
    "tsquery",
    "tsvector_column",
    "tsvector_index",
    "union",
    "union_all",
    "update",
    "uuid7",
    "vector",
]

_sys.modules[__name__].__class__ = _Package
