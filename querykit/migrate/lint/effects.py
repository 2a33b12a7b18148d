"""Predict, from the syntax tree, the locks, rewrites and full scans a statement causes.

The prediction has the shape the live probe observes (:class:`~.model.Effect`),
and the test corpus holds the two equal. Lock levels follow PostgreSQL's
``AlterTableGetLockLevel`` and the documentation of each command::

    >>> predict(parse_sql("CREATE INDEX i ON users (email)")[0].stmt, Knowledge())
    Effect(locks=(('users', 'SHARE'),), rewrite=(), scan=('users',))
"""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType, ReindexObjectType

from .knowledge import Knowledge, column_type, object_name, table_name, word
from .model import Effect
from .typechange import rewrites
from .volatility import volatile_calls

__all__ = ["column_rewrite", "predict"]

AEL = "ACCESS EXCLUSIVE"
SRE = "SHARE ROW EXCLUSIVE"
SUE = "SHARE UPDATE EXCLUSIVE"
_SERIAL = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}


def predict(node: Any, know: Knowledge) -> Effect:
    """The effect of one statement on the tables that exist before it."""
    if isinstance(node, ast.IndexStmt):
        indexed = table_name(node.relation)
        return Effect.of({indexed: SUE if node.concurrent else "SHARE"}, scan=[indexed])
    if isinstance(node, ast.ReindexStmt):
        if node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX:
            table: str | None = know.indexes.get(table_name(node.relation))
        elif node.kind == ReindexObjectType.REINDEX_OBJECT_TABLE:
            table = table_name(node.relation)
        else:
            return Effect()
        concurrent = any(p.defname == "concurrently" for p in node.params or ())
        return (
            Effect.of({table: SUE if concurrent else "SHARE"}, scan=[table]) if table else Effect()
        )
    if isinstance(node, ast.DropStmt):
        return _drop(node, know)
    if isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
        table = table_name(node.relation)
        effect = Effect()
        for cmd in node.cmds or ():
            effect = effect.merge(_alter(table, cmd, know))
        return effect
    if isinstance(node, ast.RenameStmt) and node.relation is not None:
        table = table_name(node.relation)
        if node.renameType == ObjectType.OBJECT_INDEX:
            return Effect.of({know.indexes[table]: SUE}) if table in know.indexes else Effect()
        return Effect.of({table: AEL})
    if isinstance(node, ast.CreateStmt):
        refs = [_ref(c) for c in _constraints(node.tableElts)]
        return Effect.of({t: SRE for t in refs if t})
    if isinstance(node, ast.CreateTrigStmt):
        return Effect.of({table_name(node.relation): SRE})
    if isinstance(node, ast.TruncateStmt):
        tables = {table_name(r) for r in node.relations or ()}
        if node.behavior is not None and node.behavior.name == "DROP_CASCADE":
            tables |= {o for t in tables for o in know.references_of(t) if _refers_to(know, o, t)}
        return Effect.of(dict.fromkeys(tables, AEL), rewrite=tables, scan=tables)
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        table = table_name(node.relation)
        return Effect.of({table: "ROW EXCLUSIVE"}, scan=[table] if node.whereClause is None else [])
    if isinstance(node, ast.InsertStmt):
        return Effect.of({table_name(node.relation): "ROW EXCLUSIVE"})
    return Effect()


def _refers_to(know: Knowledge, owner: str, target: str) -> bool:
    return any(
        t == owner and c.kind == "foreign" and c.references == target
        for (t, _), c in know.constraints.items()
    )


def _drop(node: Any, know: Knowledge) -> Effect:
    names = [object_name(obj) for obj in node.objects or ()]
    if node.removeType == ObjectType.OBJECT_INDEX:
        tables = [know.indexes[n] for n in names if n in know.indexes]
        return Effect.of(dict.fromkeys(tables, SUE if node.concurrent else AEL))
    if node.removeType == ObjectType.OBJECT_TABLE:
        locks = dict.fromkeys(names, AEL)
        for name in names:
            locks.update(dict.fromkeys(know.references_of(name), AEL))
        return Effect.of({t: m for t, m in locks.items() if t in know.columns})
    return Effect()


def _constraints(elts: Any) -> list[Any]:
    out = []
    for elt in elts or ():
        if isinstance(elt, ast.Constraint):
            out.append(elt)
        elif isinstance(elt, ast.ColumnDef):
            out.extend(elt.constraints or ())
    return out


def _ref(c: Any) -> str | None:
    return table_name(c.pktable) if c.contype == ConstrType.CONSTR_FOREIGN else None


