"""The safe-change table: which ``ALTER COLUMN ... TYPE`` changes keep the table's files.

PostgreSQL skips the rewrite when the old values are valid bits of the new type
as they are (binary coercible) and a length or precision check cannot fail.
Every row here is checked against the live probe by the test corpus::

    >>> rewrites(ColumnType("numeric", (12, 6)), ColumnType("numeric", (14, 6)), None)
    (False, 'numeric precision widened at the same scale')
    >>> rewrites(ColumnType("text", ()), ColumnType("varchar", (200,)), None)[0]
    True
"""

from __future__ import annotations

from .knowledge import ColumnType

__all__ = ["is_utc", "rewrites"]

_UTC = {"utc", "etc/utc", "gmt", "etc/gmt", "z", "zulu", "universal", "etc/universal", "uct"}
# Pairs whose binary form is the same: a relabel, never a rewrite.
_BINARY = {
    ("varchar", "text"): "varchar to text",
    ("text", "varchar"): "text to unbounded varchar",
    ("cidr", "inet"): "cidr to inet",
    ("xml", "text"): "xml to text",
}


def is_utc(zone: str | None) -> bool:
    """Whether ``zone`` is UTC by one of its names."""
    return zone is not None and zone.strip().lower() in _UTC


def rewrites(old: ColumnType | None, new: ColumnType, timezone: str | None) -> tuple[bool, str]:
    """(does the change rewrite the table, why); an unknown old type is assumed to rewrite."""
    if old is None:
        return True, "the column's current type is unknown (give --database-url to read it)"
    if old == new:
        return False, "the type does not change"
    if (old.name, new.name) in _BINARY and (new.name != "varchar" or not new.mods):
        return False, _BINARY[(old.name, new.name)]
    if old.name == new.name == "varchar":
        if not new.mods or (old.mods and new.mods[0] >= old.mods[0]):
            return False, "varchar widened"
        return True, "varchar narrowed: every value is checked and rewritten"
    if old.name == new.name == "numeric":
        if not new.mods:
            return False, "numeric precision and scale removed"
        old_precision, old_scale = (*old.mods, 0)[:2] if old.mods else (None, None)
        new_precision, new_scale = (*new.mods, 0)[:2]
        if old_precision is not None and new_scale == old_scale and new_precision >= old_precision:
            return False, "numeric precision widened at the same scale"
        return True, "numeric scale changed or precision narrowed: every value is recomputed"
    if old.name == new.name and old.name in ("timestamp", "timestamptz", "time", "interval"):
        if not new.mods or (old.mods and new.mods[0] >= old.mods[0]):
            return False, f"{old.name} precision widened"
        return True, f"{old.name} precision narrowed"
    if {old.name, new.name} == {"timestamp", "timestamptz"}:
        if is_utc(timezone):
            return False, f"{old} to {new} with the session TimeZone UTC"
        shown = timezone or "not known to be UTC"
        return True, f"{old} to {new} under TimeZone {shown}: every value is converted"
    if old.name == "text" and new.name == "varchar":
        return True, "text to varchar(n): every value is checked against the length"
    return True, f"{old} to {new} is not binary coercible: every value is converted"
