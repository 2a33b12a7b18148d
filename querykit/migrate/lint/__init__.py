"""``querykit migrate lint``: lock-safety rules on PostgreSQL's own parse tree, with a live probe.

Each statement of a migration file is checked in its file's context
(transactional or not, tables created earlier in the run, the runner's
``lock_timeout``). A finding names the rule, ``file:line:column``, the lock
and the tables it blocks, whether the table is rewritten or read in full, and
the safe way as SQL. With ``probe=True`` each transactional statement is
replayed on a clone of a shadow database inside ``BEGIN ... ROLLBACK`` and the
server's own answer confirms or corrects the prediction::

    >>> result = lint(load_settings(), all_files=True)
    >>> [(f.rule, f.where) for f in result.findings]
    [('create-index-not-concurrent', 'migrations/sql/0005_users_email.sql:1:1')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import MigrationRefused, QueryKitError
from ...execute.connect import connect, describe_target
from ...settings import Settings, load_settings
from ..files import Migration, display_path, load_migration
from ..layouts import read_directory
from ..ledger import Ledger, parse_table_name
from ..version import Version
from .catalog import read_catalog
from .engine import LARGE_TABLE_ROWS, StatementKey, lint_migrations, statement_effects
from .knowledge import Knowledge
from .locks import MODES, blocks
from .model import Effect, Finding, ProbeVerdict
from .probe import Observation, probe_statements
from .report import github, summary, text
from .rules import RULES, Rule

__all__ = [
    "LARGE_TABLE_ROWS",
    "MODES",
    "RULES",
    "Effect",
    "Finding",
    "LintResult",
    "Observation",
    "ProbeVerdict",
    "Rule",
    "blocks",
    "github",
    "lint",
    "lint_before_up",
    "probe_migration",
    "probe_statements",
    "statement_effects",
    "summary",
    "text",
]


@dataclass(frozen=True)
class LintResult:
    """The findings for the linted files, in file order."""

    files: tuple[str, ...]
    findings: tuple[Finding, ...]
    database: str | None
    """``host:port/db`` whose catalog was read (types, sizes, the ledger), else None."""
    probed: bool

    def of(self, level: str) -> list[Finding]:
        """The findings of one level: ``error``, ``warning`` or ``info``."""
        return [f for f in self.findings if f.level == level]

    @property
    def errors(self) -> list[Finding]:
        """The error-level findings (they fail ``--strict``)."""
        return self.of("error")

    def text(self) -> str:
        """The report as the CLI prints it, with a summary line."""
        return text(self.findings, len(self.files))

    def github(self) -> str:
        """The findings as GitHub Actions annotations."""
        return github(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "files": list(self.files),
            "database": self.database,
            "probed": self.probed,
            "counts": {level: len(self.of(level)) for level in ("error", "warning", "info")},
            "findings": [f.to_dict() for f in self.findings],
        }


def _discover(settings: Settings) -> list[Migration]:
    """The directory as ``up`` reads it: another tool's layout (Flyway, sqlx...) in place."""
    return read_directory(settings.migrations, settings.migrations_layout)


def lint(
    settings: Settings | None = None,
    files: Sequence[Path | str] = (),
    *,
    all_files: bool = False,
    database_url: str | None = None,
    probe: bool = False,
    migrations: Sequence[Migration] | None = None,
) -> LintResult:
    """Lint ``files``, or every file with ``all_files``, or else the pending ones.

    The database is ``database_url``, else the configured one; without one the
    lint is static and every file counts as pending (a fresh database).
    ``migrations`` is the directory already read (``migrate up`` then applies
    the same files); None reads it.
    """
    s = settings if settings is not None else load_settings()
    url = database_url or s.database_url
    # The directory as up reads it: another tool's layout (flyway, sqlx...) in place.
    directory = list(migrations) if migrations is not None else _discover(s)
    # Resolved only for files named on the command line (a stat per path component).
    by_path = {m.path.resolve(): m for m in directory} if files else {}
    extra: list[Migration] = []
    for given in files:
        path = Path(given).resolve()
        if path not in by_path:
            extra.append(load_migration(path))
    migrations = sorted([*directory, *extra], key=lambda m: (m.version, str(m.path)))
    base: Knowledge | None = None
    applied: set[Version] = set()
    if url is not None:
        with connect(url, autocommit=True) as conn:
            applied = set(Ledger(parse_table_name(s.migrations_table)).rows(conn))
            targets = _targets(migrations, files, all_files, applied)
            if targets:  # an up-to-date database has nothing to lint: no catalog to read
                base = read_catalog(conn)
    else:
        targets = _targets(migrations, files, all_files, applied)
    observations = probe_migration(s, migrations, targets) if probe and targets else None
    findings = lint_migrations(
        migrations,
        targets={str(m.path) for m in targets},
        applied=applied,
        base=base,
        levels=s.lint.levels,
        lock_timeout=s.lock_timeout,
        observations=observations,
    )
    return LintResult(
        tuple(display_path(m.path) for m in targets),
        tuple(findings),
        describe_target(url) if url else None,
        probe,
    )


