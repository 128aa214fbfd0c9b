-- Who may open which BAL besides its holder (ADR 0012). A PER BAL is opened by the identity
-- whose national id it carries (bals.national_id), with no row here. Rows are habilitations
-- the operator grants (a professional on an ORG or CAB BAL of their structure) and, later,
-- delegations (issue 14) with narrower rights; `grantee_kind` leaves room for grants to a
-- local BAL and to the members of an ORG/CAB BAL. Keep in step with
-- migrations/postgres/0009_access.sql.
CREATE TABLE access_grants (
    id            INTEGER PRIMARY KEY,
    bal_id        BIGINT  NOT NULL REFERENCES bals(id),
    grantee_kind  TEXT    NOT NULL CHECK (grantee_kind IN ('national_id', 'bal')),
    grantee       TEXT    NOT NULL,          -- an opaque PSC identity, or a BAL address
    origin        TEXT    NOT NULL CHECK (origin IN ('habilitation', 'delegation')),
    rights        TEXT    NOT NULL,          -- RFC 4314 rights letters
    not_after     BIGINT,                    -- unix seconds; NULL = until revoked
    created_at    BIGINT  NOT NULL,
    UNIQUE (bal_id, grantee_kind, grantee, origin)
);
CREATE INDEX access_grants_grantee ON access_grants(grantee_kind, grantee);
