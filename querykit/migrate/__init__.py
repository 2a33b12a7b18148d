"""SQL-file migrations: ordered, checksummed, locked, transactional, resumable.

Files ``<version>_name.sql`` in the ``migrations`` directory (or another tool's
layout, read in place: see :mod:`.layouts`) apply in version order, each in its own transaction together with its
ledger row, under an advisory lock. Every function here is what one
``querykit migrate`` command runs::

    >>> from querykit import load_settings, migrate
    >>> settings = load_settings(database_url="postgresql://app@localhost/app")
    >>> migrate.new("create users", settings).name
    '0001_create_users.sql'
    >>> [d.filename for d in migrate.up(settings).done]
    ['0001_create_users.sql']
    >>> migrate.status(settings).counts()["applied"]
    1
"""

from .adopt import AdoptResult, adopt
from .files import (
    DOWN_MARKER,
    NO_TRANSACTION_MARKER,
    Migration,
    Scheme,
    Statement,
    discover,
    load_migration,
)
from .layouts import LAYOUTS, Layout
from .ledger import LedgerRow
from .lock import POOLER_ADVICE, check_same_backend
from .plan import Entry, State, Step
from .runner import (
    DEFAULT_LOCK_WAIT,
    BaselineResult,
    Done,
    Progress,
    RepairResult,
    RunResult,
    Status,
    baseline,
    down,
    new,
    read_migrations,
    repair,
    status,
    up,
    verify,
)
from .version import Version

__all__ = [
    "DEFAULT_LOCK_WAIT",
    "DOWN_MARKER",
    "LAYOUTS",
    "NO_TRANSACTION_MARKER",
    "POOLER_ADVICE",
    "AdoptResult",
    "BaselineResult",
    "Done",
    "Entry",
    "Layout",
    "LedgerRow",
    "Migration",
    "Progress",
    "RepairResult",
    "RunResult",
    "Scheme",
    "State",
    "Statement",
    "Status",
    "Step",
    "Version",
    "adopt",
    "baseline",
    "check_same_backend",
    "discover",
    "down",
    "load_migration",
    "new",
    "read_migrations",
    "repair",
    "status",
    "up",
    "verify",
]
