-- ADR 0049: a statement that adds copies to mailbox_messages adds their bytes to the BAL's
-- running usage counter itself (one UPDATE of bals per BAL and statement, folded into the
-- one-statement delivery, APPEND and COPY), instead of the row trigger of migration 0014
-- running a plpgsql UPDATE per copy. Removals (EXPUNGE, folder deletion, BAL removal) and
-- the UPDATE of a row's folder or message keep the row trigger. The unit test
-- `usage::tests::every_insert_into_mailbox_messages_counts_its_bytes` fails on a writer
-- that forgets the counter. Keep in step with migrations/sqlite/0031_usage_counted_by_writers.sql.
DROP TRIGGER mailbox_messages_usage ON mailbox_messages;

CREATE TRIGGER mailbox_messages_usage
AFTER DELETE OR UPDATE OF mailbox_id, message_id ON mailbox_messages
FOR EACH ROW EXECUTE FUNCTION mailbox_messages_usage();
