"""What the Studio can show: the tables, their columns by kind, keys, relations and vector metrics.

Tables come from the schema module of the settings (``schema = "schema"``), so
the Studio uses the same Core tables, types and relation names as the code; a
project without one gets the database's tables reflected instead. Every name a
browser sends (table, column, relation) is looked up here, never pasted into SQL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
import sqlalchemy.exc

from .._project import import_project_module
from ..build.vector import Metric
from ..codecs import sql_type_name
from ..columns import VectorType, vector
from ..errors import ConfigError, ValidationError
from ..schema.relations import Relation, relations_of
from ..settings import Settings

__all__ = [
    "Catalog",
    "ColumnInfo",
    "Kind",
    "TableInfo",
    "load_catalog",
    "parse_value",
    "value_text",
]

Kind = Literal["text", "number", "time", "enum", "bool", "json", "vector", "other"]

# pgvector operator classes -> the metric nearest() must use for the index to serve it
_OPCLASS_METRIC: dict[str, Metric] = {
    "vector_l2_ops": "l2",
    "vector_cosine_ops": "cosine",
    "vector_ip_ops": "inner_product",
    "vector_l1_ops": "l1",
    "halfvec_l2_ops": "l2",
    "halfvec_cosine_ops": "cosine",
    "halfvec_ip_ops": "inner_product",
    "halfvec_l1_ops": "l1",
    "bit_hamming_ops": "hamming",
    "bit_jaccard_ops": "jaccard",
}


@dataclass(frozen=True)
class ColumnInfo:
    """One column as the Studio treats it: how to filter, sort, show and parse it."""

    name: str
    column: sa.Column[Any]
    kind: Kind
    sql_type: str
    nullable: bool
    primary_key: bool
    choices: tuple[str, ...] = ()
    """Enum labels, for the choice filter."""
    references: tuple[str, str] | None = None
    """(table, column) this column points at with a single-column foreign key."""
    references_row: bool = False
    """Whether that column is the whole primary key there, so a value names one row."""
    metric: Metric | None = None
    """For a vector column: the metric of its index (cosine when it has none)."""

    @property
    def ops(self) -> tuple[str, ...]:
        """The filter operators this column accepts, in the order the page shows them."""
        return _OPS[self.kind]


_OPS: dict[Kind, tuple[str, ...]] = {
    "text": ("contains", "eq"),
    "number": ("gte", "lte", "eq"),
    "time": ("gte", "lte"),
    "enum": ("eq",),
    "bool": ("eq",),
    "json": ("json", "has"),
    "vector": (),
    "other": ("eq",),
}


@dataclass(frozen=True)
class TableInfo:
    """What the Studio knows of a table: its columns, primary key and kinds."""

    name: str
    table: sa.Table
    columns: dict[str, ColumnInfo]
    key: tuple[str, ...]
    """Primary-key column names: the keyset of pagination and the identity of a row."""
    children: dict[str, Relation] = field(default_factory=dict)
    """One-to-many relations by querykit's relation names, for 'steps (3)' links."""

    @property
    def parent_keys(self) -> frozenset[str]:
        """Columns that child relations match on (their values make the child links)."""
        return frozenset(own.name for rel in self.children.values() for own, _ in rel.pairs)

    def column(self, name: str) -> ColumnInfo:
        """The column ``name``; a ValidationError naming the valid columns otherwise."""
        try:
            return self.columns[name]
        except KeyError:
            valid = ", ".join(self.columns)
            raise ValidationError(
                f"{self.name} has no column {name!r}; its columns: {valid}", column=name
            ) from None


@dataclass(frozen=True)
class Catalog:
    """The tables the Studio shows, from the schema module or reflected."""

    tables: dict[str, TableInfo]
    source: str
    """``"schema module <name>"`` or ``"reflected from the database"``."""

    def table(self, name: str) -> TableInfo:
        """The table ``name``; a ValidationError naming the valid tables otherwise."""
        try:
            return self.tables[name]
        except KeyError:
            valid = ", ".join(self.tables) or "none"
            raise ValidationError(f"no table {name!r}; the tables are: {valid}") from None


def load_catalog(settings: Settings, url: str) -> Catalog:
    """Tables of the configured schema module, or the database's own when there is none."""
    try:
        module = import_project_module(settings.schema, settings)
    except ConfigError as exc:
        if "not found" not in str(exc):
            raise
        return catalog_of(_reflect(url), "reflected from the database")
    metadatas = [v for v in vars(module).values() if isinstance(v, sa.MetaData)]
    if not metadatas:
        raise ConfigError(f"{settings.schema} has no SQLAlchemy MetaData; is it the schema module?")
    tables = [t for md in metadatas for t in md.tables.values()]
    return catalog_of(tables, f"schema module {settings.schema}")


def catalog_of(tables: list[sa.Table], source: str) -> Catalog:
    infos = {t.fullname: _table_info(t) for t in sorted(tables, key=lambda t: t.fullname)}
    return Catalog(infos, source)


def _reflect(url: str) -> list[sa.Table]:
    """The database's tables (every schema on the search path), with pgvector types known."""
    import pgvector.sqlalchemy  # noqa: F401  registers vector/halfvec/sparsevec for reflection

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    metadata = sa.MetaData()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", sqlalchemy.exc.SAWarning
            )  # types it cannot name: shown as text
            metadata.reflect(engine)
    finally:
        engine.dispose()
    for table in metadata.tables.values():
        for column in table.columns:
            dim = getattr(column.type, "dim", None)
            if type(column.type).__name__ == "VECTOR":
                column.type = vector(dim) if dim else VectorType("vector", None)
    return list(metadata.tables.values())


