"""The lint corpus against the live probe and against squawk.

Ground truth: what the server did for each corpus statement on a seeded clone
(5,000 rows a table), recorded in ``lint_corpus_truth.json`` and re-observed
here. querykit's static prediction must equal it for every transactional
statement; squawk's hazard findings must be matched by querykit, or be listed
below as false positives with the probe's evidence.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from corpus_db import case_migration, effect_dict, probe_case, seeded_template
from lint_corpus import CASES, TRUTH, Case

from querykit.migrate.lint.engine import lint_migrations, statement_effects
from querykit.migrate.lint.knowledge import Knowledge
from querykit.migrate.lint.model import Effect
from querykit.migrate.lint.probe import Observation

pytestmark = pytest.mark.slow  # about 30 s: 65 clones of a seeded database

Probed = dict[str, tuple[list[dict[str, Any]], Knowledge]]


@pytest.fixture(scope="module")
def probed(pg_server_url: str) -> Iterator[Probed]:
    with seeded_template(pg_server_url) as template:
        yield {c.id: probe_case(pg_server_url, template, c) for c in CASES}


def test_corpus_covers_every_rule_and_enough_statements() -> None:
    from querykit.migrate.lint import RULES

    statements = sum(len(case_migration(c).up) for c in CASES)
    assert statements >= 40
    fired = set().union(*(c.expect for c in CASES))
    # drop-database cannot run in a transaction; probe-rewrite needs the probe (test_migrate_lint.py)
    untested = {r.id for r in RULES} - fired - {"drop-database", "probe-rewrite"}
    assert not untested, f"rules without a corpus case: {untested}"


def test_live_probe_reproduces_the_recorded_ground_truth(probed: Probed) -> None:
    truth = json.loads(TRUTH.read_text())
    assert set(truth) == {c.id for c in CASES}, (
        "re-record: python tests/migrate/lint_corpus.py --record"
    )
    for c in CASES:
        assert probed[c.id][0] == truth[c.id], c.id


def test_static_prediction_matches_the_probe_on_every_transactional_statement(
    probed: Probed,
) -> None:
    truth = json.loads(TRUTH.read_text())
    compared = matched = 0
    misses = []
    for c in CASES:
        m = case_migration(c)
        predicted = statement_effects([m], base=probed[c.id][1])
        for statement, seen in zip(m.up, truth[c.id], strict=True):
            if statement.no_transaction is not None:
                assert seen["observed"] is None  # CONCURRENTLY: judged statically
                continue
            if seen["error"] is not None:  # the server refused it: the error is the truth
                assert c.id == "add-column-required" and seen["error"].startswith("23502")
                continue
            compared += 1
            mine = effect_dict(predicted[(str(m.path), "up", statement.index)])
            if mine == seen["observed"]:
                matched += 1
            else:
                misses.append((c.id, statement.text, mine, seen["observed"]))
    assert compared >= 40
    assert not misses, misses
    assert matched == compared


def _findings(c: Case, know: Knowledge, observations: dict[Any, Observation] | None = None) -> Any:
    m = case_migration(c)
    return lint_migrations([m], targets={str(m.path)}, base=know, observations=observations)


def test_each_case_fires_exactly_its_rules(probed: Probed) -> None:
    for c in CASES:
        got = {f.rule for f in _findings(c, probed[c.id][1])}
        assert got == set(c.expect), c.id


def test_probe_confirms_findings_and_corrects_a_wrong_guess(probed: Probed) -> None:
    def observations(c: Case) -> dict[Any, Observation]:
        m = case_migration(c)
        out = {}
        for statement, seen in zip(m.up, probed[c.id][0], strict=True):
            o = seen["observed"]
            effect = Effect.of(o["locks"], rewrite=o["rewrite"], scan=o["scan"]) if o else None
            out[(str(m.path), "up", statement.index)] = Observation(
                statement.text, effect, seen["error"]
            )
        return out

    by_id = {c.id: c for c in CASES}
    confirmed = _findings(
        by_id["int-to-bigint"], probed["int-to-bigint"][1], observations(by_id["int-to-bigint"])
    )
    assert [(f.rule, f.probe and f.probe.note) for f in confirmed] == [
        ("column-type-rewrite", "confirmed")
    ]
    # Without the catalog the old type is unknown, so the static guess is "rewrite";
    # the probe sees the relfilenode kept and corrects it.
    c = by_id["numeric-widen-same-scale"]
    corrected = _findings(c, Knowledge(), observations(c))
    assert len(corrected) == 1
    f = corrected[0]
    assert f.rule == "column-type-rewrite" and f.level == "info"
    assert f.probe is not None and not f.probe.confirmed
    assert f.probe.note.startswith("corrected: the probe saw rewrite none")
    assert f.effect.rewrite == ()


# -- squawk as an oracle -----------------------------------------------------------------

# squawk rule → the querykit rules that cover the same hazard.
SQUAWK_MATCHES = {
    "require-concurrent-index-creation": {"create-index-not-concurrent"},
    "require-concurrent-index-deletion": {"drop-index-not-concurrent"},
    "require-concurrent-reindex": {"reindex-not-concurrent"},
    "adding-foreign-key-constraint": {"constraint-not-valid"},
    "constraint-missing-not-valid": {
        "constraint-not-valid",
        "validate-same-transaction",
        "unique-without-index",
    },
    "adding-not-nullable-field": {"set-not-null-unproven"},
    "changing-column-type": {"column-type-rewrite"},
    "adding-field-with-default": {"add-column-rewrite"},
    "adding-required-field": {"not-null-without-default"},
    "disallowed-unique-constraint": {"unique-without-index"},
    "adding-serial-primary-key-field": {"unique-without-index"},
    "renaming-column": {"rename-column"},
    "renaming-table": {"rename-table"},
    "renaming-object": {"enum-label-removed"},
    "ban-drop-column": {"drop-column"},
    "ban-drop-table": {"drop-table"},
    "ban-drop-not-null": {"drop-not-null"},
    "ban-truncate-cascade": {"truncate-cascade"},
    "ban-alter-domain-with-add-constraint": {"domain-add-constraint"},
    "prefer-identity": {"prefer-identity"},
    "ban-char-field": {"prefer-text"},
    "prefer-timestamp-tz": {"prefer-timestamptz"},
    "require-concurrent-partition-detach": {"detach-partition-not-concurrent"},
}
# Not lock or outage hazards under querykit's runner (why, for each).
SQUAWK_NOT_HAZARDS = {
    "require-lock-timeout": "querykit's runner runs SET LOCAL lock_timeout at the start of every file",
    "require-statement-timeout": "a cap on statement time aborts long, legitimate migrations; lock waits are capped by lock_timeout",
    "prefer-robust-stmts": "idempotency: the runner records progress and drops INVALID leftovers before a retry",
    "prefer-bigint-over-int": "column width style, not a lock hazard (int primary keys are prefer-bigint-pk)",
    "prefer-text-field": "varchar(n) is a style choice, not a lock hazard",
    "require-enum-value-ordering": "where a new label sorts is a design choice, not a lock hazard",
}


def _no_rewrite_or_scan(i: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: seen[i]["observed"]["rewrite"] == [] and seen[i]["observed"]["scan"] == []


# (case, squawk rule) → the probe's evidence that it is a false positive.
SQUAWK_FALSE_POSITIVES: dict[
    tuple[str, str], tuple[str, Callable[[list[dict[str, Any]]], bool]]
] = {
    ("numeric-widen-same-scale", "changing-column-type"): (
        "relfilenode kept, no scan",
        _no_rewrite_or_scan(0),
    ),
    ("numeric-unconstrained", "changing-column-type"): (
        "relfilenode kept, no scan",
        _no_rewrite_or_scan(0),
    ),
    ("varchar-widen", "changing-column-type"): (
        "relfilenode kept, no scan",
        _no_rewrite_or_scan(0),
    ),
    ("varchar-to-text", "changing-column-type"): (
        "relfilenode kept, no scan",
        _no_rewrite_or_scan(0),
    ),
    ("timestamp-to-timestamptz-utc", "changing-column-type"): (
        "TimeZone UTC: relfilenode kept",
        _no_rewrite_or_scan(0),
    ),
    ("cidr-to-inet", "changing-column-type"): ("relfilenode kept, no scan", _no_rewrite_or_scan(0)),
    ("add-column-references", "adding-foreign-key-constraint"): (
        "a new column is all NULL: no scan of either table, the locks last an instant",
        _no_rewrite_or_scan(0),
    ),
    ("set-not-null-proven", "adding-not-nullable-field"): (
        "the validated CHECK (n IS NOT NULL) proves it: no scan",
        _no_rewrite_or_scan(0),
    ),
    ("set-not-null-proven", "ban-drop-constraint"): (
        "dropping the helper CHECK once NOT NULL holds: no scan, no rewrite",
        _no_rewrite_or_scan(1),
    ),
    ("new-table-is-exempt", "adding-not-nullable-field"): (
        "the table was created by this file: the lock is on the new, empty table only",
        lambda seen: set(seen[3]["observed"]["locks"]) == {"fresh"},
    ),
}


def _squawk() -> str:
    found = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")
    if found is None:
        pytest.fail("squawk is missing: make venv installs squawk-cli (the dev extra)")
    return found


def test_squawk_hazards_are_matched_or_proven_false(probed: Probed, tmp_path: Path) -> None:
    version = subprocess.run([_squawk(), "--version"], capture_output=True, text=True).stdout
    assert version.split()[-1] == "2.70.0"
    unexplained = []
    matched = false_positives = 0
    for c in CASES:
        m = case_migration(c)
        path = tmp_path / f"{c.id}.sql"
        path.write_text(c.sql)
        args = [_squawk(), "--reporter", "json", "--pg-version", "18.0", str(path)]
        if m.up_transactional:
            args.insert(1, "--assume-in-transaction")
        run = subprocess.run(args, capture_output=True, text=True, timeout=60)
        squawk_rules = {f["rule_name"] for f in json.loads(run.stdout or "[]")}
        mine = {f.rule for f in _findings(c, probed[c.id][1])}
        for rule in sorted(squawk_rules - set(SQUAWK_NOT_HAZARDS)):
            if (c.id, rule) in SQUAWK_FALSE_POSITIVES:
                why, evidence = SQUAWK_FALSE_POSITIVES[(c.id, rule)]
                assert evidence(probed[c.id][0]), f"{c.id}: the probe no longer shows: {why}"
                assert not (mine & SQUAWK_MATCHES.get(rule, set())), c.id
                false_positives += 1
            elif mine & SQUAWK_MATCHES.get(rule, set()):
                matched += 1
            else:
                unexplained.append((c.id, rule, sorted(mine)))
    print(
        f"squawk hazard findings: {matched} matched by querykit, {false_positives} false positives"
    )
    assert not unexplained
    assert matched >= 30 and false_positives == len(SQUAWK_FALSE_POSITIVES)
