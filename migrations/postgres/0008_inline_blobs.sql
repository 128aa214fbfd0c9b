-- Small message bodies live in the database, written in the transaction that accepts the
-- message: one durable commit instead of file + directory + WAL fsyncs (ADR 0009).
-- Keep in step with migrations/sqlite/0008_inline_blobs.sql.
CREATE TABLE blob_data (
    hash  TEXT  PRIMARY KEY REFERENCES blobs(hash),
    data  BYTEA NOT NULL
);
-- Bodies are mostly PDF and ZIP (already compressed): store them out of line without pglz,
-- which would spend CPU on every message for nothing.
ALTER TABLE blob_data ALTER COLUMN data SET STORAGE EXTERNAL;
