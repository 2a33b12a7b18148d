"""The rules: each looks at one statement in its file's context and says what is unsafe.

A rule returns :class:`Hit` s (message and the safe way as SQL); the engine adds
the location, the predicted effect and the level. ``RULES`` is the catalogue
the README and ``[tool.querykit.lint]`` use::

    >>> [r.id for r in RULES][:3]
    ['create-index-not-concurrent', 'drop-index-not-concurrent', 'reindex-not-concurrent']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, DropBehavior, ObjectType, ReindexObjectType

from .effects import column_rewrite
from .knowledge import Knowledge, column_type, const_value, object_name, table_name, walk, word
from .model import Effect, Level
from .typechange import rewrites

__all__ = ["RULES", "Context", "Hit", "Rule", "rule_ids"]


@dataclass
class Context:
    """One statement with everything the rules may ask about its file."""

    node: Any
    text: str
    part: Literal["up", "down"]
    transactional: bool
    know: Knowledge
    """The schema as it is just before this statement."""
    effect: Effect
    not_valid_here: dict[tuple[str, str], str] = field(default_factory=dict)
    """Constraints added NOT VALID earlier in this transaction → their kind."""
    enum_labels_here: set[str] = field(default_factory=set)
    """Enum labels added earlier in this transaction."""
    observed: Effect | None = None
    """What the live probe saw this statement do, when it ran (``--probe``)."""

    def existing(self, table: str | None) -> bool:
        """True for a table that may hold rows: not created in this file or this run."""
        return table is not None and table not in self.know.new_tables


@dataclass(frozen=True)
class Hit:
    """A rule's finding in one statement: the message, the safe way, the tables involved."""

    message: str
    safe: str
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """One lint rule: its id, level, one-line summary and check."""

    id: str
    level: Level
    summary: str
    """One line: what is unsafe and why (for the README and --help)."""
    check: Callable[[Context], Iterator[Hit]]
    lock: bool = True
    """A lock/rewrite hazard: exempt on new tables, weighed by table size."""
    destructive: bool = False
    """Drops or renames: the purpose of a down part, so not checked there."""
    nodes: tuple[type, ...] = (ast.AlterTableStmt,)
    """The statement kinds the rule looks at (the others are skipped without calling it)."""


def _sql(node: Any) -> str:
    # Imported here: the printers load only when a finding shows its safe SQL.
    from pglast.stream import RawStream

    return str(RawStream()(node))


def _cmds(ctx: Context) -> Iterator[tuple[str, Any]]:
    node = ctx.node
    if isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
        table = table_name(node.relation)
        for cmd in node.cmds or ():
            yield table, cmd


# -- 1. indexes ----------------------------------------------------------------------


def _create_index(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.IndexStmt) and not node.concurrent:
        table = table_name(node.relation)
        if ctx.existing(table):
            safe = copy.deepcopy(node)
            safe.concurrent = True
            yield Hit(
                f"CREATE INDEX without CONCURRENTLY holds SHARE on {table} while it reads every "
                "row: writes wait for the whole build",
                f"-- in a file of its own (querykit runs it outside a transaction)\n{_sql(safe)};",
                (table,),
            )


