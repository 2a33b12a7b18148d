"""Nested results from rows: the json strategy's decoder, the batched strategy's stitcher,
``as_=`` classes, and the loading conversation (no I/O).

:func:`load_steps` says which statements a nested query runs (their SQL is
:mod:`querykit.compile.nested`'s) and turns their rows into results;
:mod:`querykit.execute.loading_async` (and the sync ``loading`` generated from it) only
does the talking. The decoders use the same value rules as flat rows
(``codecs.json_decoder_for``), and are built once per query shape; ``as_=`` classes are
built by the same row mapper as flat rows (:func:`querykit.execute.rows.row_mapper`).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Generator, Hashable, Sequence
from typing import Any, TypeVar

from .. import codecs
from ..build.nested import Level, NestedQuery, key_columns
from ..build.query import Query
from ..build.rowclass import element_class, field_hints
from ..codegen import generate
from ..compile.nested import ChildQuery, RootQuery, parent_link
from ..errors import MappingError
from .rows import row_mapper

__all__ = ["BatchedLoader", "finish", "load_steps", "materialize"]

T = TypeVar("T")


# -- the json strategy: one statement, children as JSON ------------------------------------


def _decode_fields(
    label: str, level: Level, decoders: Sequence[tuple[str, Any]], out: dict[str, Any]
) -> None:
    """Apply each column's decoder in place; a value that does not decode names its column."""
    for name, decode in decoders:
        value = out[name]
        if value is not None:
            try:
                out[name] = decode(value)
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                raise MappingError(f"{label}.{name}: cannot decode value {value!r}: {exc}") from exc


def _field_getter(level: Level, offset: int = 0) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Picks a row's values in ``level.fields`` order from [columns, counts, children] order."""
    order = _json_order(level)
    positions = [offset + order.index(name) for name in level.fields]
    if len(positions) == 1:
        only = positions[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*positions)


def _json_order(level: Level) -> list[str]:
    """The order of a level's values in its rows and JSON items: columns, counts, children."""
    return (
        [c.key for c in level.columns]
        + [name for name, _, _ in level.counts]
        + [child.name for child in level.children]
    )


def _in_order(level: Level) -> bool:
    """Whether a JSON item's values come in ``level.fields`` order."""
    return _json_order(level) == list(level.fields)


def _json_row_decoder(root: Level) -> Callable[[Sequence[Any]], dict[str, Any]]:
    fields, pick = root.fields, _field_getter(root)
    children = [(child.name, _json_level_decoder(child)) for child in root.children]

    def decode(row: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip(fields, pick(row), strict=True))
        for name, decode_child in children:
            text = out[name]
            out[name] = decode_child(None if text is None else json.loads(text))
        return out

    return decode


def _json_level_decoder(level: Level) -> Callable[[Any], Any]:
    fields, pick = level.fields, _field_getter(level)
    label = level.table.name
    decoders = [
        (c.key, d)
        for c in level.columns
        if (d := codecs.json_decoder_for(c.type, f"{label}.{c.name}")) is not None
    ]
    children = [(child.name, _json_level_decoder(child)) for child in level.children]

    def one(item: list[Any]) -> dict[str, Any]:
        out = dict(zip(fields, pick(item), strict=True))
        _decode_fields(label, level, decoders, out)
        for name, decode_child in children:
            out[name] = decode_child(out[name])
        return out

    assert level.relation is not None
    if not children and _in_order(level):  # the usual leaf: columns only, in order
        return _generated_leaf(level, decoders, label)
    if level.relation.many:
        return lambda items: [] if items is None else [one(x) for x in items]
    return lambda item: None if item is None else one(item)


_DECODE_ERRORS = (ValueError, TypeError, KeyError, OverflowError)


def _generated_leaf(
    level: Level, decoders: Sequence[tuple[str, Any]], label: str
) -> Callable[[Any], Any]:
    """The usual leaf's decoder, written for its columns: no call, no loop per related row.

    Each JSON item is unpacked into one variable per column and becomes a dict
    display, its decoders inline (``[{k0: v0, k1: d1(v1) ...} for v0, v1 ... in items]``).
    When anything fails (a value that does not decode, an item of the wrong length),
    the items go through ``check``, which names the column (or the length).
    """
    assert level.relation is not None
    fields = level.fields

    def check(item: list[Any]) -> None:
        _decode_fields(label, level, decoders, dict(zip(fields, item, strict=True)))

    by_name = dict(decoders)
    names = [f"v{i}" for i in range(len(level.fields))]
    values = []
    for i, field in enumerate(level.fields):
        value = names[i]
        if field in by_name:
            value = f"(None if {value} is None else d{i}({value}))"
        values.append(f"k{i}: {value}")
    display = "{" + ", ".join(values) + "}"
    unpack = ", ".join(names) + ("," if len(names) == 1 else "")
    if level.relation.many:
        lines = [
            "def decode(items):",
            "    if items is None:",
            "        return []",
            "    try:",
            f"        return [{display} for {unpack} in items]",
            "    except errors:",
            "        for item in items:",
            "            check(item)  # raises, naming the column",
            "        raise",
        ]
    else:
        lines = [
            "def decode(item):",
            "    if item is None:",
            "        return None",
            "    try:",
            f"        {unpack} = item",
            f"        return {display}",
            "    except errors:",
            "        check(item)  # raises, naming the column",
            "        raise",
        ]
    namespace: dict[str, Any] = {"check": check, "errors": _DECODE_ERRORS}
    namespace.update({f"k{i}": field for i, field in enumerate(level.fields)})
    namespace.update(
        {f"d{i}": by_name[field] for i, field in enumerate(level.fields) if field in by_name}
    )
    generate(f"nested {level.table.name} decoder", lines, namespace)
    decode: Callable[[Any], Any] = namespace["decode"]
    return decode


