-- A counter of grant changes (ADR 0016, ADR 0027). On SQLite no notification crosses
-- processes: a server learns that another process (`mssante delegation revoke`, `mssante
-- access`) changed a grant by reading this counter once a second. A counter that only grows
-- is needed: a fingerprint of the grant tables comes back to the same value when a grant and
-- its revocation both fall between two reads, and the revocation is then never seen.
-- Kept by triggers so that every writer of access_grants and access_grant_folders moves it,
-- in the writer's own transaction. Keep in step with migrations/postgres/0017_access_changes.sql.
CREATE TABLE access_changes (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    changes  BIGINT  NOT NULL
);
INSERT INTO access_changes (id, changes) VALUES (1, 0);

CREATE TRIGGER access_grants_insert_counted AFTER INSERT ON access_grants
BEGIN
    UPDATE access_changes SET changes = changes + 1 WHERE id = 1;
END;
CREATE TRIGGER access_grants_update_counted AFTER UPDATE ON access_grants
BEGIN
    UPDATE access_changes SET changes = changes + 1 WHERE id = 1;
END;
CREATE TRIGGER access_grants_delete_counted AFTER DELETE ON access_grants
BEGIN
    UPDATE access_changes SET changes = changes + 1 WHERE id = 1;
END;
CREATE TRIGGER access_grant_folders_insert_counted AFTER INSERT ON access_grant_folders
BEGIN
    UPDATE access_changes SET changes = changes + 1 WHERE id = 1;
END;
CREATE TRIGGER access_grant_folders_update_counted AFTER UPDATE ON access_grant_folders
BEGIN
    UPDATE access_changes SET changes = changes + 1 WHERE id = 1;
END;
CREATE TRIGGER access_grant_folders_delete_counted AFTER DELETE ON access_grant_folders
BEGIN
    UPDATE access_changes SET changes = changes + 1 WHERE id = 1;
END;
