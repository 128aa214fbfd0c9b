-- ADR 0055: the audit trail's time index keyed by time alone. The index it replaces,
-- (bal_id, at), put every new entry in its own BAL's part of the index: a SQLite group commit
-- carrying the entries of 45 delegates' actions dirtied a page per BAL there on top of the
-- (bal_id, seq) index's, and paid for it in the group's one insert and in its commit. Keyed
-- by time, new entries land at the index's end. Its readers: retention (entries older than a
-- date, all BALs at once, store/src/retention.rs); a BAL's trail is read by (bal_id, seq).
-- Keep in step with migrations/postgres/0032_audit_log_by_time.sql.
DROP INDEX audit_log_time;
CREATE INDEX audit_log_at ON audit_log(at);
