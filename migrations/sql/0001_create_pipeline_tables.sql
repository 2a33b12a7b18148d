-- Pipeline runs and their steps, as in the seed articles.
CREATE TYPE status AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED');

CREATE TABLE pipeline_run (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    status      status NOT NULL DEFAULT 'PENDING',
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    duration    numeric,
    cost        numeric(12, 6) NOT NULL DEFAULT 0,
    metadata    jsonb
);

CREATE INDEX pipeline_run_status_started_at_idx ON pipeline_run (status, started_at);

CREATE TABLE pipeline_step (
    id          text PRIMARY KEY,
    run_id      text NOT NULL REFERENCES pipeline_run (id) ON DELETE CASCADE,
    name        text NOT NULL,
    status      status NOT NULL DEFAULT 'PENDING',
    input       jsonb,
    output      jsonb,
    tokens      integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX pipeline_step_run_id_created_at_idx ON pipeline_step (run_id, created_at);

-- querykit:down
DROP TABLE pipeline_step;
DROP TABLE pipeline_run;
DROP TYPE status;
