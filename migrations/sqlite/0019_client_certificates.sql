-- Client certificates bound to application BALs (SASL EXTERNAL, ADR 0029). A certificate
-- that chains to [tls] client_ca_file opens a BAL when one of its names (subject DN, or a
-- subjectAltName) is bound to it here by the operator (`mssante client-cert bind`).
-- `name_key` is the lookup form (trust crate, names.rs: `dn:` + canonical DN, `email:`,
-- `dns:`, `uri:`); `name` is the name as the operator gave it, for listings. Keep in
-- step with migrations/postgres/0019_client_certificates.sql.
CREATE TABLE bal_client_certificates (
    id          INTEGER PRIMARY KEY,
    bal_id      BIGINT  NOT NULL REFERENCES bals(id),
    name_key    TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    UNIQUE (bal_id, name_key)
);
CREATE INDEX bal_client_certificates_name ON bal_client_certificates(name_key);
