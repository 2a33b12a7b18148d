"""Run the rules over migration files in order, carrying the schema from file to file.

Files are read in version order. Each file's statements are checked with what
the earlier files (and, when given, the live catalog) say about the schema;
tables created in a file that has not been applied yet are new and empty, so
the lock rules leave them alone. Findings can be silenced inline with a
comment line before the statement::

    -- querykit:lint-ignore create-index-not-concurrent the table has 10 rows

and their levels set per project in ``[tool.querykit.lint]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any, Literal

from pglast import ast
from pglast.enums import AlterTableType, ConstrType

from ...errors import ConfigError, MigrationFileError
from ..files import DOWN_MARKER, Migration, Statement, display_path
from ..version import Version
from .effects import predict
from .knowledge import Knowledge, const_value, table_name
from .model import LEVELS, Effect, Finding, Level, ProbeVerdict
from .probe import Observation
from .rules import RULES, Context, Rule, rule_ids

__all__ = ["LARGE_TABLE_ROWS", "StatementKey", "lint_migrations", "statement_effects"]

LARGE_TABLE_ROWS = 100_000
"""From this many rows (pg_class.reltuples) a lock finding is an error whatever its level."""
_IGNORE = re.compile(r"--\s*querykit:lint-ignore\b[ \t]*(?P<rule>[^\s]*)[ \t]*(?P<reason>[^\n]*)")
StatementKey = tuple[str, str, int]
"""(file path, part, statement index) of one statement."""
_DECIDES = {
    "column-type-rewrite": "rewrite",
    "add-column-rewrite": "rewrite",
    "set-not-null-unproven": "scan",
    "constraint-not-valid": "scan",
}


@dataclass
class _FileState:
    transactional: bool
    not_valid: dict[tuple[str, str], str]
    enum_labels: set[str]
    lock_timeout: float
    """Seconds: the runner's setting, until the file SETs its own (0: no limit)."""


def lint_migrations(
    migrations: Sequence[Migration],
    *,
    targets: set[str],
    applied: AbstractSet[Version] = frozenset(),
    base: Knowledge | None = None,
    levels: Mapping[str, str] | None = None,
    lock_timeout: float = 5.0,
    observations: Mapping[StatementKey, Observation] | None = None,
) -> list[Finding]:
    """Findings for the files whose path is in ``targets``; the others are history.

    ``migrations`` are all files in version order. ``applied`` versions hold
    data already: their tables are not new. ``observations`` (from the probe)
    confirm or correct each finding.
    """
    configured = _levels(levels or {})
    know = base.copy() if base is not None else Knowledge()
    findings: list[Finding] = []
    # Knowledge flows forward only: the files after the last target cannot change its
    # findings, so they are not parsed (none at all when nothing is pending).
    last = max((n for n, m in enumerate(migrations) if str(m.path) in targets), default=-1)
    for m in migrations[: last + 1]:
        is_target = str(m.path) in targets
        new = m.version not in applied
        parts: tuple[tuple[Literal["up", "down"], tuple[Statement, ...]], ...] = (
            ("up", m.up),
            ("down", m.down or ()),
        )
        for part, statements in parts:
            if part == "down" and not (is_target and statements):
                break  # no down part to check: skip copying the knowledge (quadratic in files)
            work = know if part == "up" else know.copy()
            state = _FileState(
                m.up_transactional if part == "up" else m.down_transactional,
                {},
                set(),
                lock_timeout,
            )
            previous_end = 0 if part == "up" else max(0, m.text.find(DOWN_MARKER))
            for statement in statements:
                node = _parse(m, statement)
                if is_target:
                    ignored = _ignored(m, statement, previous_end)
                    seen = None
                    if observations is not None:
                        seen = observations.get((str(m.path), part, statement.index))
                    observed = seen.effect if seen is not None else None
                    found = _check(m, part, statement, node, work, state, observed)
                    for rule, hit_finding in found:
                        if rule.id in ignored:
                            continue
                        level = configured.get(rule.id, rule.level)
                        if level == "off":
                            continue
                        f = _weigh(replace(hit_finding, level=level), rule, work)
                        if observations is not None:
                            f = _verdict(f, seen)
                        findings.append(f)
                previous_end = statement.offset + len(statement.text)
                _track(node, work, state)
                # A table is new (empty) in the file that creates it; after an
                # applied file it holds data for every later file.
                work.learn(node, new=True)
        if not new:
            know.new_tables.clear()
    return findings


def statement_effects(
    migrations: Sequence[Migration], base: Knowledge | None = None
) -> dict[StatementKey, Effect]:
    """The predicted effect of every up statement, in file order (what the probe is compared to)."""
    know = base.copy() if base is not None else Knowledge()
    out: dict[StatementKey, Effect] = {}
    for m in migrations:
        for statement in m.up:
            node = _parse(m, statement)
            out[(str(m.path), "up", statement.index)] = predict(node, know)
            know.learn(node, new=True)
    return out


def _levels(levels: Mapping[str, str]) -> dict[str, Level]:
    known = set(rule_ids())
    unknown = sorted(set(levels) - known)
    if unknown:
        raise ConfigError(
            f"unknown lint rule {', '.join(repr(u) for u in unknown)} in [tool.querykit.lint]; "
            f"known rules: {', '.join(sorted(known))}"
        )
    return {rule: _level(rule, value) for rule, value in levels.items()}


def _level(rule: str, value: str) -> Level:
    for level in LEVELS:
        if value == level:
            return level
    raise ConfigError(f"lint level of {rule!r} must be one of {', '.join(LEVELS)}, got {value!r}")


def _parse(m: Migration, statement: Statement) -> Any:
    return statement.tree