def _targets(
    migrations: list[Migration], files: Sequence[Path | str], all_files: bool, applied: set[Version]
) -> list[Migration]:
    """The files given, or all of them, or else the pending ones."""
    if files:
        wanted = {Path(f).resolve() for f in files}
        return [m for m in migrations if m.path.resolve() in wanted]
    if all_files:
        return list(migrations)
    return [m for m in migrations if m.version not in applied]


def probe_migration(
    settings: Settings, migrations: Sequence[Migration], targets: Sequence[Migration]
) -> dict[StatementKey, Observation]:
    """Observe every up statement of ``targets`` on a clone of a shadow database.

    The shadow gets the files before the first target from querykit's own
    runner. On one clone of it, the files from the first target on then run in
    order, statement by statement: targets observed, the files between them
    applied as they are. A failure stops the probe; later files are not observed.
    """
    from ..shadow import Shadow

    ordered = sorted(targets, key=lambda m: m.version)
    wanted = {m.path for m in ordered}
    directory = _discover(settings)
    earlier = [m.version for m in directory if m.version < ordered[0].version]
    between = [
        m
        for m in directory
        if ordered[0].version < m.version < ordered[-1].version and m.path not in wanted
    ]
    out: dict[StatementKey, Observation] = {}
    failed: str | None = None
    with Shadow(settings) as shadow:
        shadow.apply_through(earlier[-1] if earlier else None)
        with shadow.clone() as url:
            for m in sorted([*ordered, *between], key=lambda m: m.version):
                observe = m.path in wanted
                if failed is not None:
                    seen = [Observation(s.text, None, failed) for s in m.up]
                else:
                    seen = probe_statements(
                        url, [(s.text, observe and s.no_transaction is None) for s in m.up]
                    )
                    errors = [o.error for o in seen if o.error]
                    if errors:
                        failed = (
                            f"not run: {display_path(m.path)} failed in the probe ({errors[0]})"
                        )
                if observe:
                    for statement, observation in zip(m.up, seen, strict=True):
                        out[(str(m.path), "up", statement.index)] = observation
    return out


def lint_before_up(
    settings: Settings,
    database_url: str,
    *,
    strict: bool,
    report: Callable[[str], None],
    migrations: Sequence[Migration] | None = None,
) -> LintResult | None:
    """What ``migrate up`` runs first: lint the pending files, print findings, refuse in strict mode.

    Returns None when the lint is off (``lint = "off"``). ``migrations``: the
    directory as ``up`` will apply it, already read (None reads it).
    """
    mode = "strict" if strict else settings.lint.mode
    if mode == "off":
        return None
    try:
        result = lint(settings, database_url=database_url, migrations=migrations)
    except QueryKitError:
        raise  # a bad file, setting or connection: up would stop on it too
    except Exception as exc:  # a linter bug must not block a deploy that does not ask for it
        if mode == "strict":
            raise
        report(f"lint skipped: unexpected {type(exc).__name__}: {exc} (please report it)")
        return None
    if result.findings:
        report(result.text().rstrip("\n"))
    if mode == "strict" and result.errors:
        names = sorted({f.path for f in result.errors})
        raise MigrationRefused(
            f"lint found {len(result.errors)} error-level finding(s) in {', '.join(names)} and "
            "lint is strict, so nothing was applied; fix them (the safe way is printed above), "
            "silence one with '-- querykit:lint-ignore RULE reason', or lower its level in "
            "[tool.querykit.lint]"
        )
    return result
