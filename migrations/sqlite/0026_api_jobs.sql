-- Export and import jobs of the HTTP API (ADR 0039): one row per job, on whatever node ran
-- it. The archive file lives in that node's data dir (`jobs/`), named in `file`; `node` is the
-- node's id (`jobs/node-id`), so that another node sharing the database (PostgreSQL) knows the
-- file is not its own. `request`, `progress`, `result` and `error` are JSON documents the API
-- writes and reads back as they are. A job `running` when its server stopped is queued again
-- at the next start (`attempts` counts the runs). Keep in step with
-- migrations/postgres/0026_api_jobs.sql.
CREATE TABLE api_jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('export', 'import')),
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    node         TEXT    NOT NULL,
    client       TEXT    NOT NULL,                  -- `key:<key id>`: who asked
    request      TEXT    NOT NULL,
    progress     TEXT    NOT NULL,
    result       TEXT,
    error        TEXT,
    file         TEXT,                              -- path of the archive on `node`
    file_size    BIGINT,
    file_sha256  TEXT,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX api_jobs_node_state ON api_jobs(node, kind, state);
