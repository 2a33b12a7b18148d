"""The example AI-pipeline schema: plain SQLAlchemy Core tables with typed columns.

The hand-written migrations in ``migrations/sql/`` create exactly these tables
(a test compares the migrated database with this module).

Type checkers know every column's Python type from these declarations (no
code generation), e.g. ``pipeline_run.c.cost`` is ``Column[Decimal]``. The
tables are created by the hand-written files in ``migrations/sql/``;
``querykit sql --ddl`` prints what SQLAlchemy would create, as a starting point.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, TypedDict

from pgvector import Vector
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    TypedColumns,
    func,
)

from querykit.columns import cuid2, jsonb, vector

metadata = MetaData()


class Status(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class RunMetadata(TypedDict, total=False):
    topic: str
    source: str
    tags: list[str]


class pipeline_run_cols(TypedColumns):
    id: Column[str] = Column(Text, primary_key=True, default=cuid2)
    name: Column[str] = Column(Text, nullable=False)
    status: Column[Status] = Column(
        Enum(Status, name="status"), nullable=False, server_default="PENDING"
    )
    started_at: Column[dt.datetime] = Column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    ended_at: Column[dt.datetime | None] = Column(DateTime(timezone=True))
    duration: Column[float | None] = Column(Numeric(asdecimal=False))
    cost: Column[Decimal] = Column(Numeric(12, 6), nullable=False, server_default="0")
    metadata: Column[RunMetadata | None] = Column(jsonb(RunMetadata))

    __row_pos__: tuple[
        str, str, Status, dt.datetime, dt.datetime | None, float | None, Decimal, RunMetadata | None
    ]


pipeline_run = Table(
    "pipeline_run",
    metadata,
    pipeline_run_cols,
    Index("pipeline_run_status_started_at_idx", "status", "started_at"),
)


class pipeline_step_cols(TypedColumns):
    id: Column[str] = Column(Text, primary_key=True, default=cuid2)
    run_id: Column[str] = Column(
        Text, ForeignKey("pipeline_run.id", ondelete="CASCADE"), nullable=False
    )
    name: Column[str] = Column(Text, nullable=False)
    status: Column[Status] = Column(
        Enum(Status, name="status"), nullable=False, server_default="PENDING"
    )
    input: Column[dict[str, Any] | None] = Column(jsonb(dict[str, Any]))
    output: Column[dict[str, Any] | None] = Column(jsonb(dict[str, Any]))
    tokens: Column[int] = Column(Integer, nullable=False, server_default="0")
    model: Column[str | None] = Column(Text)
    created_at: Column[dt.datetime] = Column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __row_pos__: tuple[
        str,
        str,
        str,
        Status,
        dict[str, Any] | None,
        dict[str, Any] | None,
        int,
        str | None,
        dt.datetime,
    ]


pipeline_step = Table(
    "pipeline_step",
    metadata,
    pipeline_step_cols,
    Index("pipeline_step_run_id_created_at_idx", "run_id", "created_at"),
)


class embedding_cols(TypedColumns):
    id: Column[int] = Column(BigInteger, primary_key=True, autoincrement=True)
    content: Column[str] = Column(Text, nullable=False)
    embedding: Column[Vector] = Column(vector(384), nullable=False)
    metadata: Column[dict[str, Any]] = Column(
        jsonb(dict[str, Any]), nullable=False, server_default="{}"
    )
    created_at: Column[dt.datetime] = Column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __row_pos__: tuple[int, str, Vector, dict[str, Any], dt.datetime]


embedding = Table(
    "embedding",
    metadata,
    embedding_cols,
    Index(
        "embedding_embedding_hnsw_idx",
        "embedding",
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    ),
)


class agent_context_cols(TypedColumns):
    id: Column[int] = Column(BigInteger, primary_key=True, autoincrement=True)
    session: Column[str] = Column(Text, nullable=False)
    context: Column[dict[str, Any]] = Column(jsonb(dict[str, Any]), nullable=False)
    metadata: Column[dict[str, Any] | None] = Column(jsonb(dict[str, Any]))
    last_used: Column[dt.datetime] = Column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __row_pos__: tuple[int, str, dict[str, Any], dict[str, Any] | None, dt.datetime]


agent_context = Table(
    "agent_context",
    metadata,
    agent_context_cols,
    Index(
        "agent_context_context_idx",
        "context",
        postgresql_using="gin",
        postgresql_ops={"context": "jsonb_path_ops"},
    ),
)


class content_item_cols(TypedColumns):
    id: Column[str] = Column(Text, primary_key=True, default=cuid2)
    type: Column[str] = Column(Text, nullable=False)
    metadata: Column[dict[str, Any]] = Column(jsonb(dict[str, Any]), nullable=False)

    __row_pos__: tuple[str, str, dict[str, Any]]


content_item = Table("content_item", metadata, content_item_cols)
