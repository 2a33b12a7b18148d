"""What the linter knows about the schema at a statement: from earlier statements, or a database.

Rules need facts a single statement does not hold: the old type of a column,
the table of an index, whether a table is new (created in this file, or in an
earlier file of the same run, so it is empty), which CHECK constraints prove a
column NOT NULL, the labels of an enum. :meth:`Knowledge.learn` folds each
statement in, in file order; :func:`from_database` starts from a live catalog::

    >>> k = Knowledge()
    >>> k.learn(parse_sql("CREATE TABLE t (a numeric(12,6))")[0].stmt, new=True)
    >>> k.columns["t"]["a"], "t" in k.new_tables
    (ColumnType(name='numeric', mods=(12, 6)), True)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

__all__ = [
    "ColumnType",
    "Constraint",
    "Knowledge",
    "column_type",
    "const_value",
    "object_name",
    "table_name",
    "walk",
    "word",
]


@dataclass(frozen=True)
class ColumnType:
    """A type as PostgreSQL names it internally (``varchar``, ``int4``, ``timestamptz``) with its modifiers."""

    name: str
    mods: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.mods))})" if self.mods else self.name


@dataclass(frozen=True)
class Constraint:
    """What lint knows of a constraint: its table, kind and whether it is validated."""

    table: str
    kind: str  # "check", "foreign", "unique", "primary", "notnull", "other"
    references: str | None = None
    validated: bool = True
    not_null_column: str | None = None
    """For ``CHECK (col IS NOT NULL)``: the column it proves NOT NULL."""
    columns: tuple[str, ...] = ()


@dataclass
class Knowledge:
    """Schema facts; names are lower-case, ``schema.table`` outside ``public``."""

    columns: dict[str, dict[str, ColumnType]] = field(default_factory=dict)
    not_null: set[tuple[str, str]] = field(default_factory=set)
    indexes: dict[str, str] = field(default_factory=dict)
    """Index name → its table."""
    index_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    constraints: dict[tuple[str, str], Constraint] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    new_tables: set[str] = field(default_factory=set)
    """Tables created in the file being linted or an earlier file of the same run: empty, exempt."""
    rows: dict[str, float] = field(default_factory=dict)
    """pg_class.reltuples per table, when a database was given."""
    timezone: str | None = None
    """The session TimeZone, when known (a database, or a SET in the file)."""
    volatile: dict[str, str] = field(default_factory=dict)
    """Function name → provolatile (``v``, ``s``, ``i``) from pg_proc, when a database was given."""

    def copy(self) -> Knowledge:
        """An independent copy, so a file's effects can be tried without changing this one."""
        return Knowledge(
            {t: dict(c) for t, c in self.columns.items()},
            set(self.not_null),
            dict(self.indexes),
            dict(self.index_columns),
            dict(self.constraints),
            {t: list(v) for t, v in self.enums.items()},
            set(self.new_tables),
            self.rows,
            self.timezone,
            self.volatile,
        )

    def references_of(self, table: str) -> set[str]:
        """Tables linked to ``table`` by a foreign key, in either direction."""
        out = set()
        for (owner, _), c in self.constraints.items():
            if c.kind == "foreign" and c.references:
                if owner == table:
                    out.add(c.references)
                if c.references == table:
                    out.add(owner)
        out.discard(table)
        return out

    def checks_on(self, table: str, column: str) -> bool:
        """True when a CHECK or foreign key of ``table`` mentions ``column`` (re-validated on type change)."""
        return any(
            t == table and c.kind in ("check", "foreign") and column in c.columns
            for (t, _), c in self.constraints.items()
        )

    def proven_not_null(self, table: str, column: str) -> bool:
        """Whether a validated CHECK (col IS NOT NULL) proves the column has no NULL."""
        return any(
            t == table and c.validated and c.not_null_column == column
            for (t, _), c in self.constraints.items()
        )

    # -- learning ------------------------------------------------------------------

    def learn(self, node: Any, *, new: bool) -> None:
        """Fold in one statement; ``new`` marks tables it creates as new (empty) ones."""
        if isinstance(node, ast.CreateStmt):
            table = table_name(node.relation)
            self.columns[table] = {}
            if new:
                self.new_tables.add(table)
            for elt in node.tableElts or ():
                if isinstance(elt, ast.ColumnDef):
                    self._add_column(table, elt)
                elif isinstance(elt, ast.Constraint):
                    self._add_constraint(table, elt)
        elif isinstance(node, ast.AlterTableStmt):
            table = table_name(node.relation)
            for cmd in node.cmds or ():
                self._alter(table, cmd)
        elif isinstance(node, ast.IndexStmt) and node.idxname:
            self.indexes[node.idxname.lower()] = table_name(node.relation)
            self.index_columns[node.idxname.lower()] = tuple(
                p.name.lower() for p in node.indexParams or () if p.name
            )
        elif isinstance(node, ast.RenameStmt) and node.relation is not None:
            self._rename(node)
        elif isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
            for obj in node.objects or ():
                name = _dotted(obj)
                self.columns.pop(name, None)
                self.new_tables.discard(name)
        elif isinstance(node, ast.CreateEnumStmt):
            self.enums[_dotted(node.typeName)] = [v.sval for v in node.vals or ()]
        elif isinstance(node, ast.AlterEnumStmt) and node.newVal:
            labels = self.enums.setdefault(_dotted(node.typeName), [])
            if node.newVal not in labels:
                labels.append(node.newVal)
        elif isinstance(node, ast.VariableSetStmt) and (node.name or "").lower() == "timezone":
            value = const_value(node.args[0]) if node.args else None
            self.timezone = str(value) if value is not None else None

    def _add_column(self, table: str, col: Any) -> None:
        name = col.colname.lower()
        self.columns.setdefault(table, {})[name] = column_type(col.typeName)
        for c in col.constraints or ():
            if c.contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY):
                self.not_null.add((table, name))
            elif c.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN):
                conname = (c.conname or f"{table}_{name}_{c.contype.name}").lower()
                self.constraints[(table, conname)] = _constraint(table, c, (name,))

    def _add_constraint(self, table: str, c: Any) -> None:
        columns = tuple(s.sval.lower() for s in (c.fk_attrs or c.keys or ()))
        if c.contype == ConstrType.CONSTR_CHECK:
            columns = tuple(_column_refs(c.raw_expr))
        conname = (c.conname or f"{table}_{'_'.join(columns)}_{c.contype.name}").lower()
        self.constraints[(table, conname)] = _constraint(table, c, columns)
        if c.contype == ConstrType.CONSTR_PRIMARY:
            self.not_null.update((table, col) for col in columns)
        if c.indexname:
            self.indexes.pop(c.indexname.lower(), None)
            self.indexes[conname] = table
        elif c.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
            self.indexes[conname] = table

    def _alter(self, table: str, cmd: Any) -> None:
        sub = cmd.subtype
        col = (cmd.name or "").lower()
        if sub == AlterTableType.AT_AddColumn:
            self._add_column(table, cmd.def_)
        elif sub == AlterTableType.AT_DropColumn:
            self.columns.get(table, {}).pop(col, None)
        elif sub == AlterTableType.AT_AlterColumnType:
            self.columns.setdefault(table, {})[col] = column_type(cmd.def_.typeName)
        elif sub == AlterTableType.AT_SetNotNull:
            self.not_null.add((table, col))
        elif sub == AlterTableType.AT_DropNotNull:
            self.not_null.discard((table, col))
        elif sub == AlterTableType.AT_AddConstraint:
            self._add_constraint(table, cmd.def_)
        elif sub == AlterTableType.AT_ValidateConstraint:
            key = (table, col)
            if key in self.constraints:
                old = self.constraints[key]
                self.constraints[key] = Constraint(
                    old.table, old.kind, old.references, True, old.not_null_column, old.columns
                )
        elif sub == AlterTableType.AT_DropConstraint:
            self.constraints.pop((table, col), None)

    def _rename(self, node: Any) -> None:
        table = table_name(node.relation)
        new = node.newname.lower()
        if node.renameType == ObjectType.OBJECT_TABLE:
            if node.relation.schemaname and node.relation.schemaname.lower() != "public":
                new = f"{node.relation.schemaname.lower()}.{new}"
            if table in self.columns:
                self.columns[new] = self.columns.pop(table)
            if table in self.new_tables:
                self.new_tables.discard(table)
                self.new_tables.add(new)
        elif node.renameType == ObjectType.OBJECT_COLUMN and node.subname:
            cols = self.columns.get(table, {})
            if node.subname.lower() in cols:
                cols[new] = cols.pop(node.subname.lower())


