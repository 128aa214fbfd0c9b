-- Directory import speed (issue #6, docs/adr/0100-directory-generations.md). Keep in step with
-- migrations/postgres/0004_directory_speed.sql.
--
-- Bulk imports now load a new table `directory_entries_next` without indexes, build its indexes
-- once, and swap it in by rename; a running import proves it is alive by this heartbeat, so a
-- crashed one is taken over after a few minutes instead of blocking the next import.
ALTER TABLE directory_imports ADD COLUMN heartbeat_at BIGINT;

-- Generations are no longer deleted row by row: the index on import_id only cost inserts and
-- could lure the planner into scanning a whole generation for a name search.
DROP INDEX IF EXISTS directory_entries_import;
