-- National directory (SPEC.md §7, issue #6), SQLite flavour. Keep in step with
-- migrations/postgres/0002_directory.sql. How imports replace data atomically:
-- docs/adr/0100-directory-generations.md.

-- One row per import run of a source (history), also the generation id of the rows it wrote.
CREATE TABLE directory_imports (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,                   -- extraction | ldap | fhir
    origin       TEXT    NOT NULL,                   -- file path, URL, LDAP URL + base
    status       TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'refused', 'failed')),
    forced       BIGINT  NOT NULL DEFAULT 0,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT,
    rows_count   BIGINT  NOT NULL DEFAULT 0,
    addresses    BIGINT  NOT NULL DEFAULT 0,
    rejected     BIGINT  NOT NULL DEFAULT 0,
    added        BIGINT  NOT NULL DEFAULT 0,
    removed      BIGINT  NOT NULL DEFAULT 0,
    modified     BIGINT  NOT NULL DEFAULT 0,
    message      TEXT
);
CREATE INDEX directory_imports_source ON directory_imports(source, id);

-- The generation each source currently serves: switching this pointer is the atomic step.
CREATE TABLE directory_sources (
    source          TEXT    PRIMARY KEY,
    current_import  BIGINT  NOT NULL REFERENCES directory_imports(id),
    updated_at      BIGINT  NOT NULL
);

-- One row per line of the extraction (BAL × structure), the 31 columns by name.
CREATE TABLE directory_entries (
    id                         INTEGER PRIMARY KEY,
    import_id                  BIGINT  NOT NULL,
    line                       BIGINT  NOT NULL,
    address_key                TEXT    NOT NULL,     -- trimmed, lower-cased address
    name_key                   TEXT    NOT NULL,     -- folded for accent/case-insensitive prefix search
    first_name_key             TEXT    NOT NULL,
    row_hash                   BIGINT  NOT NULL,     -- detects modified rows between generations
    bal_type                   TEXT    NOT NULL,
    address                    TEXT    NOT NULL,
    pp_id_type                 TEXT    NOT NULL,
    pp_id                      TEXT    NOT NULL,
    national_id                TEXT    NOT NULL,
    structure_id_type          TEXT    NOT NULL,
    structure_id               TEXT    NOT NULL,
    service                    TEXT    NOT NULL,
    civility                   TEXT    NOT NULL,
    name                       TEXT    NOT NULL,
    first_name                 TEXT    NOT NULL,
    profession_category        TEXT    NOT NULL,
    profession_category_label  TEXT    NOT NULL,
    profession_code            TEXT    NOT NULL,
    profession_label           TEXT    NOT NULL,
    skill_code                 TEXT    NOT NULL,
    skill_label                TEXT    NOT NULL,
    dematerialisation          TEXT    NOT NULL,
    structure_name             TEXT    NOT NULL,
    structure_brand            TEXT    NOT NULL,
    addr_l2                    TEXT    NOT NULL,
    addr_l3                    TEXT    NOT NULL,
    addr_number                TEXT    NOT NULL,
    addr_number_complement     TEXT    NOT NULL,
    addr_street_type           TEXT    NOT NULL,
    addr_street                TEXT    NOT NULL,
    addr_l5                    TEXT    NOT NULL,
    addr_l6                    TEXT    NOT NULL,
    postcode                   TEXT    NOT NULL,
    department                 TEXT    NOT NULL,
    country                    TEXT    NOT NULL
);
CREATE INDEX directory_entries_address ON directory_entries(address_key, import_id, row_hash);
CREATE INDEX directory_entries_import ON directory_entries(import_id);
CREATE INDEX directory_entries_national_id ON directory_entries(national_id);
CREATE INDEX directory_entries_name ON directory_entries(name_key);
CREATE INDEX directory_entries_first_name ON directory_entries(first_name_key);

-- Lines an import rejected (1-based physical line numbers, header = line 1).
CREATE TABLE directory_import_rejects (
    import_id  BIGINT  NOT NULL,
    line       BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    detail     TEXT    NOT NULL
);
CREATE INDEX directory_import_rejects_import ON directory_import_rejects(import_id);

-- Addresses an import added, removed or modified against the generation it replaced.
CREATE TABLE directory_import_changes (
    import_id    BIGINT  NOT NULL,
    address_key  TEXT    NOT NULL,
    change       TEXT    NOT NULL CHECK (change IN ('added', 'removed', 'modified'))
);
CREATE INDEX directory_import_changes_import ON directory_import_changes(import_id);

-- Publication of our own BALs to the national directory (FHIR PATCH), with retries.
CREATE TABLE directory_outbox (
    id            INTEGER PRIMARY KEY,
    address       TEXT    NOT NULL,
    resource_url  TEXT    NOT NULL,                  -- e.g. Practitioner?identifier=...
    body          TEXT    NOT NULL,                  -- FHIR Parameters (JSON)
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts      BIGINT  NOT NULL DEFAULT 0,
    next_attempt  BIGINT  NOT NULL,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX directory_outbox_due ON directory_outbox(status, next_attempt);
