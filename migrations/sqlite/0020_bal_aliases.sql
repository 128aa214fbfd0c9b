-- Other addresses of a BAL (`mssante bal alias`, and the old address a `bal rename` keeps):
-- mail to an alias is delivered to the BAL. An alias is never also a BAL's address (checked
-- by the store when either is created).
CREATE TABLE bal_aliases (
    address     TEXT    NOT NULL PRIMARY KEY,   -- normalised like bals.address
    bal_id      BIGINT  NOT NULL REFERENCES bals(id),
    created_at  BIGINT  NOT NULL
);
CREATE INDEX bal_aliases_bal ON bal_aliases (bal_id);
