-- A counter of grant changes (ADR 0016, ADR 0027), the same as on SQLite
-- (migrations/sqlite/0017_access_changes.sql), where a server reads it once a second to learn
-- of grant changes made by other processes. On PostgreSQL NOTIFY carries them; the counter is
-- kept all the same so that both schemas hold the same tables and the counter's meaning
-- ("grants changed N times") holds whatever the engine. Grant changes are rare: the one row
-- serialising them costs nothing.
CREATE TABLE access_changes (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    changes  BIGINT  NOT NULL
);
INSERT INTO access_changes (id, changes) VALUES (1, 0);

CREATE FUNCTION access_changes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_changes SET changes = changes + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER access_grants_counted
AFTER INSERT OR UPDATE OR DELETE ON access_grants
FOR EACH STATEMENT EXECUTE FUNCTION access_changes_count();

CREATE TRIGGER access_grant_folders_counted
AFTER INSERT OR UPDATE OR DELETE ON access_grant_folders
FOR EACH STATEMENT EXECUTE FUNCTION access_changes_count();
