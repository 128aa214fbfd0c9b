-- ADR 0051: a delegate's report of what changed in a folder since its modseq (the snapshot
-- of store/src/folder_snapshot.rs, after nearly every command) looks for the rows of its own
-- `\Seen` changed after that modseq. Without this index SQLite walked every message of the
-- folder not changed since (by `mailbox_messages_modseq`) and probed `delegate_seen` for
-- each: a scan of the folder per command, which an owner's report does not make. With it,
-- the rows come by (folder, reader, modseq > since). Keep in step with
-- migrations/postgres/0030_delegate_seen_changes.sql.
CREATE INDEX delegate_seen_changes ON delegate_seen(mailbox_id, reader, modseq);
