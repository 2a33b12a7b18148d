"""The drift corpus: changes injected into clones of the migrated example database.

Each case: ``setup`` runs on both sides (a starting point the example lacks,
e.g. a halfvec column), ``change`` on the drifted side only, and ``expected`` is
every difference querykit must report, as ``(action, kind, name)`` keys, with
the migrated example as the current side and the drifted clone as the target.
An empty ``expected`` is a change that is not drift (normalised away).
``destructive``: the draft must leave something commented out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    change: str
    expected: frozenset[tuple[str, str, str]]
    setup: str = ""
    destructive: bool = False


def _keys(*keys: str) -> frozenset[tuple[str, str, str]]:
    return frozenset(tuple(k.split(" ")) for k in keys)  # type: ignore[misc]


_RECREATE_STATUS = """
ALTER TABLE pipeline_run ALTER COLUMN status DROP DEFAULT;
ALTER TABLE pipeline_step ALTER COLUMN status DROP DEFAULT;
ALTER TYPE status RENAME TO status_old;
CREATE TYPE status AS ENUM ({labels});
ALTER TABLE pipeline_run ALTER COLUMN status TYPE status USING status::text::status;
ALTER TABLE pipeline_step ALTER COLUMN status TYPE status USING status::text::status;
ALTER TABLE pipeline_run ALTER COLUMN status SET DEFAULT 'PENDING';
ALTER TABLE pipeline_step ALTER COLUMN status SET DEFAULT 'PENDING';
DROP TYPE status_old;
"""

CASES: tuple[Case, ...] = (
    Case("column-added", "ALTER TABLE pipeline_run ADD COLUMN note text",
         _keys("added column pipeline_run.note")),
    Case("column-added-not-null-default",
         "ALTER TABLE pipeline_step ADD COLUMN retries integer NOT NULL DEFAULT 0",
         _keys("added column pipeline_step.retries")),
    Case("column-added-not-null-no-default",
         "ALTER TABLE content_item ADD COLUMN title text NOT NULL",
         _keys("added column content_item.title"), destructive=True),
    Case("column-dropped", "ALTER TABLE pipeline_step DROP COLUMN model",
         _keys("removed column pipeline_step.model"), destructive=True),
    Case("probable-rename", "ALTER TABLE pipeline_step RENAME COLUMN model TO model_name",
         _keys("removed column pipeline_step.model", "added column pipeline_step.model_name"),
         destructive=True),
    Case("nullable-flipped-to-null", "ALTER TABLE pipeline_run ALTER COLUMN name DROP NOT NULL",
         _keys("changed column pipeline_run.name")),
    Case("nullable-flipped-to-not-null", "ALTER TABLE pipeline_step ALTER COLUMN model SET NOT NULL",
         _keys("changed column pipeline_step.model")),
    Case("default-changed", "ALTER TABLE pipeline_step ALTER COLUMN tokens SET DEFAULT 1",
         _keys("changed column pipeline_step.tokens")),
    Case("default-dropped", "ALTER TABLE embedding ALTER COLUMN metadata DROP DEFAULT",
         _keys("changed column embedding.metadata")),
    Case("default-same-value-other-text",
         "ALTER TABLE pipeline_run ALTER COLUMN cost SET DEFAULT '0.000'", _keys()),
    Case("numeric-widened", "ALTER TABLE pipeline_run ALTER COLUMN cost TYPE numeric(14,6)",
         _keys("changed column pipeline_run.cost")),
    Case("numeric-scale-changed", "ALTER TABLE pipeline_run ALTER COLUMN cost TYPE numeric(12,4)",
         _keys("changed column pipeline_run.cost"), destructive=True),
    Case("jsonb-to-json", "ALTER TABLE content_item ALTER COLUMN metadata TYPE json",
         _keys("changed column content_item.metadata"), destructive=True),
    Case("integer-to-bigint", "ALTER TABLE pipeline_step ALTER COLUMN tokens TYPE bigint",
         _keys("changed column pipeline_step.tokens"), destructive=True),
    Case("vector-dimension", "ALTER TABLE embedding ALTER COLUMN embedding TYPE vector(768)",
         _keys("changed column embedding.embedding"), destructive=True),
    Case("halfvec-dimension", "ALTER TABLE embedding ALTER COLUMN small TYPE halfvec(16)",
         _keys("changed column embedding.small"),
         setup="ALTER TABLE embedding ADD COLUMN small halfvec(8)", destructive=True),
    Case("enum-label-added", "ALTER TYPE status ADD VALUE 'CANCELLED'",
         _keys("changed enum status")),
    Case("enum-label-added-first", "ALTER TYPE status ADD VALUE 'QUEUED' BEFORE 'PENDING'",
         _keys("changed enum status")),
    Case("enum-label-removed",
         _RECREATE_STATUS.format(labels="'PENDING', 'RUNNING', 'COMPLETED'"),
         _keys("changed enum status"), destructive=True),
    Case("enum-labels-reordered",
         _RECREATE_STATUS.format(labels="'RUNNING', 'PENDING', 'COMPLETED', 'FAILED'"),
         _keys("changed enum status"), destructive=True),
    Case("enum-added", "CREATE TYPE priority AS ENUM ('low', 'high')", _keys("added enum priority")),
    Case("check-added",
         "ALTER TABLE pipeline_step ADD CONSTRAINT pipeline_step_tokens_check CHECK (tokens >= 0)",
         _keys("added constraint pipeline_step.pipeline_step_tokens_check")),
    Case("check-changed",
         "ALTER TABLE pipeline_step DROP CONSTRAINT pipeline_step_tokens_check;"
         "ALTER TABLE pipeline_step ADD CONSTRAINT pipeline_step_tokens_check CHECK (tokens > 0)",
         _keys("changed constraint pipeline_step.pipeline_step_tokens_check"),
         setup="ALTER TABLE pipeline_step ADD CONSTRAINT pipeline_step_tokens_check "
         "CHECK (tokens >= 0)"),
    Case("check-dropped", "ALTER TABLE pipeline_step DROP CONSTRAINT pipeline_step_tokens_check",
         _keys("removed constraint pipeline_step.pipeline_step_tokens_check"),
         setup="ALTER TABLE pipeline_step ADD CONSTRAINT pipeline_step_tokens_check "
         "CHECK (tokens >= 0)", destructive=True),
    Case("unique-added", "ALTER TABLE pipeline_run ADD CONSTRAINT pipeline_run_name_key UNIQUE (name)",
         _keys("added constraint pipeline_run.pipeline_run_name_key")),
    Case("fk-on-delete-changed",
         "ALTER TABLE pipeline_step DROP CONSTRAINT pipeline_step_run_id_fkey;"
         "ALTER TABLE pipeline_step ADD CONSTRAINT pipeline_step_run_id_fkey FOREIGN KEY (run_id) "
         "REFERENCES pipeline_run (id) ON DELETE RESTRICT",
         _keys("changed constraint pipeline_step.pipeline_step_run_id_fkey")),
    Case("fk-added",
         "ALTER TABLE pipeline_run ADD COLUMN parent_id text "
         "CONSTRAINT pipeline_run_parent_id_fkey REFERENCES pipeline_run (id)",
         _keys("added column pipeline_run.parent_id",
               "added constraint pipeline_run.pipeline_run_parent_id_fkey")),
    Case("hnsw-opclass-changed",
         "DROP INDEX embedding_embedding_hnsw_idx;"
         "CREATE INDEX embedding_embedding_hnsw_idx ON embedding USING hnsw (embedding vector_l2_ops)",
         _keys("changed index embedding_embedding_hnsw_idx")),
    Case("hnsw-parameters-changed",
         "DROP INDEX embedding_embedding_hnsw_idx;"
         "CREATE INDEX embedding_embedding_hnsw_idx ON embedding USING hnsw "
         "(embedding vector_cosine_ops) WITH (m = 24, ef_construction = 100)",
         _keys("changed index embedding_embedding_hnsw_idx")),
    Case("gin-path-ops-to-jsonb-ops",
         "DROP INDEX agent_context_context_idx;"
         "CREATE INDEX agent_context_context_idx ON agent_context USING gin (context jsonb_ops)",
         _keys("changed index agent_context_context_idx")),
    Case("default-opclass-spelled-out",
         "DROP INDEX pipeline_run_status_started_at_idx;"
         "CREATE INDEX pipeline_run_status_started_at_idx ON pipeline_run "
         "(status enum_ops, started_at timestamptz_ops)", _keys()),
    Case("index-renamed-only",
         "ALTER INDEX pipeline_step_run_id_created_at_idx RENAME TO pipeline_step_run_created_idx",
         _keys()),
    Case("partial-index-added",
         "CREATE INDEX pipeline_run_failed_idx ON pipeline_run (started_at) WHERE status = 'FAILED'",
         _keys("added index pipeline_run_failed_idx")),
    Case("expression-index-added",
         "CREATE INDEX pipeline_run_lower_name_idx ON pipeline_run (lower(name))",
         _keys("added index pipeline_run_lower_name_idx")),
    Case("index-dropped", "DROP INDEX pipeline_run_status_started_at_idx",
         _keys("removed index pipeline_run_status_started_at_idx"), destructive=True),
    Case("generated-column-added",
         "ALTER TABLE pipeline_step ADD COLUMN double_tokens bigint "
         "GENERATED ALWAYS AS (tokens * 2) STORED",
         _keys("added column pipeline_step.double_tokens")),
    Case("identity-to-serial",
         "ALTER TABLE embedding ALTER COLUMN id DROP IDENTITY;"
         "CREATE SEQUENCE embedding_id_seq OWNED BY embedding.id;"
         "ALTER TABLE embedding ALTER COLUMN id SET DEFAULT nextval('embedding_id_seq')", _keys()),
    Case("identity-always", "ALTER TABLE embedding ALTER COLUMN id SET GENERATED ALWAYS",
         _keys("changed column embedding.id")),
    Case("column-order-only",
         "ALTER TABLE content_item DROP COLUMN type; ALTER TABLE content_item ADD COLUMN type text;"
         "UPDATE content_item SET type = 'x'; ALTER TABLE content_item ALTER COLUMN type SET NOT NULL",
         _keys()),
    Case("collation-changed", "ALTER TABLE pipeline_run ALTER COLUMN name TYPE text COLLATE \"C\"",
         _keys("changed column pipeline_run.name"), destructive=True),
    Case("table-added",
         "CREATE TABLE tag (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
         "label text NOT NULL UNIQUE)",
         _keys("added table tag", "added constraint tag.tag_pkey",
               "added constraint tag.tag_label_key")),
    Case("table-dropped", "DROP TABLE content_item",
         _keys("removed table content_item", "removed constraint content_item.content_item_pkey"),
         destructive=True),
    Case("sequence-added", "CREATE SEQUENCE ticket_seq START 100",
         _keys("added sequence ticket_seq")),
    Case("extension-added", "CREATE EXTENSION pg_trgm", _keys("added extension pg_trgm")),
)  # fmt: skip
