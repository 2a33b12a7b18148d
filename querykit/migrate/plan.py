"""Compare the files with the ledger, and decide what ``up`` and ``down`` would run.

Pure functions: no I/O. Every refusal names the files and says what to do::

    >>> [e.state for e in entries(files, rows)]
    ['applied', 'changed', 'pending']
    >>> plan_up(files, rows)
    Traceback (most recent call last):
    querykit.errors.MigrationRefused: applied migrations have changed since they were applied: ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError, MigrationRefused
from .files import Migration, Statement, display_path, snippet
from .ledger import KIND_BASELINE, LedgerRow
from .version import Version

__all__ = ["Entry", "State", "Step", "entries", "plan_down", "plan_up", "resolve_version"]

State = Literal["applied", "baseline", "pending", "changed", "missing", "failed", "interrupted"]


@dataclass(frozen=True)
class Entry:
    """One version as ``status`` shows it: the file, its ledger row, and their state."""

    version: Version
    filename: str
    state: State
    migration: Migration | None
    row: LedgerRow | None
    out_of_order: bool = False
    problem: str | None = None
    """Why ``up`` would refuse this pending file, or what differs in a changed one."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        row = self.row
        return {
            "version": self.version.to_json(),
            "name": self.filename,
            "state": self.state,
            "out_of_order": self.out_of_order,
            "problem": self.problem,
            "checksum": row.checksum if row else None,
            "file_checksum": self.migration.checksum if self.migration else None,
            "applied_at": row.applied_at.isoformat() if row else None,
            "duration_ms": row.duration_ms if row else None,
            "applied_by": row.applied_by if row else None,
            "kind": row.kind if row else None,
            "statements_done": row.statements_done if row else None,
            "statements_total": row.statements_total if row else None,
            "error": row.error if row else None,
        }


@dataclass(frozen=True)
class Step:
    """One file to apply (``up``) or revert (``down``)."""

    migration: Migration
    direction: Literal["up", "down"]
    start: int = 0
    """Statements already done by an interrupted run; the step resumes after them."""
    resume: bool = False
    """The file has a ledger row from an interrupted run: it continues statement by statement."""

    @property
    def statements(self) -> tuple[Statement, ...]:
        """The statements this step runs: the up or the down part."""
        return self.migration.up if self.direction == "up" else (self.migration.down or ())

    @property
    def transactional(self) -> bool:
        """Whether this step runs in one transaction (never when it resumes a partly applied file)."""
        m = self.migration
        if self.resume:
            return False
        return m.up_transactional if self.direction == "up" else m.down_transactional


def entries(files: list[Migration], rows: dict[Version, LedgerRow]) -> list[Entry]:
    """Every version found in the files or the ledger, in version order."""
    by_version = {m.version: m for m in files}
    highest = max(rows, default=None)
    result = []
    for version in sorted(set(by_version) | set(rows)):
        m, row = by_version.get(version), rows.get(version)
        if m is None:
            assert row is not None
            result.append(Entry(version, row.name, "missing", None, row))
        elif row is None:
            out_of_order = highest is not None and version < highest
            result.append(Entry(version, m.filename, "pending", m, None, out_of_order, m.problem))
        elif not row.success:
            problem = _difference(m, row)
            state: State = "failed" if row.error is not None else "interrupted"
            result.append(Entry(version, m.filename, state, m, row, problem=problem))
        elif (problem := _difference(m, row)) is not None:
            result.append(Entry(version, m.filename, "changed", m, row, problem=problem))
        else:
            state = "baseline" if row.kind == KIND_BASELINE else "applied"
            result.append(Entry(version, m.filename, state, m, row))
    return result


def _difference(m: Migration, row: LedgerRow) -> str | None:
    if row.name != m.filename:
        return f"applied as {row.name}, the file is now named {m.filename}"
    if row.checksum != m.checksum:
        return f"sha256 was {row.checksum[:12]}… when applied, the file is now {m.checksum[:12]}…"
    return None


