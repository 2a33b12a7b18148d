"""Prepared queries: build and compile once, run many times with new values.

``placeholder("name")`` stands for a value that is given at each call. The
query is built and compiled once by ``db.prepare(query)``; a call fills the
placeholders, checks the values against their columns, and sends the
statement as a server-side prepared statement::

    by_id = db.prepare(select(run.c.id, run.c.name).where(eq(run.c.id, placeholder("id"))))
    by_id.one(id="c123")        # tuple[str, str]
    by_id.first(id="c456")

A placeholder goes wherever a value goes: conditions, ``insert().values()``,
``update().set()``, ``limit()`` and ``offset()``.
With ``connect(prepare=False)``, for PgBouncer in transaction pooling mode,
prepared queries still skip building and compiling but are not prepared on
the server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, TypeVarTuple

from .. import codecs
from ..build.placeholder import Placeholder, placeholder
from ..build.query import Query, fresh_defaults
from ..codegen import generate
from ..compile import compile_query
from ..errors import CompileError, ValidationError
from .plan import Plan, check_query, plan_for

__all__ = ["Placeholder", "PreparedPlan", "placeholder"]

T = TypeVar("T")
C = TypeVar("C")
Ts = TypeVarTuple("Ts")


class PreparedPlan:
    """A compiled query and where its placeholders' values go (no I/O).

    Fixed values are checked and adapted once, here; a call only adapts the
    placeholders' values, through the same column rules (``Shape.params``).
    """

    __slots__ = ("base", "generated", "names", "plan", "settings", "slots")

    def __init__(self, query: Query[*tuple[Any, ...]], *, server_prepare: bool) -> None:
        check_query(query, "prepare")
        query, self.generated = fresh_defaults(query)
        shape, values = compile_query(query)
        self.plan: Plan = dataclasses.replace(
            plan_for(shape, query), prepare=server_prepare, _mapped={}
        )
        self.settings = query.settings
        types: dict[str, type | None] = {}
        for value in values:
            if isinstance(value, Placeholder):
                known = types.get(value.name)
                if value.type is not None and known is not None and known is not value.type:
                    raise CompileError(
                        f"placeholder {value.name!r} is declared as {known.__name__} and as "
                        f"{value.type.__name__}; use one type"
                    )
                types[value.name] = known or value.type
        # A placeholder may be missing from the SQL: SQLAlchemy folds ``and_(x, false())``
        # (an empty in_array()) to ``false``, and its value then changes nothing. One the
        # compiled statement holds as a constant of its own would be sent as it is: refuse.
        constant = sorted({c.name for c in shape.constants if isinstance(c, Placeholder)})
        if constant:
            raise CompileError(
                f"placeholder {', '.join(repr(n) for n in constant)} sits where the compiled SQL "
                "has no parameter; placeholders work where values are bound "
                "(conditions, values(), set())"
            )
        # The parameters with every fixed value adapted now, and the slots to fill per call.
        fixed = [None if isinstance(v, Placeholder) else v for v in values]
        self.base = list(shape.params(fixed))
        self.slots = tuple(
            (pos, values[index].name, adapt, label, types[values[index].name])
            for pos, (index, adapt, label) in enumerate(
                zip(shape.slots, shape.adapters, shape.labels, strict=True)
            )
            if isinstance(values[index], Placeholder)
        )
        self.names = frozenset(types)

    def params(self, given: Mapping[str, Any]) -> list[Any]:
        """The parameters for one call; a bad value names its placeholder and column."""
        if self.generated:
            given = self._with_generated(given)
        if given.keys() != self.names:
            raise self._names_error(given)
        out = self.base.copy()
        for pos, name, adapt, label, type_ in self.slots:
            value = given[name]
            if value is not None:
                if type_ is not None and not isinstance(value, type_):
                    raise ValidationError(
                        f"placeholder {name!r}: expected {type_.__name__}, "
                        f"got {type(value).__name__}",
                        column=label,
                    )
                if adapt is not None:
                    try:
                        value = adapt(value)
                    except codecs.ValueRejected as exc:
                        raise ValidationError(f"{label}: {exc}", column=label) from None
            out[pos] = value
        return out

    def filler(self) -> Callable[[Mapping[str, Any]], list[Any]]:
        """:meth:`params` as one generated function for this query: no loop, no lookups.

        Only positions and the adapters' own ``codecs.unchanged_when`` tests go into
        its source; names, values and adapters are passed in. Anything unusual (a wrong name, a None, a value an adapter refuses)
        goes through :meth:`params`, which raises the precise error.
        """
        # Every name is used by some slot (__init__ checks it), so when there are as many
        # names as expected and each one is found, they are exactly the expected ones.
        namespace: dict[str, Any] = {
            **codecs.UNCHANGED_GLOBALS,
            "count": len(self.names),
            "slow": self.params,
        }
        parts: list[str] = []
        lines = ["def fill(given):", "    if len(given) != count: return slow(given)", "    try:"]
        placeholders = {pos: (name, adapt, type_) for pos, name, adapt, _, type_ in self.slots}
        for pos, value in enumerate(self.base):
            if pos not in placeholders:
                namespace[f"c{pos}"] = value
                parts.append(f"c{pos}")
                continue
            name, adapt, type_ = placeholders[pos]
            namespace[f"n{pos}"] = name
            lines.append(f"        v{pos} = given[n{pos}]")
            if type_ is not None:
                namespace[f"t{pos}"] = type_
                lines.append(f"        if type(v{pos}) is not t{pos}: return slow(given)")
            else:
                lines.append(f"        if v{pos} is None: return slow(given)")
            if adapt is None:
                parts.append(f"v{pos}")
                continue
            namespace[f"a{pos}"] = adapt
            unchanged = codecs.unchanged_when(adapt)
            if unchanged is None:
                parts.append(f"a{pos}(v{pos})")
            else:  # the usual value passes without a call
                parts.append(f"(v{pos} if {unchanged.format(v=f'v{pos}')} else a{pos}(v{pos}))")
        lines.append(f"        return [{', '.join(parts)}]")
        lines += ["    except Exception:", "        return slow(given)"]
        generate("prepared fill", lines, namespace)
        fill: Callable[[Mapping[str, Any]], list[Any]] = namespace["fill"]
        if not self.generated:
            return fill
        with_generated = self._with_generated
        return lambda given: fill(with_generated(given))

    def _with_generated(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` and a fresh value of each Python-side default (``default=cuid``)."""
        out = dict(given)
        for name, make in self.generated:
            out[name] = make(None)
        return out

    def _names_error(self, given: Mapping[str, Any]) -> CompileError:
        generated = {name for name, _ in self.generated}
        missing = sorted(self.names - set(given) - generated)
        extra = sorted(set(given) - self.names)
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"unknown {', '.join(extra)}")
        expected = ", ".join(sorted(self.names - generated)) or "no values"
        return CompileError(
            f"prepared query: {'; '.join(problems)} (it takes {expected}). "
            f"SQL: {self.plan.excerpt()}"
        )
