-- Directory: name-search indexes and incremental LDAP sync (issue #6,
-- docs/adr/0100-directory-generations.md). Keep in step with
-- migrations/postgres/0007_directory_incremental.sql.

-- Name searches read a prefix range in (key, id) order and stop at the limit. PostgreSQL's
-- name indexes get `id` as a second column here; SQLite's already have that order (every
-- index ends with the rowid, which `id` is), so nothing to rebuild.

-- Incremental LDAP sync: the highest modifyTimestamp a sync of a source has seen, so that the
-- next run asks only for entries modified since. Valid while the source still serves
-- `generation` (the full run it belongs to) from the same `origin`; else the next run is full.
CREATE TABLE directory_sync_state (
    source            TEXT    PRIMARY KEY,           -- ldap
    origin            TEXT    NOT NULL,              -- URL, base and filter
    generation         BIGINT NOT NULL,              -- the full import incremental runs merge into
    watermark          BIGINT NOT NULL,              -- highest modifyTimestamp seen, Unix seconds
    incremental_runs   BIGINT NOT NULL DEFAULT 0,    -- since that full run
    updated_at         BIGINT NOT NULL
);
