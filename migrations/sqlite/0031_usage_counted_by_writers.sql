-- ADR 0049: a statement that adds copies to mailbox_messages adds their bytes to the BAL's
-- running usage counter itself, as on PostgreSQL (where the per-copy trigger was the cost),
-- so that every writer runs the same code on both engines. Removals (EXPUNGE, folder
-- deletion, BAL removal) and the UPDATE of a row's folder or message keep their triggers.
-- The unit test `usage::tests::every_insert_into_mailbox_messages_counts_its_bytes` fails
-- on a writer that forgets the counter. Keep in step with
-- migrations/postgres/0031_usage_counted_by_writers.sql.
DROP TRIGGER mailbox_messages_usage_insert;
