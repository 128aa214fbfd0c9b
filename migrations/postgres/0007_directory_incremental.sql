-- Directory: name-search indexes and incremental LDAP sync (issue #6,
-- docs/adr/0100-directory-generations.md). Keep in step with
-- migrations/sqlite/0007_directory_incremental.sql.

-- Addresses and national ids compare in byte order, like the search keys: the sorts of index
-- builds and distinct counts use abbreviated keys instead of strcoll (the address index of a
-- 535,000-row import builds in 0.5 s instead of 1 to 1.7 s), and the live table and the loaded
-- one (created by the import code with these collations) compare without collation conflict.
-- No table rewrite (same type); the two indexes on these columns are rebuilt.
ALTER TABLE directory_entries
    ALTER COLUMN address_key TYPE TEXT COLLATE "C",
    ALTER COLUMN national_id TYPE TEXT COLLATE "C";

-- Name searches read a prefix range in (key, id) order and stop at the limit. With the index on
-- the key alone PostgreSQL fetched and sorted the whole range (p50 10 ms, p99 > 100 ms at
-- 535,000 rows for a three-letter prefix). The live table carries either the A or the B index
-- names (imports alternate, see the ADR); rebuild whichever it has, under the same name. SQLite
-- needs nothing: its indexes end with the rowid, which `id` is.
DO $$
DECLARE
    ix TEXT;
BEGIN
    FOREACH ix IN ARRAY ARRAY['directory_entries_name', 'directory_entries_b_name',
                              'directory_entries_first_name', 'directory_entries_b_first_name']
    LOOP
        IF EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema()
                   AND tablename = 'directory_entries' AND indexname = ix) THEN
            EXECUTE format('DROP INDEX %I', ix);
            EXECUTE format('CREATE INDEX %I ON directory_entries(%I, id)', ix,
                           CASE WHEN ix LIKE '%first_name' THEN 'first_name_key' ELSE 'name_key' END);
        END IF;
    END LOOP;
END
$$;

-- Incremental LDAP sync: the highest modifyTimestamp a sync of a source has seen, so that the
-- next run asks only for entries modified since. Valid while the source still serves
-- `generation` (the full run it belongs to) from the same `origin`; else the next run is full.
CREATE TABLE directory_sync_state (
    source            TEXT    PRIMARY KEY,           -- ldap
    origin            TEXT    NOT NULL,              -- URL, base and filter
    generation        BIGINT  NOT NULL,              -- the full import incremental runs merge into
    watermark         BIGINT  NOT NULL,              -- highest modifyTimestamp seen, Unix seconds
    incremental_runs  BIGINT  NOT NULL DEFAULT 0,    -- since that full run
    updated_at        BIGINT  NOT NULL
);
