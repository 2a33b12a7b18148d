"""Two snapshots → the changes that take the current schema to the target, object by object.

``added`` is in the target (schema.py) and missing from the current database
(the migrations); ``removed`` the reverse; ``changed`` is the same object with
a different definition. A constraint or index whose definition changed but kept
its table, kind and columns (or its name) is one ``changed``, not a drop plus an add.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import psycopg
from psycopg import sql

from ...trusted_sql import trusted
from .snapshot import Column, Constraint, Index, Snapshot

__all__ = ["Change", "SameDefault", "compare", "same_default_on"]

Action = Literal["added", "removed", "changed"]
Kind = Literal["extension", "enum", "table", "column", "constraint", "index", "sequence"]
SameDefault = Callable[[str, str, str], bool]
"""``(type, current default, target default)`` → whether the server holds them equal."""

_CONSTRAINT_KINDS = {
    "p": "primary key",
    "u": "unique",
    "f": "foreign key",
    "c": "check",
    "x": "exclusion",
}


@dataclass(frozen=True)
class Change:
    """One difference between two schemas: what to add, drop or alter, and on which object."""

    action: Action
    kind: Kind
    name: str
    """``table``, ``table.column``, an enum or index name, or a constraint's name."""
    table: str | None
    detail: str
    old: Any = None
    new: Any = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the change, for sorting and de-duplication."""
        return (self.action, self.kind, self.name)

    def text(self) -> str:
        """One line for the CLI: action, kind, name and detail."""
        return f"{self.action:8} {self.kind:10} {self.name}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "table": self.table,
            "detail": self.detail,
        }


def compare(current: Snapshot, target: Snapshot, same_default: SameDefault) -> list[Change]:
    """What differs, in the order a migration would handle it (types, tables, columns, ...)."""
    changes: list[Change] = []
    changes += _sets("extension", current.extensions, target.extensions)
    changes += _enums(current.enums, target.enums)
    changes += _mapping("sequence", current.sequences, target.sequences)
    changes += _sets("table", set(current.tables), set(target.tables))
    for table in sorted(set(current.tables) & set(target.tables)):
        changes += _columns(table, current.tables[table], target.tables[table], same_default)
    for table in sorted(set(current.tables) | set(target.tables)):
        changes += _constraints(
            table, current.constraints.get(table, {}), target.constraints.get(table, {})
        )
        changes += _indexes(table, current.indexes.get(table, {}), target.indexes.get(table, {}))
    return changes


def _sets(kind: Kind, current: set[str], target: set[str]) -> list[Change]:
    return [Change("added", kind, n, None, "missing", new=n) for n in sorted(target - current)] + [
        Change("removed", kind, n, None, "not in the target", old=n)
        for n in sorted(current - target)
    ]


def _mapping(kind: Kind, current: dict[str, str], target: dict[str, str]) -> list[Change]:
    out = [Change("added", kind, n, None, target[n], new=target[n]) for n in sorted(set(target) - set(current))]  # fmt: skip
    out += [Change("removed", kind, n, None, current[n], old=current[n]) for n in sorted(set(current) - set(target))]  # fmt: skip
    for name in sorted(set(current) & set(target)):
        if current[name] != target[name]:
            out.append(
                Change("changed", kind, name, None, f"{current[name]} → {target[name]}",
                       current[name], target[name])
            )  # fmt: skip
    return out


def _enums(current: dict[str, tuple[str, ...]], target: dict[str, tuple[str, ...]]) -> list[Change]:
    out = [
        Change("added", "enum", n, None, f"labels {list(target[n])}", new=target[n])
        for n in sorted(set(target) - set(current))
    ]
    out += [
        Change("removed", "enum", n, None, f"labels {list(current[n])}", old=current[n])
        for n in sorted(set(current) - set(target))
    ]
    for name in sorted(set(current) & set(target)):
        old, new = current[name], target[name]
        if old == new:
            continue
        gone = [label for label in old if label not in new]
        kept_order = [label for label in new if label in old] == [
            label for label in old if label in new
        ]
        what = []
        if added := [label for label in new if label not in old]:
            what.append(f"labels added {added}")
        if gone:
            what.append(f"labels removed {gone}")
        if not kept_order:
            what.append("labels reordered")
        detail = f"{'; '.join(what)}: {list(old)} → {list(new)}"
        out.append(Change("changed", "enum", name, None, detail, old, new))
    return out


def _columns(
    table: str, current: dict[str, Column], target: dict[str, Column], same_default: SameDefault
) -> list[Change]:
    out: list[Change] = []
    for name in sorted(set(target) - set(current)):
        col = target[name]
        out.append(Change("added", "column", f"{table}.{name}", table, _describe(col), new=col))
    for name in sorted(set(current) - set(target)):
        col = current[name]
        out.append(Change("removed", "column", f"{table}.{name}", table, _describe(col), old=col))
    for name in sorted(set(current) & set(target)):
        old, new = current[name], target[name]
        diffs = []
        for f in fields(Column):
            if f.name == "typname":
                continue
            a, b = getattr(old, f.name), getattr(new, f.name)
            if a == b:
                continue
            if (
                f.name == "default"
                and a is not None
                and b is not None
                and old.type == new.type
                and old.generated is None
                and same_default(new.type, a, b)
            ):
                new = replace(new, default=a)  # equal on the server: nothing for a draft to do
                continue
            diffs.append(f"{f.name} {_shown(f.name, a)} → {_shown(f.name, b)}")
        if diffs:
            out.append(Change("changed", "column", f"{table}.{name}", table, "; ".join(diffs), old, new))  # fmt: skip
    return out


def _shown(field_name: str, value: object) -> str:
    if field_name == "nullable":
        return "NULL" if value else "NOT NULL"
    return "none" if value is None else str(value)


def _describe(col: Column) -> str:
    parts = [col.type, "NULL" if col.nullable else "NOT NULL"]
    if col.generated:
        parts.append(f"GENERATED ({col.default}) {col.generated.upper()}")
    elif col.default is not None:
        parts.append(f"DEFAULT {col.default}")
    if col.identity:
        parts.append(f"identity {col.identity}")
    return " ".join(parts)


def _constraints(
    table: str, current: dict[str, Constraint], target: dict[str, Constraint]
) -> list[Change]:
    added = [target[k] for k in sorted(set(target) - set(current))]
    removed = [current[k] for k in sorted(set(current) - set(target))]
    out: list[Change] = []
    for new in added:
        old = next(
            (o for o in removed if (o.kind, o.columns) == (new.kind, new.columns) or o.name == new.name),
            None,
        )  # fmt: skip
        kind = _CONSTRAINT_KINDS.get(new.kind, new.kind)
        if old is not None:
            removed.remove(old)
            out.append(
                Change("changed", "constraint", f"{table}.{new.name}", table,
                       f"{kind} {old.definition} → {new.definition}", old, new)
            )  # fmt: skip
        else:
            out.append(Change("added", "constraint", f"{table}.{new.name}", table,
                              f"{kind} {new.definition}", new=new))  # fmt: skip
    for old in removed:
        kind = _CONSTRAINT_KINDS.get(old.kind, old.kind)
        out.append(Change("removed", "constraint", f"{table}.{old.name}", table,
                          f"{kind} {old.definition}", old=old))  # fmt: skip
    for key in sorted(set(current) & set(target)):
        if current[key].validated != target[key].validated:
            out.append(Change("changed", "constraint", f"{table}.{target[key].name}", table,
                              "not validated", current[key], target[key]))  # fmt: skip
    return out


def _indexes(table: str, current: dict[str, Index], target: dict[str, Index]) -> list[Change]:
    added = [target[k] for k in sorted(set(target) - set(current))]
    removed = [current[k] for k in sorted(set(current) - set(target))]
    out: list[Change] = []
    for new in added:
        old = next((o for o in removed if o.name == new.name), None)
        if old is not None:
            removed.remove(old)
            out.append(Change("changed", "index", new.name, table,
                              f"{old.definition} → {new.definition}", old, new))  # fmt: skip
        else:
            out.append(Change("added", "index", new.name, table, new.definition, new=new))
    out += [Change("removed", "index", o.name, table, o.definition, old=o) for o in removed]
    for key in sorted(set(current) & set(target)):
        if current[key].valid != target[key].valid:
            out.append(Change("changed", "index", current[key].name, table,
                              "INVALID (a failed CREATE INDEX CONCURRENTLY)", current[key], target[key]))  # fmt: skip
    return out


def same_default_on(conn: psycopg.Connection[Any]) -> SameDefault:
    """Whether two default expressions are equal, asked of the server (as Alembic does)."""

    def same(type_: str, a: str, b: str) -> bool:
        if "nextval(" in a or "nextval(" in b:
            return False
        query = sql.SQL("SELECT ({})::{} IS NOT DISTINCT FROM ({})::{}").format(
            sql.SQL(trusted(a)),
            sql.SQL(trusted(type_)),
            sql.SQL(trusted(b)),
            sql.SQL(trusted(type_)),
        )
        try:
            row = conn.execute(query).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    return same