def check_drift(found: list[Entry]) -> None:
    """Refuse when an applied file changed or vanished."""
    changed = [e for e in found if e.state == "changed"]
    missing = [e for e in found if e.state == "missing"]
    problems = []
    if changed:
        names = "; ".join(f"{_where(e)} ({e.problem})" for e in changed)
        problems.append(
            f"applied migrations have changed since they were applied: {names}. Restore them "
            "(e.g. git checkout) and put new changes in a new file; if the database already "
            "matches the new content, record it with: querykit migrate repair --accept-changed"
        )
    if missing:
        names = "; ".join(
            f"{e.filename} (applied {e.row.applied_at:%Y-%m-%d %H:%M})" for e in missing if e.row
        )
        problems.append(
            f"applied migrations are missing from the directory: {names}. {_missing_advice(found, missing)}"
        )
    if problems:
        raise MigrationRefused(" ".join(problems))


def _missing_advice(found: list[Entry], missing: list[Entry]) -> str:
    """What to do about missing files: first the path, last (and destructive) the ledger.

    A wrong directory (a typo in --dir, another working directory, another
    project's ledger) makes every applied file look missing; forgetting them
    then would erase the history of a healthy database.
    """
    present = sorted({str(display_path(e.migration.path.parent)) for e in found if e.migration})
    where = (
        f"the directory read is {present[0]}"
        if len(present) == 1
        else ("the directory read has no migration files")
    )
    applied = [e for e in found if e.row is not None]
    if len(missing) == len(applied):
        first = (
            f"None of the {len(applied)} applied migration(s) is in it ({where}): this is most "
            "likely the wrong directory or database. Check the path (--dir, the 'migrations' "
            "setting, the current directory) and the database URL first"
        )
    else:
        first = (
            f"Check that this is the right migrations directory ({where}; --dir, the "
            "'migrations' setting), then restore the files (e.g. git checkout)"
        )
    return (
        f"{first}. Only if the files were removed on purpose, drop their rows from the ledger "
        "(this forgets them for good) with: querykit migrate repair --forget-missing"
    )


def _where(e: Entry) -> str:
    return display_path(e.migration.path) if e.migration else e.filename


def plan_up(
    found: list[Entry], *, to: Version | None = None, allow_out_of_order: bool = False
) -> list[Step]:
    """The files ``up`` applies, in order; refuses on drift, failures, disorder or mixing."""
    check_drift(found)
    for e in found:
        if e.state == "failed" and e.row is not None:
            raise MigrationRefused(
                f"{_where(e)} failed at statement {e.row.statements_done + 1} of "
                f"{e.row.statements_total} and runs outside a transaction, so statements 1 to "
                f"{e.row.statements_done} are applied. The error was: {e.row.error}. Fix the "
                "cause (the file, or the database by hand), then run querykit migrate repair; "
                "querykit migrate up then resumes at the failed statement"
            )
        if e.state == "interrupted" and e.problem is not None:
            raise MigrationRefused(
                f"{_where(e)} was interrupted after statement {e.row.statements_done if e.row else 0} "
                f"and has been edited since ({e.problem}); check the file, then run querykit "
                "migrate repair to resume with its current content"
            )
    wanted = [
        e
        for e in found
        if e.state in ("pending", "interrupted") and (to is None or e.version <= to)
    ]
    disorder = [e for e in wanted if e.out_of_order]
    if disorder and not allow_out_of_order:
        latest = max((e for e in found if e.row is not None), key=lambda e: e.version)
        names = ", ".join(_where(e) for e in disorder)
        raise MigrationRefused(
            f"out of order: {names} {'is' if len(disorder) == 1 else 'are'} pending but "
            f"{latest.filename} is already applied. Give the file a version above "
            f"{latest.filename} (querykit migrate new makes one), or apply it anyway with "
            "querykit migrate up --allow-out-of-order"
        )
    for e in wanted:
        if e.problem is not None and e.state == "pending":
            assert e.migration is not None
            e.migration.check()  # bad SQL or no statements: the file's own error
            raise MigrationRefused(e.problem)
    steps = []
    for e in wanted:
        assert e.migration is not None
        start = e.row.statements_done if e.row is not None else 0
        if e.row is not None:
            check_applied_statements(e.migration, e.row)
        steps.append(Step(e.migration, "up", start, resume=e.row is not None))
    return steps