def _drop_index(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_INDEX:
        if node.concurrent:
            return
        tables = tuple(t for t, _ in ctx.effect.locks if ctx.existing(t))
        if tables or not ctx.effect.locks:
            safe = copy.deepcopy(node)
            safe.concurrent = True
            yield Hit(
                "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on its table: reads and "
                "writes wait",
                f"-- in a file of its own (querykit runs it outside a transaction)\n{_sql(safe)};",
                tables,
            )


def _reindex(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if not isinstance(node, ast.ReindexStmt):
        return
    if any(p.defname == "concurrently" for p in node.params or ()):
        return
    if node.kind not in (
        ReindexObjectType.REINDEX_OBJECT_INDEX,
        ReindexObjectType.REINDEX_OBJECT_TABLE,
    ):
        return
    tables = tuple(t for t, _ in ctx.effect.locks if ctx.existing(t))
    if tables or not ctx.effect.locks:
        what = "INDEX" if node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX else "TABLE"
        yield Hit(
            "REINDEX without CONCURRENTLY holds SHARE on the table while it rebuilds: writes wait",
            f"-- in a file of its own\nREINDEX {what} CONCURRENTLY {_sql(node.relation)};",
            tables,
        )


# -- 2. constraints ------------------------------------------------------------------


def _not_valid(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if cmd.subtype != AlterTableType.AT_AddConstraint or not ctx.existing(table):
            continue
        c = cmd.def_
        if (
            c.contype not in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK)
            or c.skip_validation
        ):
            continue
        kind = "FOREIGN KEY" if c.contype == ConstrType.CONSTR_FOREIGN else "CHECK"
        lock = "SHARE ROW EXCLUSIVE" if kind == "FOREIGN KEY" else "ACCESS EXCLUSIVE"
        name = c.conname or "<name>"
        safe = copy.deepcopy(ctx.node)
        safe.cmds = (copy.deepcopy(cmd),)
        safe.cmds[0].def_.skip_validation = True
        safe.cmds[0].def_.initially_valid = False
        yield Hit(
            f"ADD {kind} without NOT VALID checks every row of {table} under {lock}"
            + (" (and of the referenced table)" if kind == "FOREIGN KEY" else ""),
            f"{_sql(safe)};\n-- then, in a later migration file:\n"
            f"ALTER TABLE {_sql(ctx.node.relation)} VALIDATE CONSTRAINT {name};",
            (table,),
        )


def _validate_same_tx(ctx: Context) -> Iterator[Hit]:
    if not ctx.transactional:
        return
    for table, cmd in _cmds(ctx):
        if cmd.subtype == AlterTableType.AT_ValidateConstraint:
            key = (table, (cmd.name or "").lower())
            if key in ctx.not_valid_here and ctx.existing(table):
                lock = (
                    "SHARE ROW EXCLUSIVE"
                    if ctx.not_valid_here[key] == "foreign"
                    else "ACCESS EXCLUSIVE"
                )
                yield Hit(
                    f"VALIDATE CONSTRAINT {cmd.name} runs in the same transaction as the NOT VALID "
                    f"that added it, so the scan happens while {lock} on {table} is still held",
                    f"-- move it to a later migration file:\n{_sql(ctx.node)};",
                    (table,),
                )


# -- 3. SET NOT NULL -----------------------------------------------------------------


def _set_not_null(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if cmd.subtype != AlterTableType.AT_SetNotNull or not ctx.existing(table):
            continue
        col = (cmd.name or "").lower()
        if ctx.know.proven_not_null(table, col) or (table, col) in ctx.know.not_null:
            continue
        rel = _sql(ctx.node.relation)
        check = f"{table.replace('.', '_')}_{col}_not_null"
        yield Hit(
            f"SET NOT NULL on {table}.{col} reads every row under ACCESS EXCLUSIVE: reads and "
            "writes wait for the scan",
            f"ALTER TABLE {rel} ADD CONSTRAINT {check} CHECK ({cmd.name} IS NOT NULL) NOT VALID;\n"
            f"-- in a later migration file:\nALTER TABLE {rel} VALIDATE CONSTRAINT {check};\n"
            f"ALTER TABLE {rel} ALTER COLUMN {cmd.name} SET NOT NULL;  -- no scan now\n"
            f"ALTER TABLE {rel} DROP CONSTRAINT {check};",
            (table,),
        )


# -- 4. ALTER COLUMN TYPE ------------------------------------------------------------


def _type_rewrite(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if cmd.subtype != AlterTableType.AT_AlterColumnType or not ctx.existing(table):
            continue
        col = (cmd.name or "").lower()
        old = ctx.know.columns.get(table, {}).get(col)
        new = column_type(cmd.def_.typeName)
        rewrite, why = rewrites(old, new, ctx.know.timezone)
        if cmd.def_.raw_default is not None:
            rewrite, why = True, "a USING expression computes every value anew"
        if not rewrite:
            continue
        rel = _sql(ctx.node.relation)
        typ = _sql(cmd.def_.typeName)
        yield Hit(
            f"ALTER COLUMN {cmd.name} TYPE {typ} rewrites {table} under ACCESS EXCLUSIVE ({why})",
            f"ALTER TABLE {rel} ADD COLUMN {col}_new {typ};\n"
            f"-- backfill in batches, keep it in sync with a trigger, then in a later file:\n"
            f"ALTER TABLE {rel} RENAME COLUMN {cmd.name} TO {col}_old;\n"
            f"ALTER TABLE {rel} RENAME COLUMN {col}_new TO {cmd.name};",
            (table,),
        )


# -- 5. ADD COLUMN that rewrites -----------------------------------------------------


def _add_column_rewrite(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if cmd.subtype != AlterTableType.AT_AddColumn or not ctx.existing(table):
            continue
        why = column_rewrite(cmd.def_, ctx.know)
        if why is None:
            continue
        rel = _sql(ctx.node.relation)
        col = cmd.def_.colname
        default = next(
            (
                c.raw_expr
                for c in cmd.def_.constraints or ()
                if c.contype == ConstrType.CONSTR_DEFAULT
            ),
            None,
        )
        plain = copy.deepcopy(cmd.def_)
        plain.constraints = None
        names = {word(n) for n in plain.typeName.names}
        if names & {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}:
            plain.typeName = ast.TypeName(names=(ast.String("int8"),))
        lines = [f"ALTER TABLE {rel} ADD COLUMN {_sql(plain)};"]
        if default is not None:
            lines.append(f"ALTER TABLE {rel} ALTER COLUMN {col} SET DEFAULT {_sql(default)};")
        lines.append(
            f"-- then fill existing rows in batches: UPDATE {rel} SET {col} = ... WHERE ..."
        )
        yield Hit(
            f"ADD COLUMN {col} rewrites {table} under ACCESS EXCLUSIVE: {why}",
            "\n".join(lines),
            (table,),
        )


def _not_null_no_default(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if cmd.subtype != AlterTableType.AT_AddColumn or not ctx.existing(table):
            continue
        kinds = {c.contype for c in cmd.def_.constraints or ()}
        if ConstrType.CONSTR_NOTNULL in kinds and not kinds & {
            ConstrType.CONSTR_DEFAULT,
            ConstrType.CONSTR_IDENTITY,
            ConstrType.CONSTR_GENERATED,
        }:
            col = cmd.def_.colname
            rel = _sql(ctx.node.relation)
            yield Hit(
                f"ADD COLUMN {col} NOT NULL without a DEFAULT fails on a table with rows "
                "(23502), after reading all of them under ACCESS EXCLUSIVE",
                f"ALTER TABLE {rel} ADD COLUMN {col} {_sql(cmd.def_.typeName)} NOT NULL DEFAULT <constant>;\n"
                f"-- or add it NULL, backfill, then prove NOT NULL with a CHECK ... NOT VALID",
                (table,),
            )


# -- 6. UNIQUE / PRIMARY KEY ---------------------------------------------------------


def _unique(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if not ctx.existing(table):
            continue
        rel = _sql(ctx.node.relation)
        if cmd.subtype == AlterTableType.AT_AddConstraint:
            c = cmd.def_
            if (
                c.contype not in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY)
                or c.indexname
            ):
                continue
            kind = "UNIQUE" if c.contype == ConstrType.CONSTR_UNIQUE else "PRIMARY KEY"
            cols = ", ".join(k.sval for k in c.keys or ())
            name = (
                c.conname
                or f"{table.replace('.', '_')}_{'_'.join(k.sval for k in c.keys or ())}_key"
            )
            yield Hit(
                f"ADD {kind} builds its index under ACCESS EXCLUSIVE on {table}: reads and writes "
                "wait for the whole build",
                f"-- in a file of its own:\nCREATE UNIQUE INDEX CONCURRENTLY {name} ON {rel} ({cols});\n"
                f"-- then:\nALTER TABLE {rel} ADD CONSTRAINT {name} {kind} USING INDEX {name};",
                (table,),
            )
        elif cmd.subtype == AlterTableType.AT_AddColumn:
            for c in cmd.def_.constraints or ():
                if c.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY):
                    col = cmd.def_.colname
                    yield Hit(
                        f"ADD COLUMN {col} with UNIQUE or PRIMARY KEY builds an index under "
                        f"ACCESS EXCLUSIVE on {table}",
                        f"ALTER TABLE {rel} ADD COLUMN {col} {_sql(cmd.def_.typeName)};\n"
                        f"-- in a file of its own:\nCREATE UNIQUE INDEX CONCURRENTLY {table}_{col}_key ON {rel} ({col});\n"
                        f"ALTER TABLE {rel} ADD CONSTRAINT {table}_{col}_key UNIQUE USING INDEX {table}_{col}_key;",
                        (table,),
                    )


# -- 7. renames and drops ------------------------------------------------------------

_OLD_CODE = "code deployed before this migration still uses the old name and breaks"
_EXPAND = "deploy code that no longer uses it first; then drop it in a later migration"


def _rename_column(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_COLUMN:
        table = table_name(node.relation)
        if ctx.existing(table):
            yield Hit(
                f"renaming {table}.{node.subname}: {_OLD_CODE}",
                f"ALTER TABLE {_sql(node.relation)} ADD COLUMN {node.newname} <type>;\n"
                f"-- write both columns from the code, backfill, switch reads; later: "
                f"ALTER TABLE {_sql(node.relation)} DROP COLUMN {node.subname};",
                (table,),
            )


def _rename_table(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_TABLE:
        table = table_name(node.relation)
        if ctx.existing(table):
            yield Hit(
                f"renaming table {table}: {_OLD_CODE}",
                f"ALTER TABLE {_sql(node.relation)} RENAME TO {node.newname};\n"
                f"CREATE VIEW {_sql(node.relation)} AS SELECT * FROM {node.newname};  "
                "-- old code keeps working; drop the view later",
                (table,),
            )


def _drop_column(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if cmd.subtype == AlterTableType.AT_DropColumn and ctx.existing(table):
            yield Hit(
                f"dropping {table}.{cmd.name}: code that still reads or writes it breaks",
                f"-- {_EXPAND}:\n{_sql(ctx.node)};",
                (table,),
            )


def _drop_table(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
        for obj in node.objects or ():
            name = object_name(obj)
            if ctx.existing(name):
                yield Hit(
                    f"dropping table {name}: its data is gone and code that still uses it breaks",
                    f"-- {_EXPAND}:\n{_sql(node)};",
                    (name,),
                )


def _drop_not_null(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if cmd.subtype == AlterTableType.AT_DropNotNull and ctx.existing(table):
            yield Hit(
                f"DROP NOT NULL on {table}.{cmd.name}: code that reads the column may not expect NULL",
                f"-- make every reader handle NULL first, then:\n{_sql(ctx.node)};",
                (table,),
            )


# -- 8. enums ------------------------------------------------------------------------


def _strings(node: Any) -> Iterator[str]:
    for n in walk(node):
        if isinstance(n, ast.A_Const) and isinstance(value := const_value(n), str):
            yield value


def _enum_used(ctx: Context) -> Iterator[Hit]:
    if not ctx.transactional or not ctx.enum_labels_here or isinstance(ctx.node, ast.AlterEnumStmt):
        return
    used = sorted(set(_strings(ctx.node)) & ctx.enum_labels_here)
    if used:
        yield Hit(
            f"uses the enum label {', '.join(repr(u) for u in used)} added by ALTER TYPE ... ADD "
            "VALUE in the same transaction: PostgreSQL refuses this (55P04)",
            f"-- move this statement to a later migration file:\n{_sql(ctx.node)};",
        )


def _enum_removed(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TYPE:
        for obj in node.objects or ():
            name = object_name(obj)
            if name in ctx.know.enums:
                yield Hit(
                    f"dropping enum {name}: its labels are gone for code that still writes them",
                    f"-- keep the type; stop using its labels in code first\n{_sql(node)};",
                )
    elif isinstance(node, ast.CreateEnumStmt):
        labels = [v.sval for v in node.vals or ()]
        for other, known in ctx.know.enums.items():
            if set(labels) < set(known) or (set(labels) == set(known) and labels != known):
                what = "removes labels of" if set(labels) < set(known) else "reorders the labels of"
                yield Hit(
                    f"this enum {what} {other}: rows and code using a removed label fail to "
                    "convert, and ordering comparisons change meaning",
                    f"-- add labels in place instead, where they belong:\n"
                    f"ALTER TYPE {other} ADD VALUE 'new_label' BEFORE '{known[0]}';",
                )
                break
    elif isinstance(node, ast.AlterEnumStmt) and node.oldVal:
        yield Hit(
            f"renaming enum label {node.oldVal!r}: code that still writes it fails",
            f"-- add the new label, move code and rows to it, stop using the old one:\n"
            f"ALTER TYPE {'.'.join(word(n) for n in node.typeName or ())} ADD VALUE {node.newVal!r};",
        )


# -- 10. types (info) ----------------------------------------------------------------


def _column_defs(ctx: Context) -> Iterator[tuple[str, Any]]:
    node = ctx.node
    if isinstance(node, ast.CreateStmt):
        table = table_name(node.relation)
        for elt in node.tableElts or ():
            if isinstance(elt, ast.ColumnDef):
                yield table, elt
    for table, cmd in _cmds(ctx):
        if cmd.subtype == AlterTableType.AT_AddColumn:
            yield table, cmd.def_


def _prefer_type(rule: str, summary: str, bad: set[str], message: str, good: str) -> Rule:
    """An info rule on new columns of a ``bad`` type: why, and the ``good`` column to write.

    Advice, not a lock hazard: it looks at CREATE TABLE and ADD COLUMN alike.
    """

    def check(ctx: Context) -> Iterator[Hit]:
        for table, col in _column_defs(ctx):
            name = column_type(col.typeName).name
            if name in bad:
                yield Hit(
                    f"{table}.{col.colname} is {name}: {message}", good.format(col=col.colname)
                )

    return Rule(
        rule, "info", summary, check, lock=False, nodes=(ast.CreateStmt, ast.AlterTableStmt)
    )


def _int_pk(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if not isinstance(node, ast.CreateStmt):
        return
    table = table_name(node.relation)
    cols = {e.colname: e for e in node.tableElts or () if isinstance(e, ast.ColumnDef)}
    pk: list[str] = []
    for e in node.tableElts or ():
        if isinstance(e, ast.ColumnDef):
            if any(c.contype == ConstrType.CONSTR_PRIMARY for c in e.constraints or ()):
                pk.append(e.colname or "")
        elif isinstance(e, ast.Constraint) and e.contype == ConstrType.CONSTR_PRIMARY:
            pk.extend(k.sval for k in e.keys or ())
    for name in pk:
        col = cols.get(name)
        if col is not None and column_type(col.typeName).name in {
            "int4",
            "int2",
            "serial",
            "serial4",
            "smallserial",
            "serial2",
        }:
            yield Hit(
                f"{table}.{name} is a 32-bit (or smaller) primary key: it runs out at 2^31 and "
                "widening it later rewrites the table and every referencing one",
                f"{name} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            )


# -- 11. more ------------------------------------------------------------------------


def _lock_timeout_off(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.VariableSetStmt) and (node.name or "").lower() == "lock_timeout":
        value = const_value(node.args[0]) if node.args else None
        if value in (0, "0", "0ms", "0s"):
            yield Hit(
                "SET lock_timeout = 0 turns off the runner's lock timeout: a statement waiting for "
                "a lock then queues every query on that table behind it, without limit",
                "-- remove it, or pass querykit migrate up --lock-timeout SECONDS",
            )


def _drop_database(ctx: Context) -> Iterator[Hit]:
    if isinstance(ctx.node, ast.DropdbStmt):
        yield Hit(
            "DROP DATABASE in a migration destroys everything",
            "-- do not drop databases in migrations",
        )


def _detach(ctx: Context) -> Iterator[Hit]:
    for table, cmd in _cmds(ctx):
        if (
            cmd.subtype == AlterTableType.AT_DetachPartition
            and not cmd.def_.concurrent
            and ctx.existing(table)
        ):
            yield Hit(
                f"DETACH PARTITION takes ACCESS EXCLUSIVE on {table}: reads and writes wait",
                f"-- in a file of its own:\nALTER TABLE {_sql(ctx.node.relation)} DETACH PARTITION "
                f"{_sql(cmd.def_.name)} CONCURRENTLY;",
                (table,),
            )


def _truncate_cascade(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.TruncateStmt) and node.behavior == DropBehavior.DROP_CASCADE:
        yield Hit(
            "TRUNCATE ... CASCADE also empties every table that references these, and theirs",
            "-- name each table to empty, without CASCADE",
        )


def _domain_check(ctx: Context) -> Iterator[Hit]:
    node = ctx.node
    if isinstance(node, ast.AlterDomainStmt) and node.subtype == "C":
        yield Hit(
            "ALTER DOMAIN ... ADD CONSTRAINT checks every column of that domain in every table, "
            "under locks, and has no safe NOT VALID + VALIDATE path for large tables",
            "-- add the CHECK to each table instead (NOT VALID, then VALIDATE)",
        )


def _probe_rewrite(ctx: Context) -> Iterator[Hit]:
    if ctx.observed is None:
        return
    missed = [t for t in ctx.observed.rewrite if t not in ctx.effect.rewrite and ctx.existing(t)]
    if missed:
        tables = ", ".join(missed)
        locks = ", ".join(f"{m} on {t}" for t, m in ctx.observed.locks if t in missed)
        yield Hit(
            f"the probe saw this statement rewrite {tables} ({locks}), which the static rules "
            "did not predict",
            "-- find a form that keeps the table (see the rules above), or run it when "
            f"{tables} can be locked for a full rewrite",
            tuple(missed),
        )


RULES: tuple[Rule, ...] = (
    Rule(
        "probe-rewrite",
        "error",
        "The live probe saw a rewrite of an existing table that no static rule predicted.",
        _probe_rewrite,
        nodes=(ast.Node,),
    ),
    Rule(
        "create-index-not-concurrent",
        "error",
        "CREATE INDEX without CONCURRENTLY blocks writes for the whole build.",
        _create_index,
        nodes=(ast.IndexStmt,),
    ),
    Rule(
        "drop-index-not-concurrent",
        "error",
        "DROP INDEX without CONCURRENTLY blocks reads and writes.",
        _drop_index,
        nodes=(ast.DropStmt,),
    ),
    Rule(
        "reindex-not-concurrent",
        "error",
        "REINDEX without CONCURRENTLY blocks writes while it rebuilds.",
        _reindex,
        nodes=(ast.ReindexStmt,),
    ),
    Rule(
        "constraint-not-valid",
        "error",
        "ADD FOREIGN KEY / CHECK without NOT VALID scans the table under a write-blocking lock.",
        _not_valid,
    ),
    Rule(
        "validate-same-transaction",
        "error",
        "VALIDATE in the same transaction as its NOT VALID keeps the strong lock during the scan.",
        _validate_same_tx,
    ),
    Rule(
        "set-not-null-unproven",
        "error",
        "SET NOT NULL without a validated CHECK (col IS NOT NULL) scans under ACCESS EXCLUSIVE.",
        _set_not_null,
    ),
    Rule(
        "column-type-rewrite",
        "error",
        "ALTER COLUMN ... TYPE that is not a safe change rewrites the table under ACCESS EXCLUSIVE.",
        _type_rewrite,
    ),
    Rule(
        "add-column-rewrite",
        "error",
        "ADD COLUMN with a volatile DEFAULT, serial, identity or stored generated column rewrites the table.",
        _add_column_rewrite,
    ),
    Rule(
        "not-null-without-default",
        "error",
        "ADD COLUMN ... NOT NULL without DEFAULT fails on a table with rows.",
        _not_null_no_default,
    ),
    Rule(
        "unique-without-index",
        "error",
        "ADD UNIQUE / PRIMARY KEY without USING INDEX builds the index under ACCESS EXCLUSIVE.",
        _unique,
    ),
    Rule(
        "rename-column",
        "warning",
        "Renaming a column breaks code deployed before the migration.",
        _rename_column,
        lock=False,
        destructive=True,
        nodes=(ast.RenameStmt,),
    ),
    Rule(
        "rename-table",
        "warning",
        "Renaming a table breaks code deployed before the migration.",
        _rename_table,
        lock=False,
        destructive=True,
        nodes=(ast.RenameStmt,),
    ),
    Rule(
        "drop-column",
        "warning",
        "Dropping a column breaks code that still uses it.",
        _drop_column,
        lock=False,
        destructive=True,
    ),
    Rule(
        "drop-table",
        "warning",
        "Dropping a table loses its data and breaks code that still uses it.",
        _drop_table,
        lock=False,
        destructive=True,
        nodes=(ast.DropStmt,),
    ),
    Rule(
        "drop-not-null",
        "warning",
        "DROP NOT NULL lets NULL reach code that does not expect it.",
        _drop_not_null,
        lock=False,
        destructive=True,
    ),
    Rule(
        "enum-value-used-same-transaction",
        "error",
        "A label added by ALTER TYPE ... ADD VALUE cannot be used in the same transaction.",
        _enum_used,
        lock=False,
        nodes=(ast.Node,),
    ),
    Rule(
        "enum-label-removed",
        "warning",
        "Dropping, renaming or reordering enum labels breaks rows and code that use them.",
        _enum_removed,
        lock=False,
        destructive=True,
        nodes=(ast.DropStmt, ast.CreateEnumStmt, ast.AlterEnumStmt),
    ),
    _prefer_type(
        "prefer-jsonb",
        "json keeps text; jsonb is indexable and compares by value.",
        {"json"},
        "jsonb is smaller to query, indexable and compares by value",
        "{col} jsonb",
    ),
    _prefer_type(
        "prefer-timestamptz",
        "timestamp without time zone loses the instant; use timestamptz.",
        {"timestamp"},
        "it stores no time zone, so the same value means different instants",
        "{col} timestamptz",
    ),
    Rule(
        "prefer-bigint-pk",
        "info",
        "int / serial primary keys run out at 2^31; use bigint identity.",
        _int_pk,
        lock=False,
        nodes=(ast.CreateStmt,),
    ),
    _prefer_type(
        "prefer-identity",
        "serial is legacy; identity columns own their sequence cleanly.",
        {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"},
        "identity columns are the SQL-standard form and own their sequence",
        "{col} bigint GENERATED ALWAYS AS IDENTITY",
    ),
    _prefer_type(
        "prefer-text",
        "char(n) pads with blanks and is no faster; use text (or varchar).",
        {"bpchar"},
        "char(n) pads with blanks and is no faster than text",
        "{col} text",
    ),
    Rule(
        "lock-timeout-disabled",
        "warning",
        "SET lock_timeout = 0 turns off the runner's lock timeout.",
        _lock_timeout_off,
        lock=False,
        nodes=(ast.VariableSetStmt,),
    ),
    Rule(
        "drop-database",
        "error",
        "DROP DATABASE has no place in a migration.",
        _drop_database,
        lock=False,
        nodes=(ast.DropdbStmt,),
    ),
    Rule(
        "detach-partition-not-concurrent",
        "error",
        "DETACH PARTITION without CONCURRENTLY blocks reads and writes on the parent.",
        _detach,
    ),
    Rule(
        "truncate-cascade",
        "warning",
        "TRUNCATE ... CASCADE empties every referencing table too.",
        _truncate_cascade,
        lock=False,
        destructive=True,
        nodes=(ast.TruncateStmt,),
    ),
    Rule(
        "domain-add-constraint",
        "warning",
        "ALTER DOMAIN ... ADD CONSTRAINT scans every column of the domain under lock.",
        _domain_check,
        nodes=(ast.AlterDomainStmt,),
    ),
)


def rule_ids() -> list[str]:
    """The ids of every rule, in the order they run."""
    return [r.id for r in RULES]


SAFE_WAY: dict[str, str] = {
    "probe-rewrite": "a form that keeps the table, or a window when the table may be locked",
    "create-index-not-concurrent": "`CREATE INDEX CONCURRENTLY` in a file of its own",
    "drop-index-not-concurrent": "`DROP INDEX CONCURRENTLY` in a file of its own",
    "reindex-not-concurrent": "`REINDEX ... CONCURRENTLY` in a file of its own",
    "constraint-not-valid": "`ADD CONSTRAINT ... NOT VALID`, then `VALIDATE CONSTRAINT` in a later file",
    "validate-same-transaction": "move `VALIDATE CONSTRAINT` to a later file",
    "set-not-null-unproven": "`CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE` in a later file, then `SET NOT NULL` and drop the CHECK",
    "column-type-rewrite": "add a new column, backfill in batches, swap names; or a safe change (varchar/numeric widening, varchar to text, timestamp to timestamptz under UTC)",
    "add-column-rewrite": "`ADD COLUMN` without the default, `SET DEFAULT`, backfill in batches",
    "not-null-without-default": "`ADD COLUMN ... NOT NULL DEFAULT <constant>`",
    "unique-without-index": "`CREATE UNIQUE INDEX CONCURRENTLY`, then `ADD CONSTRAINT ... UNIQUE USING INDEX`",
    "rename-column": "add the new column, write both, switch reads, drop the old one later",
    "rename-table": "rename, and `CREATE VIEW old_name AS SELECT * FROM new_name` until old code is gone",
    "drop-column": "deploy code that no longer uses it, then drop it in a later migration",
    "drop-table": "deploy code that no longer uses it, then drop it in a later migration",
    "drop-not-null": "make every reader handle NULL first",
    "enum-value-used-same-transaction": "use the new label in a later file",
    "enum-label-removed": "keep labels; add new ones with `ADD VALUE ... BEFORE/AFTER`",
    "prefer-jsonb": "`jsonb`",
    "prefer-timestamptz": "`timestamptz`",
    "prefer-bigint-pk": "`bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`",
    "prefer-identity": "`bigint GENERATED ALWAYS AS IDENTITY`",
    "prefer-text": "`text`",
    "lock-timeout-disabled": "remove it; use `querykit migrate up --lock-timeout SECONDS`",
    "drop-database": "never in a migration",
    "detach-partition-not-concurrent": "`DETACH PARTITION ... CONCURRENTLY` in a file of its own",
    "truncate-cascade": "name each table to empty",
    "domain-add-constraint": "a `CHECK ... NOT VALID` on each table, then `VALIDATE`",
}


def readme_table() -> str:
    """The rules table of the README (a test keeps the two equal)."""
    rows = ["| rule | level | what is unsafe | the safe way |", "|---|---|---|---|"]
    rows += [f"| `{r.id}` | {r.level} | {r.summary} | {SAFE_WAY[r.id]} |" for r in RULES]
    return "\n".join(rows) + "\n"
