"""The compile layer: builder → :class:`Shape` (SQL text, parameter slots, adapters, decoders).

Pure and cached per shape; it never opens a connection. Importing it registers the
renderer behind every builder's ``.to_sql()`` (see :mod:`querykit.build.sqltext`) and
the SQL of nested queries (:mod:`querykit.compile.nested`).
"""

from ..build.sqltext import CompiledSQL
from . import nested as nested
from .shape import (
    Shape,
    build_shape,
    cache_info,
    clear_cache,
    compile_query,
    to_compiled_sql,
    to_sql,
)

__all__ = [
    "CompiledSQL",
    "Shape",
    "build_shape",
    "cache_info",
    "clear_cache",
    "compile_query",
    "to_compiled_sql",
    "to_sql",
]