def _constraint(table: str, c: Any, columns: tuple[str, ...]) -> Constraint:
    kinds = {
        ConstrType.CONSTR_CHECK: "check",
        ConstrType.CONSTR_FOREIGN: "foreign",
        ConstrType.CONSTR_UNIQUE: "unique",
        ConstrType.CONSTR_PRIMARY: "primary",
        ConstrType.CONSTR_NOTNULL: "notnull",
    }
    kind = kinds.get(c.contype, "other")
    references = table_name(c.pktable) if c.pktable is not None else None
    not_null_column = None
    expr = c.raw_expr
    if (
        kind == "check"
        and isinstance(expr, ast.NullTest)
        and expr.nulltesttype is not None
        and expr.nulltesttype.name == "IS_NOT_NULL"
        and isinstance(expr.arg, ast.ColumnRef)
        and expr.arg.fields
    ):
        not_null_column = word(expr.arg.fields[-1])
    return Constraint(table, kind, references, not c.skip_validation, not_null_column, columns)


def walk(node: Any) -> Iterator[Any]:
    """Every node of a syntax tree, depth first, ``node`` included."""
    if isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from walk(getattr(node, attr))
    elif isinstance(node, tuple):
        for item in node:
            yield from walk(item)


def _column_refs(node: Any) -> list[str]:
    return [
        word(n.fields[-1])
        for n in walk(node)
        if isinstance(n, ast.ColumnRef) and n.fields and isinstance(n.fields[-1], ast.String)
    ]


