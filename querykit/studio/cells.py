"""Values as the page shows them: cut to 1 KB, JSON as a collapsible tree, vectors summarised.

A cell never puts more than ``CELL_LIMIT`` bytes of a value into the page;
"show all" asks for the whole value. JSON trees are drawn with ``<details>``
(no JavaScript), and a tree of a big document stops after ``TREE_NODES``
nodes: the parts not drawn load when opened, by their JSON path.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

__all__ = [
    "CELL_LIMIT",
    "Cell",
    "cell",
    "cut_cell",
    "display_text",
    "dumps",
    "human_size",
    "json_tree",
    "kind_of_value",
    "vector_summary",
]

CELL_LIMIT = 1024
TREE_NODES = 400
VECTOR_HEAD = 5


@dataclass(frozen=True)
class Cell:
    """One value, ready for the template."""

    text: str
    """What the cell shows (at most CELL_LIMIT bytes of the value)."""
    kind: str
    truncated: bool = False
    size: int = 0
    """Bytes of the whole value as text, when truncated."""
    tree: Markup | None = None
    vector: dict[str, Any] | None = None
    null: bool = False


def cell(kind: str, value: Any) -> Cell:
    """A value of a column of ``kind`` (see ``catalog.Kind``), cut for a table cell."""
    if value is None:
        return Cell("NULL", kind, null=True)
    if kind == "vector":
        summary = vector_summary(value)
        return Cell(summary["head"], "vector", vector=summary)
    if kind == "json":
        text = dumps(value)
        short, cut = _cut(text)
        if cut:
            return Cell(short, "json", truncated=True, size=len(text.encode()))
        tree = (
            json_tree(
                value, url=None, summary=_cut(text)[0] if len(text) <= 90 else text[:87] + "…"
            )
            if isinstance(value, dict | list) and value
            else None
        )
        return Cell(short, "json", tree=tree)
    text = display_text(value)
    short, cut = _cut(text)
    return Cell(short, kind, truncated=cut, size=len(text.encode()) if cut else 0)


def cut_cell(kind: str, head: str | None, size: int | None) -> Cell:
    """A cell from the head of a value and its size, as ``View.page_query(cut=True)`` reads them."""
    if head is None or size is None:
        return Cell("NULL", kind, null=True)
    if size > CELL_LIMIT:
        short, _ = _cut(head)
        return Cell(short, kind, truncated=True, size=size)
    if kind == "json":
        return cell(kind, json.loads(head))
    return Cell(head, kind)


def kind_of_value(value: Any) -> str:
    """The kind of a value whose column is unknown (a named query's result)."""
    if isinstance(value, dict | list):
        return "json"
    if callable(getattr(value, "to_list", None)):
        return "vector"
    return "text"


def dumps(value: Any) -> str:
    """JSON text of a value, nested results included (enums, times, decimals as text)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=_plain)


def _plain(value: Any) -> Any:
    to_list = getattr(value, "to_list", None)
    return to_list() if callable(to_list) else display_text(value)


def display_text(value: Any) -> str:
    """A value as a cell shows it (enums by name, timestamps as PostgreSQL prints them)."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.datetime):  # as PostgreSQL prints it: 2026-01-31 12:00:00+00
        text = value.isoformat(sep=" ", timespec="seconds")
        return text[:-3] if text.endswith(":00") and value.tzinfo is not None else text
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def _cut(text: str) -> tuple[str, bool]:
    """At most CELL_LIMIT bytes of ``text``, cut on a character boundary."""
    data = text.encode()
    if len(data) <= CELL_LIMIT:
        return text, False
    return data[: CELL_LIMIT - 3].decode(errors="ignore"), True


def human_size(n: int) -> str:
    """``n`` bytes in B, KB, MB or GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def vector_summary(value: Any) -> dict[str, Any]:
    """Dimensions, Euclidean norm and first components of a pgvector value."""
    to_list: Callable[[], Iterable[Any]] | None = getattr(value, "to_list", None)
    values: Iterable[Any] = to_list() if to_list is not None else value
    items = [float(x) for x in values]
    norm = math.sqrt(math.fsum(x * x for x in items))
    head = ", ".join(f"{x:.4f}" for x in items[:VECTOR_HEAD])
    more = ", …" if len(items) > VECTOR_HEAD else ""
    return {
        "dims": len(items),
        "norm": f"{norm:.4f}",
        "head": f"[{head}{more}]",
        "components": items,
    }


# -- JSON trees --------------------------------------------------------------------


def json_tree(
    value: Any, *, url: str | None, path: tuple[Any, ...] = (), summary: str | None = None
) -> Markup:
    """``value`` as nested ``<details>``; past TREE_NODES nodes, parts load from ``url``.

    ``url`` is the address of the whole value; a part is ``url&path=<json list>``.
    Without one (a small value in a cell) the whole tree is drawn, closed, with
    ``summary`` (the value in one line) on it; with one, the top level is open.
    """
    budget = [TREE_NODES if url is not None else 1_000_000]
    top = _node(value, url, list(path), budget, 0 if summary is None else -1, summary)
    return Markup(f'<div class="jt">{top}</div>')


def _node(
    value: Any,
    url: str | None,
    path: list[Any],
    budget: list[int],
    depth: int,
    summary: str | None = None,
    name: str = "",
) -> str:
    """One node; ``name`` is its key in the parent (drawn inside the summary of a container)."""
    budget[0] -= 1
    if isinstance(value, dict | list) and value:
        is_dict = isinstance(value, dict)
        label = f"{{{len(value)} keys}}" if is_dict else f"[{len(value)} items]"
        if summary is not None:
            label = f'<span class="line">{escape(summary)}</span>'

        if budget[0] <= 0 and url is not None:
            part = f"{url}&path={quote(json.dumps(path))}"
            return (
                f'<details class="lazy" hx-get="{escape(part)}" hx-trigger="toggle once" '
                f'hx-target="find .part" hx-swap="innerHTML"><summary>{name}{label}</summary>'
                '<div class="part">loading…</div></details>'
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        rows = []
        for key, child in items:
            child_name = f'<span class="k">{escape(json.dumps(key)) if is_dict else key}</span>: '
            node = _node(child, url, [*path, key], budget, depth + 1, name=child_name)
            rows.append(f"<li>{node}</li>")
        opened = " open" if depth == 0 else ""
        return (
            f"<details{opened}><summary>{name}{label}</summary><ul>{''.join(rows)}</ul></details>"
        )
    text = dumps(value)
    kind = "s" if isinstance(value, str) else "n" if isinstance(value, int | float) else "c"
    return f'{name}<span class="{kind}">{escape(text)}</span>'
