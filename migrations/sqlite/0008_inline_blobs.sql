-- Small message bodies live in the database, written in the transaction that accepts the
-- message: one durable commit instead of file + directory + WAL fsyncs (ADR 0009).
-- Keep in step with migrations/postgres/0008_inline_blobs.sql.
CREATE TABLE blob_data (
    hash  TEXT  PRIMARY KEY REFERENCES blobs(hash),
    data  BLOB  NOT NULL
);