def _ignored(m: Migration, statement: Statement, previous_end: int) -> set[str]:
    """Rules silenced by ``-- querykit:lint-ignore RULE reason`` lines before or in the statement."""
    chunk = m.text[previous_end : statement.offset + len(statement.text)]
    out = set()
    for match in _IGNORE.finditer(chunk):
        line = m.text.count("\n", 0, previous_end + match.start()) + 1
        where = f"{display_path(m.path)}:{line}"
        rule, reason = match["rule"], match["reason"].strip()
        if rule not in rule_ids():
            raise MigrationFileError(
                f"{where}: '-- querykit:lint-ignore {rule}' names no lint rule; write "
                f"'-- querykit:lint-ignore RULE reason' with one of: {', '.join(rule_ids())}",
                path=str(m.path),
                line=line,
            )
        if not reason:
            raise MigrationFileError(
                f"{where}: '-- querykit:lint-ignore {rule}' needs a reason after the rule id, "
                "e.g. '-- querykit:lint-ignore create-index-not-concurrent the table has 10 rows'",
                path=str(m.path),
                line=line,
            )
        out.add(rule)
    return out


def _check(
    m: Migration,
    part: Literal["up", "down"],
    statement: Statement,
    node: Any,
    know: Knowledge,
    state: _FileState,
    observed: Effect | None,
) -> list[tuple[Rule, Finding]]:
    effect = predict(node, know)
    ctx = Context(
        node,
        statement.text,
        part,
        state.transactional,
        know,
        effect,
        state.not_valid,
        state.enum_labels,
        observed,
    )
    out = []
    for rule in RULES:
        if (part == "down" and rule.destructive) or not isinstance(node, rule.nodes):
            continue
        for hit in rule.check(ctx):
            rows = {t: know.rows[t] for t in hit.tables if t in know.rows}
            message = hit.message
            if rule.lock and any(t in hit.tables for t, _ in effect.locks):
                message += "; " + _waits(state.lock_timeout)
            out.append(
                (
                    rule,
                    Finding(
                        rule=rule.id,
                        level=rule.level,
                        path=display_path(m.path),
                        line=statement.line,
                        column=statement.column,
                        statement=statement.text,
                        message=message,
                        effect=effect,
                        safe=hit.safe,
                        part=part,
                        tables=rows,
                    ),
                )
            )
    return out


def _waits(seconds: float) -> str:
    if seconds <= 0:
        return "lock_timeout is off here, so it may wait for the lock without limit, queueing every query behind it"
    return (
        f"it waits at most lock_timeout ({seconds:g} s) for the lock, then fails with 55P03 "
        "(querykit migrate up --lock-retries N retries)"
    )


def _weigh(f: Finding, rule: Rule, know: Knowledge) -> Finding:
    """With table sizes known, a lock finding on empty tables is info, on a large one an error."""
    if not rule.lock or not f.tables or f.level == "info":
        return f
    if all(rows <= 0 for rows in f.tables.values()):
        return replace(f, level="info", message=f.message + " (the table is empty: info)")
    if any(rows >= LARGE_TABLE_ROWS for rows in f.tables.values()):
        big = max(f.tables.values())
        return replace(f, level="error", message=f.message + f" (~{big:,.0f} rows)")
    return f


def _verdict(f: Finding, seen: Observation | None) -> Finding:
    if seen is None or seen.effect is None:
        why = seen.error if seen is not None and seen.error else "judged statically"
        return replace(f, probe=ProbeVerdict(Effect(), False, f"not observed: {why}"))
    observed = seen.effect
    if observed == f.effect:
        return replace(f, probe=ProbeVerdict(observed, True, "confirmed"))
    diffs = []
    if observed.locks != f.effect.locks:
        diffs.append("locks " + (", ".join(f"{m} on {t}" for t, m in observed.locks) or "none"))
    if observed.rewrite != f.effect.rewrite:
        diffs.append("rewrite " + (", ".join(observed.rewrite) or "none"))
    if observed.scan != f.effect.scan:
        diffs.append("scan " + (", ".join(observed.scan) or "none"))
    note = "corrected: the probe saw " + "; ".join(diffs)
    level = f.level
    decides = _DECIDES.get(f.rule)
    if decides is not None and not getattr(observed, decides):
        level = "info"
        note += f" (no {decides}, so this is info)"
    return replace(f, level=level, effect=observed, probe=ProbeVerdict(observed, False, note))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


def _seconds(value: object) -> float | None:
    """A lock_timeout value (``'10s'``, ``500`` in ms, ``'1min'``) in seconds; None if unreadable."""
    match = _DURATION.match(str(value))
    if match is None:
        return None
    return float(match[1]) * _UNIT_SECONDS[(match[2] or "ms").lower()]


def _track(node: Any, know: Knowledge, state: _FileState) -> None:
    """Remember the file's lock_timeout, and NOT VALID constraints and enum labels of this transaction."""
    if isinstance(node, ast.VariableSetStmt) and (node.name or "").lower() == "lock_timeout":
        seconds = _seconds(const_value(node.args[0])) if node.args else None
        if seconds is not None:
            state.lock_timeout = seconds
    if not state.transactional:
        return
    if isinstance(node, ast.AlterTableStmt):
        table = table_name(node.relation)
        for cmd in node.cmds or ():
            c = cmd.def_
            if (
                cmd.subtype == AlterTableType.AT_AddConstraint
                and c.skip_validation
                and c.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK)
            ):
                kind = "foreign" if c.contype == ConstrType.CONSTR_FOREIGN else "check"
                state.not_valid[(table, (c.conname or "").lower())] = kind
    elif isinstance(node, ast.AlterEnumStmt) and node.newVal and not node.oldVal:
        state.enum_labels.add(node.newVal)
