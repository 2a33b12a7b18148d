"""Index helpers shared by the vector, JSONB and full-text modules.

Each helper returns a SQLAlchemy ``Index`` over a table column, so it joins
``table.indexes`` like any ``Index(...)`` declared next to the table: the
metadata, ``metadata.create_all`` and ``querykit sql --ddl`` all see it.
:func:`index_sql` renders one as the ``CREATE INDEX`` statement for a
hand-written migration file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.schema import CreateIndex

from ..codecs.dialect import DIALECT
from ..errors import SchemaError
from .naming import column_label

__all__ = ["build_index", "check_identifier", "ddl_text", "index_sql", "table_column"]

_MAX_IDENTIFIER = 63  # PostgreSQL silently truncates longer names (NAMEDATALEN - 1)


def table_column(column: Any, what: str) -> sa.Column[Any]:
    """``column`` if it is a column of a Table; else a SchemaError saying what to pass."""
    if isinstance(column, sa.Column) and isinstance(column.table, sa.Table):
        return column
    raise SchemaError(
        f"{what} needs a column of a Table (e.g. embedding.c.embedding), "
        f"got {type(column).__name__}",
        column=column_label(column) if hasattr(column, "name") else None,
    )


def check_identifier(name: Any, what: str, kind: str = "index") -> str:
    """``name`` if PostgreSQL can take it as an identifier as it is; else a SchemaError.

    The server truncates a name longer than 63 bytes without a word (two indexes
    whose names differ only after byte 63 collide), and cannot take a NUL at all.
    """
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{what}: the {kind} name must be a non-empty str, got {name!r}")
    if "\x00" in name:
        raise SchemaError(f"{what}: the {kind} name {name!r} contains a NUL (\\x00) character")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > _MAX_IDENTIFIER:
        raise SchemaError(
            f"{what}: the {kind} name {name!r} is {size} bytes, longer than PostgreSQL's "
            f"{_MAX_IDENTIFIER} (it would be cut short without a word); pass a shorter name="
        )
    try:
        name.encode()
    except UnicodeEncodeError:
        raise SchemaError(
            f"{what}: the {kind} name {name!r} holds a lone surrogate, which UTF-8 cannot encode"
        ) from None
    return name


def ddl_text(element: Any, what: str) -> str:
    """A DDL element (``CreateIndex``, ``CreateTable``...) compiled for PostgreSQL.

    A name SQLAlchemy refuses (a constraint or index name made by a naming
    convention, over 63 characters) is a SchemaError naming ``what``.
    """
    try:
        return str(element.compile(dialect=DIALECT))
    except sqlalchemy.exc.IdentifierError as exc:
        raise SchemaError(f"{what}: {exc}; give the constraint or index a shorter name") from None


def build_index(
    column: sa.Column[Any],
    *,
    method: str,
    opclass: str | None,
    options: Mapping[str, int],
    name: str | None,
    suffix: str,
    what: str,
) -> sa.Index:
    """``Index(name, column, postgresql_using=method, postgresql_ops=..., postgresql_with=...)``."""
    table = column.table
    index_name = check_identifier(
        f"{table.name}_{column.name}_{suffix}_idx" if name is None else name, what
    )
    kwargs: dict[str, Any] = {"postgresql_using": method}
    if opclass is not None:
        kwargs["postgresql_ops"] = {column.key: opclass}
    if options:
        kwargs["postgresql_with"] = dict(options)
    return sa.Index(index_name, column, **kwargs)


def index_sql(index: sa.Index, *, concurrently: bool = False, if_not_exists: bool = False) -> str:
    """The ``CREATE INDEX`` statement for ``index``, for a migration file.

    ``concurrently=True`` builds it without blocking writes (it cannot run in a
    transaction: mark the migration accordingly).

        >>> index_sql(hnsw_index(embedding.c.embedding, "cosine"), concurrently=True)
        'CREATE INDEX CONCURRENTLY embedding_embedding_hnsw_cosine_idx ON embedding
         USING hnsw (embedding vector_cosine_ops)'
    """
    if not isinstance(index, sa.Index) or index.table is None:
        raise SchemaError(
            f"index_sql() needs an Index attached to a table, got {type(index).__name__}"
        )
    if isinstance(index.name, str):
        check_identifier(index.name, "index_sql()")
    text = ddl_text(CreateIndex(index, if_not_exists=if_not_exists), "index_sql()")
    if concurrently and not index.dialect_options["postgresql"]["concurrently"]:
        # SQLAlchemy renders "CREATE [UNIQUE] INDEX ..."; CONCURRENTLY follows INDEX.
        text = text.replace("INDEX ", "INDEX CONCURRENTLY ", 1)
    return text
