"""How querykit names a column in messages and result labels: ``table.column``."""

from __future__ import annotations

from typing import Any

__all__ = ["column_label"]


def column_label(column: Any) -> str:
    """``table.column`` for a column, or its name alone when it has no table."""
    table = getattr(column, "table", None)
    name = getattr(column, "name", None) or getattr(column, "key", None) or str(column)
    table_name = getattr(table, "name", None)
    return f"{table_name}.{name}" if table_name else str(name)