def table_name(rv: Any) -> str:
    """``users`` or ``audit.users``: the key of a RangeVar in :class:`Knowledge`."""
    schema = (rv.schemaname or "").lower()
    name = rv.relname.lower()
    return name if schema in ("", "public") else f"{schema}.{name}"


def word(node: Any) -> str:
    """The lower-cased text of a String node ("" for anything else)."""
    return (node.sval or "").lower() if isinstance(node, ast.String) else ""


def object_name(obj: Any) -> str:
    """The key of a DROP object: a tuple of names, or a TypeName."""
    if isinstance(obj, ast.TypeName):
        return _dotted(obj.names)
    return _dotted(obj)


def _dotted(names: Any) -> str:
    parts = [word(n) for n in names if isinstance(n, ast.String)]
    if len(parts) > 1 and parts[0] == "public":
        parts = parts[1:]
    return ".".join(parts)


_ALIASES = {"int": "int4", "integer": "int4", "bigint": "int8", "smallint": "int2"}


def column_type(type_name: Any) -> ColumnType:
    """The internal name and integer modifiers of a TypeName node."""
    names = [word(n) for n in type_name.names or () if isinstance(n, ast.String)]
    name = names[-1]
    name = _ALIASES.get(name, name)
    mods = []
    for mod in type_name.typmods or ():
        value = const_value(mod)
        if isinstance(value, int):
            mods.append(value)
    if type_name.arrayBounds:
        name += "[]"
    return ColumnType(name, tuple(mods))


def const_value(node: Any) -> object:
    """The Python value of an A_Const (or a string/int node); None for anything else."""
    if isinstance(node, ast.A_Const):
        if node.isnull:
            return None
        node = node.val
    if isinstance(node, ast.Integer):
        return node.ival
    if isinstance(node, ast.String):
        return node.sval
    if isinstance(node, ast.Float):
        return node.fval
    if isinstance(node, ast.Boolean):
        return node.boolval
    return None
