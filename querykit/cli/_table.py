"""Rows as a plain text table, the way psql prints them: aligned columns, cut cells."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..named import jsonable_row

CELL_WIDTH = 60
"""Characters a cell shows; a longer value (a vector, a JSON document) ends in "…"."""


def render_table(columns: Sequence[str], rows: Sequence[Any]) -> str:
    """``columns`` over ``rows`` (tuples, or dicts of a nested query), one line a row."""
    cells = [[_cell(v) for v in _values(row)] for row in rows]
    width = max([len(columns), *(len(r) for r in cells)])
    heads = [*columns, *(f"column {i}" for i in range(len(columns) + 1, width + 1))]
    widths = [max([len(heads[i]), *(len(r[i]) for r in cells if i < len(r))]) for i in range(width)]
    lines = [
        " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip(),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [
        " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in cells
    ]
    return "\n".join(lines)


def _values(row: Any) -> list[Any]:
    return list(row.values()) if isinstance(row, dict) else list(row)


def _cell(value: Any) -> str:
    data = jsonable_row(value)
    if data is None:
        return ""
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    text = " ".join(text.split())  # one line a row
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"
