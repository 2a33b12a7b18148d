"""The lint corpus: migration files whose ground truth was recorded by the live probe.

Each case is a small migration file run against a clone of ``SEED`` (5,000 rows
per table). ``expect`` lists the querykit rules that must fire. The probe's
observations are kept in ``lint_corpus_truth.json``; record them again with::

    .venv/bin/python tests/migrate/lint_corpus.py --record

The squawk examples (``squawk=True``) restate, on these tables, the situation
each squawk rule page describes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

TRUTH = Path(__file__).with_name("lint_corpus_truth.json")
ROWS = 5000

SEED = f"""
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE owner (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE account (
    id bigint PRIMARY KEY, owner_id bigint, name text, code varchar(100), title varchar(50),
    balance numeric(12,6), cost numeric(12,6), amount numeric(10,2), created timestamp,
    n int, flag boolean, doc json, state mood, addr cidr
);
CREATE INDEX account_owner_idx ON account (owner_id);
CREATE TABLE event (id int PRIMARY KEY, account_id bigint, payload jsonb);
CREATE TABLE tag (id bigint NOT NULL, label text);
CREATE DOMAIN positive AS int;
INSERT INTO owner SELECT g, 'owner ' || g FROM generate_series(1, {ROWS}) g;
INSERT INTO account SELECT g, g, 'name ' || g, 'c' || g, 't' || g, g, g / 7.0, g, now(), g, true,
    '{{}}', 'ok', '10.0.0.0/8' FROM generate_series(1, {ROWS}) g;
INSERT INTO event SELECT g, g, '{{}}' FROM generate_series(1, {ROWS}) g;
INSERT INTO tag SELECT g, 'tag ' || g FROM generate_series(1, {ROWS}) g;
ANALYZE;
"""


@dataclass(frozen=True)
class Case:
    id: str
    sql: str
    expect: frozenset[str] = frozenset()
    setup: str = ""
    squawk: bool = False


def case(case_id: str, sql: str, *expect: str, setup: str = "", squawk: bool = False) -> Case:
    return Case(case_id, sql.strip() + "\n", frozenset(expect), setup, squawk)


_FK_NOT_VALID = (
    "ALTER TABLE account ADD CONSTRAINT account_owner_fk FOREIGN KEY (owner_id) "
    "REFERENCES owner (id) NOT VALID;"
)
_CHECK_NOT_VALID = (
    "ALTER TABLE account ADD CONSTRAINT account_balance_pos CHECK (balance >= 0) NOT VALID;"
)

_PARTITIONS = (
    "CREATE TABLE measure (id bigint, at date NOT NULL) PARTITION BY RANGE (at);\n"
    "CREATE TABLE measure_2024 PARTITION OF measure FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n"
    "INSERT INTO measure SELECT g, date '2024-01-01' + g % 365 FROM generate_series(1, 5000) g;"
)

CASES: tuple[Case, ...] = (
    # 1. indexes
    case(
        "create-index",
        "CREATE INDEX account_name_idx ON account (name);",
        "create-index-not-concurrent",
        squawk=True,
    ),
    case(
        "create-index-concurrently", "CREATE INDEX CONCURRENTLY account_name_idx ON account (name);"
    ),
    case(
        "create-unique-index",
        "CREATE UNIQUE INDEX account_code_key ON account (code);",
        "create-index-not-concurrent",
    ),
    case("drop-index", "DROP INDEX account_owner_idx;", "drop-index-not-concurrent", squawk=True),
    case("drop-index-concurrently", "DROP INDEX CONCURRENTLY account_owner_idx;"),
    case("reindex-table", "REINDEX TABLE account;", "reindex-not-concurrent", squawk=True),
    case("reindex-index", "REINDEX INDEX account_owner_idx;", "reindex-not-concurrent"),
    case("reindex-concurrently", "REINDEX INDEX CONCURRENTLY account_owner_idx;"),
    # 2. constraints
    case(
        "add-foreign-key",
        _FK_NOT_VALID.replace(" NOT VALID", ""),
        "constraint-not-valid",
        squawk=True,
    ),
    case("add-foreign-key-not-valid", _FK_NOT_VALID),
    case(
        "foreign-key-validate-same-transaction",
        _FK_NOT_VALID + "\nALTER TABLE account VALIDATE CONSTRAINT account_owner_fk;",
        "validate-same-transaction",
        squawk=True,
    ),
    case(
        "validate-foreign-key",
        "ALTER TABLE account VALIDATE CONSTRAINT account_owner_fk;",
        setup=_FK_NOT_VALID,
    ),
    case(
        "add-check", _CHECK_NOT_VALID.replace(" NOT VALID", ""), "constraint-not-valid", squawk=True
    ),
    case("add-check-not-valid", _CHECK_NOT_VALID),
    case(
        "check-validate-same-transaction",
        _CHECK_NOT_VALID + "\nALTER TABLE account VALIDATE CONSTRAINT account_balance_pos;",
        "validate-same-transaction",
    ),
    case(
        "validate-check",
        "ALTER TABLE account VALIDATE CONSTRAINT account_balance_pos;",
        setup=_CHECK_NOT_VALID,
    ),
    # 3. SET NOT NULL
    case(
        "set-not-null",
        "ALTER TABLE account ALTER COLUMN n SET NOT NULL;",
        "set-not-null-unproven",
        squawk=True,
    ),
    case(
        "set-not-null-proven",
        "ALTER TABLE account ALTER COLUMN n SET NOT NULL;\nALTER TABLE account DROP CONSTRAINT account_n_not_null;",
        setup="ALTER TABLE account ADD CONSTRAINT account_n_not_null CHECK (n IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE account VALIDATE CONSTRAINT account_n_not_null;",
        squawk=True,
    ),
    # 4. ALTER COLUMN TYPE: the safe-change table
    case(
        "numeric-widen-same-scale",
        "ALTER TABLE account ALTER COLUMN cost TYPE numeric(14,6);",
        squawk=True,
    ),
    case(
        "numeric-scale-change",
        "ALTER TABLE account ALTER COLUMN cost TYPE numeric(14,4);",
        "column-type-rewrite",
    ),
    case("numeric-unconstrained", "ALTER TABLE account ALTER COLUMN cost TYPE numeric;"),
    case(
        "numeric-narrow",
        "ALTER TABLE account ALTER COLUMN amount TYPE numeric(8,2);",
        "column-type-rewrite",
    ),
    case(
        "text-to-varchar",
        "ALTER TABLE account ALTER COLUMN name TYPE varchar(200);",
        "column-type-rewrite",
        squawk=True,
    ),
    case("varchar-widen", "ALTER TABLE account ALTER COLUMN code TYPE varchar(200);"),
    case("varchar-to-text", "ALTER TABLE account ALTER COLUMN code TYPE text;", squawk=True),
    case(
        "varchar-narrow",
        "ALTER TABLE account ALTER COLUMN title TYPE varchar(20);",
        "column-type-rewrite",
    ),
    case(
        "int-to-bigint",
        "ALTER TABLE account ALTER COLUMN n TYPE bigint;",
        "column-type-rewrite",
        squawk=True,
    ),
    case(
        "timestamp-to-timestamptz-utc", "ALTER TABLE account ALTER COLUMN created TYPE timestamptz;"
    ),
    case(
        "timestamp-to-timestamptz-not-utc",
        "SET timezone = 'America/New_York';\nALTER TABLE account ALTER COLUMN created TYPE timestamptz;",
        "column-type-rewrite",
    ),
    case("cidr-to-inet", "ALTER TABLE account ALTER COLUMN addr TYPE inet;"),
    case(
        "type-using",
        "ALTER TABLE account ALTER COLUMN name TYPE int USING length(name);",
        "column-type-rewrite",
    ),
    # 5. ADD COLUMN defaults
    case(
        "add-column-volatile-uuid",
        "ALTER TABLE account ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        "add-column-rewrite",
        squawk=True,
    ),
    case(
        "add-column-volatile-random",
        "ALTER TABLE account ADD COLUMN score float8 DEFAULT random();",
        "add-column-rewrite",
    ),
    case(
        "add-column-stable-default",
        "ALTER TABLE account ADD COLUMN updated timestamptz DEFAULT now();",
    ),
    case(
        "add-column-constant-default",
        "ALTER TABLE account ADD COLUMN retries bigint NOT NULL DEFAULT 10;",
        squawk=True,
    ),
    case("add-column-nullable", "ALTER TABLE account ADD COLUMN nickname text;"),
    case(
        "add-column-serial",
        "ALTER TABLE account ADD COLUMN seq bigserial;",
        "add-column-rewrite",
        "prefer-identity",
        squawk=True,
    ),
    case(
        "add-column-identity",
        "ALTER TABLE account ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;",
        "add-column-rewrite",
    ),
    case(
        "add-column-stored",
        "ALTER TABLE account ADD COLUMN n2 bigint GENERATED ALWAYS AS (n * 2) STORED;",
        "add-column-rewrite",
        squawk=True,
    ),
    case(
        "add-column-references",
        "ALTER TABLE account ADD COLUMN owner2_id bigint REFERENCES owner (id);",
        squawk=True,
    ),
    # 9. NOT NULL without default
    case(
        "add-column-required",
        "ALTER TABLE account ADD COLUMN required boolean NOT NULL;",
        "not-null-without-default",
        squawk=True,
    ),
    # 6. UNIQUE / PRIMARY KEY
    case(
        "add-unique",
        "ALTER TABLE account ADD CONSTRAINT account_code_key UNIQUE (code);",
        "unique-without-index",
        squawk=True,
    ),
    case(
        "add-unique-using-index",
        "ALTER TABLE account ADD CONSTRAINT account_code_key UNIQUE USING INDEX account_code_key;",
        setup="CREATE UNIQUE INDEX CONCURRENTLY account_code_key ON account (code);",
        squawk=True,
    ),
    case(
        "add-primary-key",
        "ALTER TABLE tag ADD PRIMARY KEY (id);",
        "unique-without-index",
        squawk=True,
    ),
    case(
        "add-primary-key-using-index",
        "ALTER TABLE tag ADD CONSTRAINT tag_pkey PRIMARY KEY USING INDEX tag_id_key;",
        setup="CREATE UNIQUE INDEX CONCURRENTLY tag_id_key ON tag (id);",
    ),
    case(
        "add-column-unique",
        "ALTER TABLE account ADD COLUMN ext_id bigint UNIQUE;",
        "unique-without-index",
        squawk=True,
    ),
    # 7. renames and drops
    case(
        "rename-column",
        "ALTER TABLE account RENAME COLUMN name TO full_name;",
        "rename-column",
        squawk=True,
    ),
    case("rename-table", "ALTER TABLE event RENAME TO audit_event;", "rename-table", squawk=True),
    case("drop-column", "ALTER TABLE account DROP COLUMN doc;", "drop-column", squawk=True),
    case("drop-table", "DROP TABLE event;", "drop-table", squawk=True),
    case(
        "drop-not-null",
        "ALTER TABLE owner ALTER COLUMN name DROP NOT NULL;",
        "drop-not-null",
        squawk=True,
    ),
    # 8. enums
    case(
        "enum-add-value-then-use",
        "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE account SET state = 'meh';",
        "enum-value-used-same-transaction",
    ),
    case("enum-add-value-placed", "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';", squawk=True),
    case(
        "enum-recreate-reordered",
        "CREATE TYPE mood_v2 AS ENUM ('happy', 'ok', 'sad');",
        "enum-label-removed",
    ),
    case("enum-rename-value", "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';", "enum-label-removed"),
    # 10. types (info)
    case(
        "create-table-types",
        "CREATE TABLE note (id serial PRIMARY KEY, body json, at timestamp, country char(2));",
        "prefer-jsonb",
        "prefer-timestamptz",
        "prefer-bigint-pk",
        "prefer-identity",
        "prefer-text",
        squawk=True,
    ),
    case(
        "create-table-references",
        "CREATE TABLE membership (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    owner_id bigint REFERENCES owner (id));",
    ),
    case(
        "new-table-is-exempt",
        "CREATE TABLE fresh (id bigint PRIMARY KEY, v text);\n"
        "CREATE INDEX fresh_v_idx ON fresh (v);\n"
        "ALTER TABLE fresh ADD CONSTRAINT fresh_v_check CHECK (v <> '');\n"
        "ALTER TABLE fresh ALTER COLUMN v SET NOT NULL;",
        squawk=True,
    ),
    # 11. more
    case("lock-timeout-off", "SET lock_timeout = 0;", "lock-timeout-disabled"),
    case("truncate-cascade", "TRUNCATE event CASCADE;", "truncate-cascade", squawk=True),
    case("set-default", "ALTER TABLE account ALTER COLUMN n SET DEFAULT 0;"),
    case("backfill", "UPDATE account SET flag = false;"),
    case(
        "detach-partition",
        "ALTER TABLE measure DETACH PARTITION measure_2024;",
        "detach-partition-not-concurrent",
        setup=_PARTITIONS,
        squawk=True,
    ),
    case(
        "detach-partition-concurrently",
        "ALTER TABLE measure DETACH PARTITION measure_2024 CONCURRENTLY;",
        setup=_PARTITIONS,
    ),
    case(
        "domain-add-constraint",
        "ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0);",
        "domain-add-constraint",
        squawk=True,
    ),
)


def record(admin_url: str) -> dict[str, list[dict[str, object]]]:
    """Probe every case on a clone of the seeded database; the JSON this module keeps."""
    from corpus_db import probe_case, seeded_template

    with seeded_template(admin_url) as template:
        return {c.id: [o for o in probe_case(admin_url, template, c)[0]] for c in CASES}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.insert(0, str(Path(__file__).parents[2]))
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/migrate/lint_corpus.py --record")
    import shutil
    import tempfile

    from querykit.embedded import EmbeddedServer

    tmp = Path(tempfile.mkdtemp())
    server = EmbeddedServer(tmp / "pgdata")
    url = server.start().url
    assert url is not None
    try:
        TRUTH.write_text(json.dumps(record(url), indent=1, sort_keys=True) + "\n")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"recorded {len(CASES)} cases in {TRUTH}")