_DECODERS: dict[Hashable, Callable[[Sequence[Any]], dict[str, Any]]] = {}
_MAX_DECODERS = 1024


def _root_decoder(query: NestedQuery[Any]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """The json row decoder of ``query``'s shape: built once per shape, not per call."""
    key = query._key([])  # the shape: levels, columns, relations (values are not part of it)
    decode = _DECODERS.get(key)
    if decode is None:
        if len(_DECODERS) >= _MAX_DECODERS:
            _DECODERS.pop(next(iter(_DECODERS)))
        decode = _DECODERS[key] = _json_row_decoder(query.root)
    return decode


def materialize(query: NestedQuery[T], rows: Sequence[Sequence[Any]]) -> list[T]:
    """Results from the json statement's rows (dicts, or the ``as_=`` class)."""
    decode = _root_decoder(query)
    return finish(query, [decode(row) for row in rows])


def finish(query: NestedQuery[T], results: list[dict[str, Any]]) -> list[T]:
    """The result dicts as the query's ``as_=`` class, when it has one."""
    if query.row_class is None:
        return results  # type: ignore[return-value]
    build = _builder_for(query.row_class, query.root)
    return [build(r) for r in results]


# -- the batched strategy: one statement per level, stitched here ---------------------------


class _Layout:
    """Where things sit in one batched level's rows: [qk_parent?, columns, keys, counts].

    ``link`` is the position of the parent's key in a child level's rows: the
    leading ``qk_parent`` column, or the join column among the level's own
    (:func:`querykit.compile.nested.parent_link`).
    """

    def __init__(self, level: Level, *, linked: bool) -> None:
        own_link = parent_link(level) if linked else None
        base = 1 if linked and own_link is None else 0
        self.link = own_link if own_link is not None else 0
        columns = list(level.columns)
        keys = list(key_columns(level))
        self.level = level
        self.names = [c.key for c in columns] + [name for name, _, _ in level.counts]
        count_base = base + len(columns) + len(keys)
        positions = [base + i for i in range(len(columns))]
        positions += [count_base + i for i in range(len(level.counts))]
        self.pick = operator.itemgetter(*positions) if len(positions) > 1 else None
        self.positions = positions
        # the values are the row's first ones, in order: zip the row itself, no picking
        self.leading = positions == list(range(len(positions)))
        self.children = [
            (child.name, child.relation.many if child.relation else False)
            for child in level.children
        ]
        lookup = {c: base + i for i, c in enumerate(columns + keys)}
        self.reorder = self.names + [name for name, _ in self.children] != list(level.fields)
        self.link_position = {
            child.name: lookup[child.relation.pairs[0][0]]
            for child in level.children
            if child.relation is not None
        }

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        picked = self.pick(values) if self.pick is not None else (values[self.positions[0]],)
        out = dict(zip(self.names, picked, strict=True))
        for name, many in self.children:
            out[name] = [] if many else None
        if self.reorder:  # counts and relations interleave in with_: keep the declared order
            out = {name: out[name] for name in self.level.fields}
        return out

    @property
    def plain(self) -> bool:
        """Whether a row's dict is its first values under ``names`` (no relations, no reorder)."""
        return self.leading and not self.children and not self.reorder

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """:meth:`row` of each row; a level without relations below takes a quicker path."""
        names = self.names
        if self.plain:  # zip stops at the last name: keys and counts after are left out
            return [dict(zip(names, values, strict=False)) for values in rows]
        if self.children or self.reorder or self.pick is None:
            return [self.row(values) for values in rows]
        pick = self.pick
        return [dict(zip(names, pick(values), strict=True)) for values in rows]


class BatchedLoader:
    """Stitches the batched strategy's per-level results; the executor feeds it rows.

    Protocol: ``start(root rows)``; then while ``pending()`` gives child queries,
    run them (together, in a pipeline) and hand each one's rows to ``feed``. Rows
    arrive decoded, as the executor returns them.
    """

    def __init__(self, query: NestedQuery[Any]) -> None:
        self.query = query
        self.root = query.root
        self.results: list[dict[str, Any]] = []
        # per level: its result dicts, and each row's raw values (for the links to children)
        self._rows: dict[int, list[tuple[dict[str, Any], Sequence[Any]]]] = {}
        self._frontier: list[Level] = []
        self._layouts: dict[int, _Layout] = {}

    def _layout(self, level: Level) -> _Layout:
        layout = self._layouts.get(id(level))
        if layout is None:
            layout = self._layouts[id(level)] = _Layout(level, linked=level is not self.root)
        return layout

    def start(self, rows: Sequence[Sequence[Any]]) -> None:
        """Take the root level's rows: they become the results, children still empty."""
        self.results = self._layout(self.root).rows(rows)
        self._rows[id(self.root)] = list(zip(self.results, rows, strict=True))
        self._frontier = [self.root]

    def pending(self) -> list[ChildQuery]:
        """The next level's queries, one per relation, keyed by the parents just loaded."""
        queries = []
        for parent in self._frontier:
            layout = self._layout(parent)
            made = self._rows.get(id(parent), [])
            for child in parent.children:
                position = layout.link_position[child.name]
                keys = list(
                    dict.fromkeys(raw[position] for _, raw in made if raw[position] is not None)
                )
                queries.append(ChildQuery(child, parent, keys))
        self._frontier = []
        return queries

    def feed(self, query: ChildQuery, rows: Sequence[Sequence[Any]]) -> None:
        """Hand a child query's rows to their parents (by the link column), in one pass."""
        child, parent = query.level, query.parent
        rel = child.relation
        assert rel is not None
        name, layout = child.name, self._layout(child)
        link = layout.link
        position = self._layout(parent).link_position[name]
        parents = self._rows.get(id(parent), [])
        items = None if layout.plain else layout.rows(rows)
        if rel.many:
            # each parent gets its list at once (parents sharing a key share it); the
            # children are appended to their parent's list as they come, in order
            buckets: dict[Any, list[dict[str, Any]]] = {}
            for item, raw in parents:
                key = raw[position]
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = []
                item[name] = bucket
            # a child whose key matches no parent's in Python (citext, say) is left out
            if items is None:
                names = layout.names
                for values in rows:
                    if (bucket := buckets.get(values[link])) is not None:
                        bucket.append(dict(zip(names, values, strict=False)))
            else:
                for item, values in zip(items, rows, strict=True):
                    if (bucket := buckets.get(values[link])) is not None:
                        bucket.append(item)
        else:
            if items is None:
                items = layout.rows(rows)
            first: dict[Any, dict[str, Any]] = {}
            for item, values in zip(items, rows, strict=True):
                first.setdefault(values[link], item)
            for item, raw in parents:
                item[name] = first.get(raw[position])
        if child.children:  # the raw values are kept for the links to the next level
            assert items is not None
            self._rows[id(child)] = list(zip(items, rows, strict=True))
            self._frontier.append(child)

    def finish(self) -> list[Any]:
        """The stitched results, as dicts or the ``as_=`` class."""
        return finish(self.query, self.results)


# -- as_= classes ------------------------------------------------------------------------------


def _builder_for(cls: Any, level: Level) -> Callable[[dict[str, Any]], Any]:
    """A level's result dict as ``cls``, through the one row mapper (``rows.row_mapper``).

    The relations whose field names an ``as_=`` class of their own (``list[StepRow]``,
    ``StepRow | None``) are built first; the others stay dicts.
    """
    make = row_mapper(level.fields, cls)
    pick = _values_in(level.fields)
    hints = field_hints(cls)
    children = []
    for child in level.children:
        child_cls = element_class(hints.get(child.name))
        if child_cls is not None:
            many = child.relation.many if child.relation else False
            children.append((child.name, _builder_for(child_cls, child), many))

    def build(row: dict[str, Any]) -> Any:
        for name, sub, many in children:
            value = row[name]
            if many:
                row[name] = [sub(v) for v in value or []]
            elif value is not None:
                row[name] = sub(value)
        return make(pick(row))

    return build


def _values_in(names: Sequence[str]) -> Callable[[dict[str, Any]], Sequence[Any]]:
    """A dict's values in ``names`` order."""
    if len(names) == 1:
        (only,) = names
        return lambda row: (row[only],)
    return operator.itemgetter(*names)


# -- the loading conversation: querykit.execute.loading_async does the talking ------------


def load_steps(query: NestedQuery[T]) -> Generator[list[Query[Any]], list[Sequence[Any]], list[T]]:
    """The loading conversation without I/O: yields queries to run, receives their rows.

    The runners in :mod:`querykit.execute.loading_async` (and the sync
    :mod:`querykit.execute.loading` generated from it) only do the talking, so both
    strategies live here once.
    """
    (rows,) = yield [RootQuery(query)]
    if query.strategy == "json":
        return materialize(query, rows)
    loader = BatchedLoader(query)
    loader.start(rows)
    while pending := loader.pending():
        results = yield list(pending)
        for child, child_rows in zip(pending, results, strict=True):
            loader.feed(child, child_rows)
    return loader.finish()