def column_rewrite(col: Any, know: Knowledge) -> str | None:
    """Why adding column ``col`` rewrites the table, or None when it does not."""
    names = [word(n) for n in col.typeName.names]
    if names and names[-1] in _SERIAL:
        return f"{names[-1]} fills every row from a sequence (nextval is volatile)"
    if col.identity and col.identity != "\x00":
        return "an identity column fills every row from its sequence"
    for c in col.constraints or ():
        if c.contype == ConstrType.CONSTR_IDENTITY:
            return "an identity column fills every row from its sequence"
        if c.contype == ConstrType.CONSTR_GENERATED and c.generated_kind != "v":
            return "a stored generated column is computed for every row"
        if c.contype == ConstrType.CONSTR_DEFAULT:
            calls = volatile_calls(c.raw_expr, know.volatile)
            if calls:
                return f"the default calls {', '.join(sorted(set(calls)))}(), which is volatile"
    return None


def _alter(table: str, cmd: Any, know: Knowledge) -> Effect:
    sub = cmd.subtype
    col = (cmd.name or "").lower()
    if sub == AlterTableType.AT_AddColumn:
        return _add_column(table, cmd.def_, know)
    if sub == AlterTableType.AT_AlterColumnType:
        old = know.columns.get(table, {}).get(col)
        rewrite, _ = rewrites(old, column_type(cmd.def_.typeName), know.timezone)
        if cmd.def_.raw_default is not None:
            rewrite = True
        scan = rewrite or know.checks_on(table, col)
        return Effect.of(
            {table: AEL}, rewrite=[table] if rewrite else [], scan=[table] if scan else []
        )
    if sub == AlterTableType.AT_SetNotNull:
        proven = know.proven_not_null(table, col) or (table, col) in know.not_null
        return Effect.of({table: AEL}, scan=[] if proven else [table])
    if sub == AlterTableType.AT_AddConstraint:
        return _add_constraint(table, cmd.def_, know)
    if sub == AlterTableType.AT_ValidateConstraint:
        c = know.constraints.get((table, col))
        if c is not None and c.kind == "foreign" and c.references:
            return Effect.of({table: SUE, c.references: "ROW SHARE"}, scan=[table, c.references])
        return Effect.of({table: SUE}, scan=[table])
    if sub == AlterTableType.AT_DropConstraint:
        c = know.constraints.get((table, col))
        locks = {table: AEL}
        if c is not None and c.kind == "foreign" and c.references:
            locks[c.references] = AEL
        return Effect.of(locks)
    if sub == AlterTableType.AT_DetachPartition:
        mode = SUE if cmd.def_.concurrent else AEL
        return Effect.of({table: mode, table_name(cmd.def_.name): mode})
    if sub in (AlterTableType.AT_EnableTrig, AlterTableType.AT_DisableTrig):
        return Effect.of({table: SRE})
    return Effect.of({table: AEL})


def _add_column(table: str, col: Any, know: Knowledge) -> Effect:
    locks = {table: AEL}
    rewrite = column_rewrite(col, know) is not None
    scan = rewrite
    has_default = False
    not_null = False
    for c in col.constraints or ():
        if c.contype == ConstrType.CONSTR_DEFAULT:
            has_default = True
        elif c.contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY):
            not_null = True
        if c.contype in (
            ConstrType.CONSTR_PRIMARY,
            ConstrType.CONSTR_UNIQUE,
            ConstrType.CONSTR_CHECK,
        ):
            scan = True
        ref = _ref(c)
        if ref:
            locks[ref] = SRE
    if not_null and not has_default:
        scan = True
    return Effect.of(locks, rewrite=[table] if rewrite else [], scan=[table] if scan else [])


def _add_constraint(table: str, c: Any, know: Knowledge) -> Effect:
    if c.contype == ConstrType.CONSTR_FOREIGN:
        ref = _ref(c)
        assert ref is not None
        scan = [] if c.skip_validation else [table, ref]
        return Effect.of({table: SRE, ref: SRE}, scan=scan)
    if c.contype in (
        ConstrType.CONSTR_UNIQUE,
        ConstrType.CONSTR_PRIMARY,
        ConstrType.CONSTR_EXCLUSION,
    ):
        if c.indexname:
            columns = _index_columns(c, know)
            unproven = c.contype == ConstrType.CONSTR_PRIMARY and any(
                (table, col) not in know.not_null and not know.proven_not_null(table, col)
                for col in columns
            )
            return Effect.of({table: AEL}, scan=[table] if unproven else [])
        return Effect.of({table: AEL}, scan=[table])
    if c.contype == ConstrType.CONSTR_CHECK:
        return Effect.of({table: AEL}, scan=[] if c.skip_validation else [table])
    return Effect.of({table: AEL})


def _index_columns(c: Any, know: Knowledge) -> list[str]:
    return list(know.index_columns.get(c.indexname.lower(), ()))