def _table_info(table: sa.Table) -> TableInfo:
    metrics = _index_metrics(table)
    columns = {c.name: _column_info(c, metrics.get(c.name)) for c in table.columns}
    children = {
        name: rel for name, rel in relations_of(table).items() if rel.many and rel.through is None
    }
    key = tuple(c.name for c in table.primary_key.columns)
    return TableInfo(table.fullname, table, columns, key, children)


def _index_metrics(table: sa.Table) -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for index in table.indexes:
        ops = index.dialect_options["postgresql"].get("ops") or {}
        for column in index.columns:
            metric = _OPCLASS_METRIC.get(str(ops.get(column.name, "")))
            if metric is not None:
                found.setdefault(column.name, metric)
    return found


def _column_info(column: sa.Column[Any], metric: Metric | None) -> ColumnInfo:
    kind = kind_of(column.type)
    references = None
    references_row = False
    fks = list(column.foreign_keys)
    constraint = fks[0].constraint if len(fks) == 1 else None
    if constraint is not None and len(constraint.elements) == 1:
        target = fks[0].column
        references = (target.table.fullname, target.name)
        references_row = [c.name for c in target.table.primary_key.columns] == [target.name]
    choices: tuple[str, ...] = ()
    if kind == "enum":
        choices = tuple(getattr(column.type, "enums", ()))
    if kind == "vector" and metric is None:
        metric = "hamming" if getattr(column.type, "kind", "") == "bit" else "cosine"
    return ColumnInfo(
        name=column.name,
        column=column,
        kind=kind,
        sql_type=_type_name(column.type),
        nullable=bool(column.nullable),
        primary_key=column.primary_key,
        choices=choices,
        references=references,
        references_row=references_row,
        metric=metric if kind == "vector" else None,
    )


_SHORT_TYPES = {
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP WITHOUT TIME ZONE": "timestamp",
    "TIME WITH TIME ZONE": "timetz",
    "TIME WITHOUT TIME ZONE": "time",
    "DOUBLE PRECISION": "float8",
}


def _type_name(type_: sa.types.TypeEngine[Any]) -> str:
    """The type as psql's \\d shows it, short: ``timestamptz``, ``numeric(12, 6)``."""
    try:
        name = sql_type_name(type_)
    except sqlalchemy.exc.CompileError:
        return type(type_).__name__.lower()
    return _SHORT_TYPES.get(name, name.lower())


def kind_of(type_: sa.types.TypeEngine[Any]) -> Kind:
    """How the Studio filters and shows a type."""
    if isinstance(type_, sa.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, VectorType):
        return "vector"
    if isinstance(type_, sa.Enum):
        return "enum"
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.Integer | sa.Numeric | sa.Float):
        return "number"
    if isinstance(type_, sa.DateTime | sa.Date | sa.Time | sa.Interval):
        return "time"
    if isinstance(type_, sa.String):
        return "text"
    return "other"


def parse_value(info: ColumnInfo, text: str) -> Any:
    """A value typed in the browser → the Python value querykit binds for this column.

    Bad input is a ValidationError naming the column and what it expected.
    """
    type_ = info.column.type
    if isinstance(type_, sa.TypeDecorator):
        type_ = type_.impl_instance
    try:
        return _parse(info, type_, text)
    except (ValueError, KeyError, decimal.InvalidOperation, json.JSONDecodeError) as exc:
        raise ValidationError(
            f"{info.name}: {text[:80]!r} is not a valid {info.sql_type} ({_expected(info)})",
            column=info.name,
        ) from exc


def _parse(info: ColumnInfo, type_: Any, text: str) -> Any:
    kind = info.kind
    if kind == "enum":
        enum_class: type[enum.Enum] | None = getattr(type_, "enum_class", None)
        if text not in info.choices:
            raise ValueError(text)
        return enum_class[text] if enum_class is not None else text
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(text)
        return lowered == "true"
    if kind == "number":
        if isinstance(type_, sa.Integer):
            return int(text.strip())
        if isinstance(type_, sa.Numeric) and getattr(type_, "asdecimal", False):
            value = decimal.Decimal(text.strip())
            if not value.is_finite():
                raise ValueError(text)
            return value
        return float(text.strip())
    if kind == "time":
        text = text.strip()
        if isinstance(type_, sa.DateTime):
            moment = dt.datetime.fromisoformat(text)
            if getattr(type_, "timezone", False) and moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)  # a browser's datetime-local: read as UTC
            return moment
        if isinstance(type_, sa.Date):
            return dt.date.fromisoformat(text)
        if isinstance(type_, sa.Time):
            return dt.time.fromisoformat(text)
        raise ValueError(text)
    if kind == "json":
        return json.loads(text)
    if kind == "vector":
        return json.loads(text)
    return text


def _expected(info: ColumnInfo) -> str:
    return {
        "enum": "one of " + ", ".join(info.choices),
        "bool": "true or false",
        "number": "a number",
        "time": "an ISO date/time such as 2026-01-31T12:00",
        "json": "a JSON value",
        "vector": "a JSON list of numbers",
    }.get(info.kind, "text")


def value_text(value: Any) -> str | None:
    """A key or cursor value as text, the inverse of :func:`parse_value` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