def check_applied_statements(m: Migration, row: LedgerRow) -> None:
    """Refuse to resume a partly applied file when a statement that already ran was edited.

    Resuming counts statements by position, so an edit before the failed
    statement would shift the count and skip work; each applied statement's
    hash, recorded when it ran, must still match.
    """
    statements = m.up
    for index, recorded in enumerate(row.statement_hashes[: row.statements_done], 1):
        current = statements[index - 1] if index <= len(statements) else None
        if current is not None and current.sha256 == recorded:
            continue
        where = f"{display_path(m.path)}:{current.line}" if current else display_path(m.path)
        now = f"it now reads: {snippet(current.text, 80)}" if current else "it is gone"
        raise MigrationRefused(
            f"{where}: statement {index} of this partly applied file has changed since it "
            f"ran ({now}); statements 1 to {row.statements_done} are applied as they read "
            f"then, and the run resumes at statement {row.statements_done + 1}. Restore "
            f"statements 1 to {row.statements_done} as they were (e.g. git checkout) and "
            f"edit only statement {row.statements_done + 1} onwards; put other changes "
            "in a new migration"
        )


def plan_down(found: list[Entry], *, to: Version | None = None) -> list[Step]:
    """The files ``down`` reverts, newest first: the latest one, or all above ``to``."""
    check_drift(found)
    partial = [e for e in found if e.state in ("failed", "interrupted")]
    if partial:
        names = ", ".join(_where(e) for e in partial)
        raise MigrationRefused(
            f"{names} is partly applied; finish it first (querykit migrate up, after "
            "querykit migrate repair if it failed), then run down"
        )
    applied = [e for e in found if e.state in ("applied", "baseline")]
    targets = applied[-1:] if to is None else [e for e in applied if e.version > to]
    floor = baseline_floor(found, to)
    if to is not None and floor is not None:
        targets = [e for e in targets if e.version > floor.version]
    targets.reverse()
    for e in targets:
        m = e.migration
        assert m is not None
        if e.state == "baseline":
            raise MigrationRefused(
                f"{_where(e)} was marked applied by querykit migrate baseline and never run by "
                "querykit; down stops at the baseline"
            )
        if m.down is None:
            raise MigrationRefused(
                f"{_where(e)} has no down part with statements (a '-- querykit:down' "
                "section, or the tool's down file: Flyway's U<version>__, diesel's down.sql, "
                "a .down.sql), so it cannot be reverted; add one, or write a new migration "
                "that undoes it"
            )
        problem = m.mixing_problem("down")
        if problem is not None:
            raise MigrationRefused(problem)
    return [Step(e.migration, "down") for e in targets if e.migration is not None]


def baseline_floor(found: list[Entry], to: Version | None) -> Entry | None:
    """The highest baseline entry above ``to``: ``down --to`` stops there, and says so."""
    if to is None:
        return None
    marked = [e for e in found if e.state == "baseline" and e.version > to]
    return marked[-1] if marked else None


def resolve_version(
    value: int | str | Version, versions: list[Version], *, what: str, allow_zero: bool = False
) -> Version:
    """A version given as ``3``, ``"0003"``, ``"0003_add_index.sql"``, ``"1.1"`` or Flyway's
    ``"V1.1__add_index.sql"``, checked against ``versions``."""
    text = str(value).strip()
    if text[:1] in "Vv" and text[1:2].isdigit():  # a Flyway name: V<version>__<description>
        digits = text[1:].split("__", 1)[0].removesuffix(".sql")
    else:
        digits = text.split("_", 1)[0].removesuffix(".sql")
    if not Version.is_version(digits):
        raise ConfigError(f"{what} {text!r} is not a version; give the number, e.g. 0003 or 1.1")
    version = Version.parse(digits)
    if version == 0 and allow_zero:
        return version
    if version not in versions:
        known = f"known versions go from {min(versions)} to {max(versions)}" if versions else "none"
        raise ConfigError(f"{what} {text}: no migration has version {version} ({known})")
    return version
