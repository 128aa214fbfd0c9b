//! Local copy of the national directory (SPEC.md §7): rows of the daily extraction, of LDAP
//! directories and of single FHIR look-ups, the lookups served from them, and the import history.
//!
//! Atomic replacement without one giant transaction (docs/adr/0100-directory-generations.md):
//! an import writes its rows tagged with its own id (a new *generation*) in short write
//! transactions, then one small transaction points its source at that generation. Lookups only
//! read the generation their source points at, so they see yesterday or today, never a mix; an
//! import that fails or is refused never moves the pointer, and its rows are deleted.

use std::fmt::Write as _;
use std::sync::LazyLock;

use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::{Any, AnyArguments, AnyRow};

use crate::error::{Result, StoreError};
use crate::{Engine, Store, WriteTxn, now};

/// The 31 columns of `Extraction_Correspondance_MSSante`, in file order (fixtures README).
/// Absent values are empty strings, as in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryRow {
    /// `Type de BAL`: PER, ORG, APP, CAB.
    pub bal_type: String,
    /// `Adresse BAL`, as written in the source (the key is its lower-cased form).
    pub address: String,
    /// `Type Identifiant PP`: 8 = RPPS, 0 = ADELI.
    pub pp_id_type: String,
    pub pp_id: String,
    /// `Identification nationale PP`: type + identifier (`8` + RPPS).
    pub national_id: String,
    /// `Type identifiant structure`: 1 FINESS, 3 SIRET, 4 RPPS rang.
    pub structure_id_type: String,
    pub structure_id: String,
    pub service: String,
    pub civility: String,
    pub name: String,
    pub first_name: String,
    pub profession_category: String,
    pub profession_category_label: String,
    /// TRE_G15 code (10 = médecin...).
    pub profession_code: String,
    pub profession_label: String,
    /// TRE_R38 savoir-faire.
    pub skill_code: String,
    pub skill_label: String,
    pub dematerialisation: String,
    /// `Raison Sociale structure BAL`.
    pub structure_name: String,
    pub structure_brand: String,
    pub addr_l2: String,
    pub addr_l3: String,
    pub addr_number: String,
    pub addr_number_complement: String,
    pub addr_street_type: String,
    pub addr_street: String,
    pub addr_l5: String,
    pub addr_l6: String,
    pub postcode: String,
    pub department: String,
    pub country: String,
}

/// The columns of [`DirectoryRow`] in the table, in file order; a macro so that `concat!`
/// keeps the queries `&'static str`.
macro_rules! row_columns {
    ($p:literal) => {
        concat!(
            $p,
            "bal_type, ",
            $p,
            "address, ",
            $p,
            "pp_id_type, ",
            $p,
            "pp_id, ",
            $p,
            "national_id, ",
            $p,
            "structure_id_type, ",
            $p,
            "structure_id, ",
            $p,
            "service, ",
            $p,
            "civility, ",
            $p,
            "name, ",
            $p,
            "first_name, ",
            $p,
            "profession_category, ",
            $p,
            "profession_category_label, ",
            $p,
            "profession_code, ",
            $p,
            "profession_label, ",
            $p,
            "skill_code, ",
            $p,
            "skill_label, ",
            $p,
            "dematerialisation, ",
            $p,
            "structure_name, ",
            $p,
            "structure_brand, ",
            $p,
            "addr_l2, ",
            $p,
            "addr_l3, ",
            $p,
            "addr_number, ",
            $p,
            "addr_number_complement, ",
            $p,
            "addr_street_type, ",
            $p,
            "addr_street, ",
            $p,
            "addr_l5, ",
            $p,
            "addr_l6, ",
            $p,
            "postcode, ",
            $p,
            "department, ",
            $p,
            "country"
        )
    };
}

impl DirectoryRow {
    /// Number of columns of the extraction file.
    pub const COLUMNS: usize = 31;

    /// Builds a row from the 31 fields of a line, in file order.
    pub fn from_fields(fields: [String; 31]) -> DirectoryRow {
        let [
            bal_type,
            address,
            pp_id_type,
            pp_id,
            national_id,
            structure_id_type,
            structure_id,
            service,
            civility,
            name,
            first_name,
            profession_category,
            profession_category_label,
            profession_code,
            profession_label,
            skill_code,
            skill_label,
            dematerialisation,
            structure_name,
            structure_brand,
            addr_l2,
            addr_l3,
            addr_number,
            addr_number_complement,
            addr_street_type,
            addr_street,
            addr_l5,
            addr_l6,
            postcode,
            department,
            country,
        ] = fields;
        DirectoryRow {
            bal_type,
            address,
            pp_id_type,
            pp_id,
            national_id,
            structure_id_type,
            structure_id,
            service,
            civility,
            name,
            first_name,
            profession_category,
            profession_category_label,
            profession_code,
            profession_label,
            skill_code,
            skill_label,
            dematerialisation,
            structure_name,
            structure_brand,
            addr_l2,
            addr_l3,
            addr_number,
            addr_number_complement,
            addr_street_type,
            addr_street,
            addr_l5,
            addr_l6,
            postcode,
            department,
            country,
        }
    }

    /// The 31 fields in file order.
    pub fn fields(&self) -> [&str; 31] {
        [
            &self.bal_type,
            &self.address,
            &self.pp_id_type,
            &self.pp_id,
            &self.national_id,
            &self.structure_id_type,
            &self.structure_id,
            &self.service,
            &self.civility,
            &self.name,
            &self.first_name,
            &self.profession_category,
            &self.profession_category_label,
            &self.profession_code,
            &self.profession_label,
            &self.skill_code,
            &self.skill_label,
            &self.dematerialisation,
            &self.structure_name,
            &self.structure_brand,
            &self.addr_l2,
            &self.addr_l3,
            &self.addr_number,
            &self.addr_number_complement,
            &self.addr_street_type,
            &self.addr_street,
            &self.addr_l5,
            &self.addr_l6,
            &self.postcode,
            &self.department,
            &self.country,
        ]
    }

    /// The lookup key: the directory compares addresses case-insensitively after trimming.
    pub fn address_key(&self) -> String {
        address_key(&self.address)
    }

    /// A stable digest of the row (SHA-256, first 8 bytes): two generations hold the same
    /// row when their digests are equal. Not `DefaultHasher`, whose output may change between
    /// Rust releases and would make every row look modified after an upgrade.
    fn digest(&self) -> i64 {
        let mut hasher = Sha256::new();
        for field in self.fields() {
            hasher.update(field.as_bytes());
            hasher.update([0x1f]); // unit separator: ("ab","c") and ("a","bc") differ
        }
        let bytes = hasher.finalize();
        i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
    }

    fn from_db(r: &AnyRow) -> Result<DirectoryRow> {
        const NAMES: [&str; 31] = [
            "bal_type",
            "address",
            "pp_id_type",
            "pp_id",
            "national_id",
            "structure_id_type",
            "structure_id",
            "service",
            "civility",
            "name",
            "first_name",
            "profession_category",
            "profession_category_label",
            "profession_code",
            "profession_label",
            "skill_code",
            "skill_label",
            "dematerialisation",
            "structure_name",
            "structure_brand",
            "addr_l2",
            "addr_l3",
            "addr_number",
            "addr_number_complement",
            "addr_street_type",
            "addr_street",
            "addr_l5",
            "addr_l6",
            "postcode",
            "department",
            "country",
        ];
        let mut fields: [String; 31] = Default::default();
        for (field, name) in fields.iter_mut().zip(NAMES) {
            *field = r.try_get(name)?;
        }
        Ok(DirectoryRow::from_fields(fields))
    }
}

/// The lookup form of an address: trimmed and lower-cased (no two BALs differ only by case).
pub fn address_key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Folds a name for accent- and case-insensitive prefix search: lower case, diacritics and
/// ligatures to ASCII (`Éloïse` → `eloise`, `CŒURDEROY` → `coeurderoy`), hyphens, apostrophes
/// and runs of spaces to one space (`D'ALMEIDA` → `d almeida`). Queries are folded the same way.
pub fn fold_name(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let ascii: &str = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'č' => "c",
            'ď' | 'đ' | 'ð' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => "i",
            'ł' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
            'œ' => "oe",
            'ř' => "r",
            'ß' => "ss",
            'ś' | 'š' | 'ş' => "s",
            'ť' | 'ţ' => "t",
            'þ' => "th",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            ' ' | '-' | '\'' | '’' | '.' | '_' | '\t' => " ",
            _ => {
                folded.push(c);
                continue;
            }
        };
        if ascii == " " && (folded.is_empty() || folded.ends_with(' ')) {
            continue;
        }
        folded.push_str(ascii);
    }
    folded.truncate(folded.trim_end().len());
    folded
}

/// Upper bound of a prefix range: every string starting with `prefix` sorts below it in byte
/// order (SQLite BINARY, PostgreSQL `COLLATE "C"`), so `key >= prefix AND key < bound` is an
/// index range scan on both engines, where `LIKE 'p%'` is not on PostgreSQL.
fn prefix_upper_bound(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// Where the local copy's rows come from.
pub mod sources {
    /// The national daily file `Extraction_Correspondance_MSSante`.
    pub const EXTRACTION: &str = "extraction";
    /// An LDAP directory (regional mirror, an establishment's staff directory).
    pub const LDAP: &str = "ldap";
    /// Entries refreshed one by one from the FHIR Annuaire Santé API.
    pub const FHIR: &str = "fhir";
}

/// Status of an import run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportStatus {
    Running,
    /// Applied: its source now serves this generation.
    Ok,
    /// Refused by the drop guard: the previous generation stays.
    Refused,
    /// Failed part way: the previous generation stays.
    Failed,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Ok => "ok",
            ImportStatus::Refused => "refused",
            ImportStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<ImportStatus> {
        match s {
            "running" => Ok(ImportStatus::Running),
            "ok" => Ok(ImportStatus::Ok),
            "refused" => Ok(ImportStatus::Refused),
            "failed" => Ok(ImportStatus::Failed),
            _ => Err(StoreError::Invalid(format!(
                "unknown import status {s:?} in database"
            ))),
        }
    }
}

/// One line of the import history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecord {
    pub id: i64,
    pub source: String,
    pub origin: String,
    pub status: ImportStatus,
    pub forced: bool,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub rows: i64,
    pub addresses: i64,
    pub rejected: i64,
    pub added: i64,
    pub removed: i64,
    pub modified: i64,
    pub message: Option<String>,
}

/// A line an import rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    /// 1-based physical line number (header = line 1), or the entry's rank for LDAP.
    pub line: i64,
    /// `too_few_columns`, `too_many_columns`, `invalid_utf8`, `empty_address`, `invalid_address`...
    pub kind: String,
    pub detail: String,
}

/// How an import ends.
#[derive(Clone, Copy, Debug)]
pub struct FinishOptions {
    /// Refuse the generation when its row count is below `(1 - max_drop) ×` the current one.
    pub max_drop: f64,
    /// Apply even when the drop guard would refuse.
    pub force: bool,
}

/// Addresses an applied import added, removed and modified (lower-cased keys, sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
}

/// A row of the current local copy with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub source: String,
    /// Line of the source file (or rank of the LDAP entry) the row came from.
    pub line: i64,
    pub row: DirectoryRow,
}

/// How much a source serves, per BAL type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryCount {
    pub source: String,
    pub bal_type: String,
    pub rows: i64,
    pub addresses: i64,
}

/// A name search: accent- and case-insensitive prefix on name or first name.
#[derive(Clone, Debug, Default)]
pub struct NameQuery {
    /// Prefix matched against the name and against the first name.
    pub name: String,
    /// Optional second prefix, matched against the first name only (`MARTIN Jean`).
    pub first_name: Option<String>,
    /// TRE_G15 code (`10`) or label (`Médecin`, accent- and case-insensitive).
    pub profession: Option<String>,
    /// Postcode prefix (`75` for Paris, `69003`).
    pub postcode: Option<String>,
    pub limit: i64,
}

/// Rows per multi-row INSERT: 64 × 37 parameters stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind limits, and amortises the statement cost.
pub const INSERT_BATCH_ROWS: usize = 64;
/// Parameters bound per row: import id, line, three keys, digest and the 31 columns.
const PARAMS_PER_ROW: usize = 37;
/// A `running` import whose heartbeat (one per write transaction or phase) is older than this
/// belongs to a process that stopped: the next import takes over.
const STALE_RUNNING_SECS: i64 = 15 * 60;
/// Addresses kept per kind of change in `directory_import_changes` (and so in the report):
/// the counts in the history stay exact, the stored list is the first ones in address order.
/// A first import "adds" the whole directory; a real day changes a few thousand addresses.
pub const MAX_KEPT_CHANGES: i64 = 10_000;

/// The table a bulk import loads (docs/adr/0100-directory-generations.md): same columns as
/// `directory_entries`, no index while rows go in. One at a time: creating it is the lock.
/// `$id` is the engine's key column; `$c` the collation of the prefix-searched columns.
macro_rules! create_next {
    ($id:literal, $c:literal) => {
        concat!(
            "CREATE TABLE directory_entries_next (",
            $id,
            ", import_id BIGINT NOT NULL, line BIGINT NOT NULL, address_key TEXT ",
            $c,
            " NOT NULL, name_key TEXT ",
            $c,
            " NOT NULL, first_name_key TEXT ",
            $c,
            " NOT NULL, row_hash BIGINT NOT NULL, bal_type TEXT NOT NULL, address TEXT NOT NULL, \
             pp_id_type TEXT NOT NULL, pp_id TEXT NOT NULL, national_id TEXT ",
            $c,
            " NOT NULL, structure_id_type TEXT NOT NULL, structure_id TEXT NOT NULL, service TEXT NOT NULL, \
             civility TEXT NOT NULL, name TEXT NOT NULL, first_name TEXT NOT NULL, \
             profession_category TEXT NOT NULL, profession_category_label TEXT NOT NULL, \
             profession_code TEXT NOT NULL, profession_label TEXT NOT NULL, \
             skill_code TEXT NOT NULL, skill_label TEXT NOT NULL, \
             dematerialisation TEXT NOT NULL, structure_name TEXT NOT NULL, \
             structure_brand TEXT NOT NULL, addr_l2 TEXT NOT NULL, addr_l3 TEXT NOT NULL, \
             addr_number TEXT NOT NULL, addr_number_complement TEXT NOT NULL, \
             addr_street_type TEXT NOT NULL, addr_street TEXT NOT NULL, addr_l5 TEXT NOT NULL, \
             addr_l6 TEXT NOT NULL, postcode TEXT ",
            $c,
            " NOT NULL, department TEXT NOT NULL, country TEXT NOT NULL)"
        )
    };
}
const CREATE_NEXT_SQLITE: &str = create_next!("id INTEGER PRIMARY KEY", "");
/// PostgreSQL: the keys and the postcode in `COLLATE "C"` (byte order, like SQLite's BINARY):
/// prefix ranges use the indexes whatever the cluster's locale, and sorts (index builds, the
/// distinct count) compare bytes with abbreviated keys instead of calling `strcoll` (the
/// address index builds in 0.5 s instead of 1 to 1.7 s at national scale; migration 0007).
///
/// Without autovacuum: the table is loaded once and replaced by the next import, and an
/// autovacuum of the live table started after the swap would hold the lock the next swap waits
/// for (a waiter cancels it only after `deadlock_timeout`: 1 to 2 s of swap). Statistics come
/// from the explicit `ANALYZE`; anti-wraparound vacuums still run if ever needed.
const CREATE_NEXT_POSTGRES: &str = concat!(
    create_next!(
        "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "COLLATE \"C\""
    ),
    " WITH (autovacuum_enabled = false)"
);

/// Index names live in one namespace per schema and a rename keeps them, so the loaded table
/// takes whichever of two name sets the live table does not use. Built after the load (one
/// sorted build each instead of 535,000 random inserts).
///
/// The name searches read a prefix range in `(key, id)` order and stop at the limit: the index
/// must hold that order. SQLite's does by itself (every index ends with the rowid, which `id`
/// is); PostgreSQL's needs `id` as a second column, else it fetches and sorts the whole
/// prefix range (10 ms at 535,000 rows for a three-letter prefix, migration 0007).
const INDEXES_A_SQLITE: [&str; 4] = [
    "CREATE INDEX directory_entries_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_name ON directory_entries_next(name_key)",
    "CREATE INDEX directory_entries_first_name ON directory_entries_next(first_name_key)",
];
const INDEXES_B_SQLITE: [&str; 4] = [
    "CREATE INDEX directory_entries_b_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_b_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_b_name ON directory_entries_next(name_key)",
    "CREATE INDEX directory_entries_b_first_name ON directory_entries_next(first_name_key)",
];
const INDEXES_A_POSTGRES: [&str; 4] = [
    "CREATE INDEX directory_entries_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_name ON directory_entries_next(name_key, id)",
    "CREATE INDEX directory_entries_first_name ON directory_entries_next(first_name_key, id)",
];
const INDEXES_B_POSTGRES: [&str; 4] = [
    "CREATE INDEX directory_entries_b_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_b_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_b_name ON directory_entries_next(name_key, id)",
    "CREATE INDEX directory_entries_b_first_name ON directory_entries_next(first_name_key, id)",
];
/// Statistics for the columns lookups filter or join on: a fresh table has none and the
/// planner would guess. Only those (the sample is read anyway, but each column's statistics
/// cost a sort of it): 0.2 s instead of 0.65 s at national scale.
const ANALYZE_NEXT: &str = "ANALYZE directory_entries_next (import_id, address_key, national_id, \
     name_key, first_name_key, postcode, profession_code)";

/// Whether the live table uses the A names (then the loaded table takes the B names).
const LIVE_USES_A_SQLITE: &str = "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' \
     AND name = 'directory_entries_address' AND tbl_name = 'directory_entries'";
const LIVE_USES_A_POSTGRES: &str = "SELECT COUNT(*) AS n FROM pg_indexes \
     WHERE schemaname = current_schema() AND indexname = 'directory_entries_address' \
     AND tablename = 'directory_entries'";

/// Page cache for the connection that builds indexes and compares generations (SQLite's
/// default is 2 MB): the sorts of `CREATE INDEX` and the probes of the comparison stay in
/// memory. Negative = KiB. Restored to the default afterwards (connections are pooled).
const SQLITE_BIG_CACHE: &str = "PRAGMA cache_size = -16384";
const SQLITE_DEFAULT_CACHE: &str = "PRAGMA cache_size = -2000";

/// Copies the rows of the other sources' current generations into the loaded table, inside the
/// swap transaction (so that an LDAP sync or a FHIR refresh committed meanwhile is kept).
const COPY_OTHER_SOURCES: &str = concat!(
    "INSERT INTO directory_entries_next (import_id, line, address_key, name_key, first_name_key, \
     row_hash, ",
    row_columns!(""),
    ") SELECT e.import_id, e.line, e.address_key, e.name_key, e.first_name_key, e.row_hash, ",
    row_columns!("e."),
    " FROM directory_entries e JOIN directory_sources s ON s.current_import = e.import_id \
     WHERE s.source <> $1 ORDER BY e.id"
);

fn insert_sql(table: &str, rows: usize) -> String {
    let mut sql = format!(
        "INSERT INTO {table} (import_id, line, address_key, name_key, first_name_key, row_hash, {}) VALUES ",
        row_columns!("")
    );
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..PARAMS_PER_ROW {
            let sep = if c == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}${}", r * PARAMS_PER_ROW + c + 1);
        }
        sql.push(')');
    }
    sql
}

/// Built once; statics so that the strings are `&'static str` as `sqlx::query` wants.
static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql("directory_entries", 1));
/// SQLite's bulk load binds one parameter per transaction: the rows as JSON ([`rows_json`]),
/// unpacked by `jsonb_each`. A
/// multi-row `VALUES` with 37 parameters per row is slow on SQLite, which looks a `$n`
/// parameter up by walking the statement's parameter list (`sqlite3_bind_parameter_name`):
/// binding `p` parameters costs `p²`, and with 64 rows per statement (2,368 parameters) 80 %
/// of the import went there. (PostgreSQL loads by `COPY`, see [`Store::directory_load`].)
fn load_sql_sqlite() -> String {
    let mut select = String::new();
    for c in 0..PARAMS_PER_ROW {
        let sep = if c == 0 { "" } else { ", " };
        let (group, member) = (c / JSON_GROUP, c % JSON_GROUP);
        let _ = write!(select, "{sep}value ->> '$[{group}][{member}]'");
    }
    format!(
        "INSERT INTO directory_entries_next (import_id, line, address_key, name_key, first_name_key, row_hash, {}) SELECT {select} FROM jsonb_each($1)",
        row_columns!("")
    )
}
static LOAD_SQLITE: LazyLock<String> = LazyLock::new(load_sql_sqlite);

/// PostgreSQL's bulk load of the loaded table: text format, the columns of [`rows_copy_text`].
const COPY_NEXT: &str = concat!(
    "COPY directory_entries_next (import_id, line, address_key, name_key, first_name_key, \
     row_hash, ",
    row_columns!(""),
    ") FROM STDIN"
);

/// Appends a value in `COPY` text format: backslash, tab, newline and carriage return escaped
/// (the only bytes with a meaning there); empty strings stay empty strings (not `\N`).
fn push_copy_value(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
}

/// The rows of one load transaction as `COPY` text: one line per row, tab-separated, in the
/// order of [`COPY_NEXT`] (import id, line, three keys, digest, the 31 columns).
fn rows_copy_text(import_id: i64, rows: &[(i64, DirectoryRow)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 300);
    for (line, row) in rows {
        let _ = std::io::Write::write_fmt(&mut out, format_args!("{import_id}\t{line}\t"));
        push_copy_value(&mut out, &row.address_key());
        out.push(b'\t');
        push_copy_value(&mut out, &fold_name(&row.name));
        out.push(b'\t');
        push_copy_value(&mut out, &fold_name(&row.first_name));
        let _ = std::io::Write::write_fmt(&mut out, format_args!("\t{}", row.digest()));
        for field in row.fields() {
            out.push(b'\t');
            push_copy_value(&mut out, field);
        }
        out.push(b'\n');
    }
    out
}

fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Values per inner array of a row in [`rows_json`]: SQLite finds member `[g][i]` in `g + i`
/// steps, where a flat array of 37 costs up to 36 (the lookups were a third of the import).
const JSON_GROUP: usize = 6;

/// Opens value `c` of a row in [`rows_json`]: a new inner array every [`JSON_GROUP`] values.
fn push_json_separator(out: &mut String, c: usize) {
    out.push_str(match c {
        0 => "[[",
        c if c % JSON_GROUP == 0 => "],[",
        _ => ",",
    });
}

/// The rows of one load transaction as the JSON array [`load_sql_sqlite`] unpacks: one array
/// per row, its 37 values (import id, line, three keys, digest, the 31 columns) in inner
/// arrays of [`JSON_GROUP`].
fn rows_json(import_id: i64, rows: &[(i64, DirectoryRow)]) -> String {
    let mut out = String::with_capacity(rows.len() * 340);
    out.push('[');
    for (i, (line, row)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_separator(&mut out, 0);
        let _ = write!(out, "{import_id}");
        push_json_separator(&mut out, 1);
        let _ = write!(out, "{line}");
        let keys = [
            row.address_key(),
            fold_name(&row.name),
            fold_name(&row.first_name),
        ];
        for (c, key) in keys.iter().enumerate() {
            push_json_separator(&mut out, 2 + c);
            push_json_string(&mut out, key);
        }
        push_json_separator(&mut out, 5);
        let _ = write!(out, "{}", row.digest());
        for (c, field) in row.fields().into_iter().enumerate() {
            push_json_separator(&mut out, 6 + c);
            push_json_string(&mut out, field);
        }
        out.push_str("]]");
    }
    out.push(']');
    out
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

fn bind_row<'q>(
    mut q: AnyQuery<'q>,
    import_id: i64,
    line: i64,
    row: &DirectoryRow,
) -> AnyQuery<'q> {
    q = q
        .bind(import_id)
        .bind(line)
        .bind(row.address_key())
        .bind(fold_name(&row.name))
        .bind(fold_name(&row.first_name))
        .bind(row.digest());
    for field in row.fields() {
        q = q.bind(field.to_string());
    }
    q
}

fn import_from_row(r: &AnyRow) -> Result<ImportRecord> {
    Ok(ImportRecord {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        origin: r.try_get("origin")?,
        status: ImportStatus::parse(&r.try_get::<String, _>("status")?)?,
        forced: r.try_get::<i64, _>("forced")? != 0,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        rows: r.try_get("rows_count")?,
        addresses: r.try_get("addresses")?,
        rejected: r.try_get("rejected")?,
        added: r.try_get("added")?,
        removed: r.try_get("removed")?,
        modified: r.try_get("modified")?,
        message: r.try_get("message")?,
    })
}

fn entry_from_row(r: &AnyRow) -> Result<DirectoryEntry> {
    Ok(DirectoryEntry {
        source: r.try_get("source")?,
        line: r.try_get("line")?,
        row: DirectoryRow::from_db(r)?,
    })
}

/// Rows of the generations sources currently serve; lookups append their condition.
macro_rules! current_entries {
    ($where:literal) => {
        concat!(
            "SELECT s.source, e.line, e.id, ",
            row_columns!("e."),
            " FROM directory_entries e JOIN directory_sources s ON s.current_import = e.import_id \
             WHERE ",
            $where
        )
    };
}

/// A name search on one key column: an index range scan in index order, with the optional
/// filters as `($n = '' OR …)` so that one static statement serves every combination.
macro_rules! name_search {
    ($key:literal) => {
        concat!(
            current_entries!(""),
            "e.",
            $key,
            " >= $1 AND e.",
            $key,
            " < $2 \
             AND ($3 = '' OR (e.first_name_key >= $3 AND e.first_name_key < $4)) \
             AND ($5 = '' OR (e.postcode >= $5 AND e.postcode < $6)) \
             AND ($7 = '' OR e.profession_code = $7) \
             ORDER BY e.",
            $key,
            ", e.id LIMIT $8"
        )
    };
}
/// Both range scans (name, then first name: an `OR` would serve neither from an index in
/// order) in one statement, so that both read the same snapshot: during an import the answer
/// is yesterday's or today's, never half of each. Merged and deduplicated in Rust.
const NAME_SEARCH: &str = concat!(
    "SELECT * FROM (",
    name_search!("name_key"),
    ") by_name UNION ALL SELECT * FROM (",
    name_search!("first_name_key"),
    ") by_first_name"
);

/// Starts the read-only transaction of a PostgreSQL name search (one round trip).
const GENERIC_PLAN_TXN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

/// Changes between the live generation `$2` of a source and the loaded table (the new
/// generation `$1`), keyed by address, in one pass: the rows of both sides joined on
/// (address, digest); an address with a row left without a twin on either side changed, and
/// is `added` if the live generation lacks it, `removed` if the loaded table does, else
/// `modified` (two index probes per changed address). One join instead of five anti and semi
/// joins (2.3 s at national scale on PostgreSQL, now 0.6 s; SQLite 1.3 s, now 0.5 s). See
/// `directory_record_changes`.
/// `$d` finds the addresses with an unmatched row: PostgreSQL by one hash full join with the
/// live generation (filtered in a subquery: a full join's conditions must all be hashable);
/// SQLite by two anti-joins probing each side's address index (its full join, 3.4 s, tracks
/// the matched right rows in a temporary b-tree; these take 0.5 s).
macro_rules! changes_diff {
    ($d:literal) => {
        concat!(
            "INSERT INTO directory_import_changes (import_id, address_key, change) \
             SELECT $1, d.address_key, CASE \
               WHEN NOT EXISTS (SELECT 1 FROM directory_entries o \
                                WHERE o.address_key = d.address_key AND o.import_id = $2) \
                 THEN 'added' \
               WHEN NOT EXISTS (SELECT 1 FROM directory_entries_next n \
                                WHERE n.address_key = d.address_key) THEN 'removed' \
               ELSE 'modified' END \
             FROM (",
            $d,
            ") d"
        )
    };
}
const CHANGES_DIFF_POSTGRES: &str = changes_diff!(
    "SELECT DISTINCT COALESCE(n.address_key, o.address_key) AS address_key \
     FROM directory_entries_next n \
     FULL JOIN (SELECT address_key, row_hash FROM directory_entries WHERE import_id = $2) o \
       ON o.address_key = n.address_key AND o.row_hash = n.row_hash \
     WHERE n.address_key IS NULL OR o.address_key IS NULL"
);
const CHANGES_DIFF_SQLITE: &str = changes_diff!(
    "SELECT address_key FROM (SELECT n.address_key FROM directory_entries_next n \
           WHERE NOT EXISTS (SELECT 1 FROM directory_entries o WHERE o.address_key = n.address_key \
                             AND o.import_id = $2 AND o.row_hash = n.row_hash) \
           UNION \
           SELECT o.address_key FROM directory_entries o WHERE o.import_id = $2 \
           AND NOT EXISTS (SELECT 1 FROM directory_entries_next n WHERE n.address_key = o.address_key \
                           AND n.import_id = $1 AND n.row_hash = o.row_hash)) unmatched"
);
/// A first import adds every address: only the first ones are listed.
const CHANGES_ALL_ADDED: &str = "INSERT INTO directory_import_changes (import_id, address_key, change) \
     SELECT $1, address_key, 'added' FROM \
     (SELECT DISTINCT address_key FROM directory_entries_next ORDER BY address_key LIMIT $2) first";
const CHANGES_COUNT: &str =
    "SELECT COUNT(*) AS n FROM directory_import_changes WHERE import_id = $1 AND change = $2";
/// Keeps the first [`MAX_KEPT_CHANGES`] addresses of a kind (`$3` = that count - 1).
const CHANGES_CAP: &str = "DELETE FROM directory_import_changes \
     WHERE import_id = $1 AND change = $2 AND address_key > \
     (SELECT address_key FROM directory_import_changes WHERE import_id = $1 AND change = $2 \
      ORDER BY address_key LIMIT 1 OFFSET $3)";

/// One load transaction on PostgreSQL: the heartbeat (which fails if the import was taken
/// over) and the batch (as [`rows_copy_text`]) by `COPY`, committed together.
async fn copy_batch(
    conn: &mut sqlx::postgres::PgConnection,
    import_id: i64,
    copy_text: Vec<u8>,
) -> Result<()> {
    let mut txn = sqlx::Connection::begin(conn).await?;
    let alive = sqlx::query(
        "UPDATE directory_imports SET heartbeat_at = $2 WHERE id = $1 AND status = 'running'",
    )
    .bind(import_id)
    .bind(now())
    .execute(&mut *txn)
    .await?
    .rows_affected();
    if alive == 0 {
        return Err(StoreError::Invalid(format!(
            "directory import {import_id} is no longer running (taken over as abandoned)"
        )));
    }
    let mut copy = txn.copy_in_raw(COPY_NEXT).await?;
    if let Err(error) = copy.send(copy_text).await {
        copy.abort("send failed").await.ok();
        return Err(error.into());
    }
    copy.finish().await?;
    txn.commit().await?;
    Ok(())
}

/// Logs how long a phase of an import took (`directory_bench` prints these).
fn log_phase(import_id: i64, phase: &'static str, started: std::time::Instant) {
    tracing::info!(
        import_id,
        phase,
        ms = started.elapsed().as_millis() as u64,
        "directory import phase"
    );
}

/// The index name of a `CREATE INDEX` statement, for [`log_phase`].
fn index_phase(sql: &'static str) -> &'static str {
    sql.split_whitespace().nth(2).unwrap_or("index")
}

/// The incremental sync state of source `$1` if it belongs to origin `$2` and to the
/// generation the source serves now.
const SYNC_STATE: &str = "SELECT st.generation, st.watermark, st.incremental_runs \
     FROM directory_sync_state st \
     JOIN directory_sources s ON s.source = st.source AND s.current_import = st.generation \
     WHERE st.source = $1 AND st.origin = $2";

/// Adds a `running` import to the history; its id is the generation its rows carry.
async fn record_running_import(
    w: &mut WriteTxn<'_>,
    source: &str,
    origin: &str,
    t: i64,
) -> Result<i64> {
    Ok(sqlx::query(
        "INSERT INTO directory_imports (source, origin, status, started_at, heartbeat_at) \
         VALUES ($1, $2, 'running', $3, $3) RETURNING id",
    )
    .bind(source)
    .bind(origin)
    .bind(t)
    .fetch_one(&mut *w.txn)
    .await?
    .try_get("id")?)
}

impl Store {
    /// Starts a bulk import of `source`: takes over what a crashed import left, creates the
    /// table the rows are loaded into, records the run and returns its id (the generation its
    /// rows are written under). Fails while another bulk import is running.
    pub async fn directory_begin_import(&self, source: &str, origin: &str) -> Result<i64> {
        let t = now();
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE directory_imports SET status = 'failed', finished_at = $1, \
             message = 'abandoned (process stopped during the import)' \
             WHERE status = 'running' AND COALESCE(heartbeat_at, started_at) < $2",
        )
        .bind(t)
        .bind(t - STALE_RUNNING_SECS)
        .execute(&mut *w.txn)
        .await?;
        let running = sqlx::query(
            "SELECT id, source FROM directory_imports WHERE status = 'running' \
             AND id NOT IN (SELECT current_import FROM directory_sources) ORDER BY id LIMIT 1",
        )
        .fetch_optional(&mut *w.txn)
        .await?;
        if let Some(r) = running {
            return Err(StoreError::Invalid(format!(
                "directory import {} ({}) is running; one bulk import at a time",
                r.try_get::<i64, _>("id")?,
                r.try_get::<String, _>("source")?
            )));
        }
        sqlx::query("DROP TABLE IF EXISTS directory_entries_next")
            .execute(&mut *w.txn)
            .await?;
        sqlx::query(match self.engine() {
            Engine::Sqlite => CREATE_NEXT_SQLITE,
            Engine::Postgres => CREATE_NEXT_POSTGRES,
        })
        .execute(&mut *w.txn)
        .await?;
        let id = record_running_import(&mut w, source, origin, t).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Records an import run without a loaded table (the standing generation of a source
    /// refreshed entry by entry).
    async fn directory_new_import(&self, source: &str, origin: &str) -> Result<i64> {
        let mut w = self.write_txn().await?;
        let id = record_running_import(&mut w, source, origin, now()).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Proves a running import alive; fails if it was taken over (marked failed) meanwhile.
    async fn directory_heartbeat(&self, w: &mut WriteTxn<'_>, import_id: i64) -> Result<()> {
        let alive = sqlx::query(
            "UPDATE directory_imports SET heartbeat_at = $2 WHERE id = $1 AND status = 'running'",
        )
        .bind(import_id)
        .bind(now())
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        if alive == 0 {
            return Err(StoreError::Invalid(format!(
                "directory import {import_id} is no longer running (taken over as abandoned)"
            )));
        }
        Ok(())
    }

    /// Writes the batches of a running import into its loaded table (invisible to lookups until
    /// the swap), one write transaction per batch, until `batches` closes; `loaded` is told the
    /// size of each batch written. Each row carries its line number.
    ///
    /// SQLite: one `INSERT … SELECT` over the batch as one JSON parameter ([`load_sql_sqlite`]).
    /// PostgreSQL: `COPY … FROM STDIN` on a connection of its own, opened for the load (the
    /// pool speaks `sqlx::Any`, which has no COPY): JSON unpacking with `->>` re-parses the
    /// text for every member, 45 s of the 61 s national import; COPY loads it in ~3 s.
    /// A batch is encoded (keys, digest, JSON or COPY text) on a blocking thread while the
    /// previous one is written, so that the database is not kept waiting for it.
    pub async fn directory_load(
        &self,
        import_id: i64,
        batches: &mut tokio::sync::mpsc::Receiver<Vec<(i64, DirectoryRow)>>,
        mut loaded: impl FnMut(usize) + Send,
    ) -> Result<()> {
        let engine = self.engine();
        let (encoded_tx, mut encoded) = tokio::sync::mpsc::channel::<(usize, Vec<u8>)>(1);
        let encode = async move {
            while let Some(batch) = batches.recv().await {
                let job = tokio::task::spawn_blocking(move || {
                    let payload = match engine {
                        Engine::Sqlite => rows_json(import_id, &batch).into_bytes(),
                        Engine::Postgres => rows_copy_text(import_id, &batch),
                    };
                    (batch.len(), payload)
                });
                let done = job
                    .await
                    .map_err(|e| StoreError::Invalid(format!("encoding a batch failed: {e}")))?;
                if encoded_tx.send(done).await.is_err() {
                    break; // the writer failed: its error is the one returned
                }
            }
            Ok::<(), StoreError>(())
        };
        // Moves `encoded` in: when the writer fails, dropping it stops the encoder.
        let write = async move {
            let mut copier = None;
            while let Some((rows, payload)) = encoded.recv().await {
                match engine {
                    Engine::Sqlite => {
                        let json = String::from_utf8(payload).expect("rows_json makes UTF-8");
                        let mut w = self.write_txn().await?;
                        self.directory_heartbeat(&mut w, import_id).await?;
                        sqlx::query(LOAD_SQLITE.as_str())
                            .bind(json)
                            .execute(&mut *w.txn)
                            .await?;
                        w.commit().await?;
                    }
                    Engine::Postgres => {
                        if copier.is_none() {
                            copier = Some(self.postgres_connection().await?);
                        }
                        let conn = copier.as_mut().expect("just opened");
                        copy_batch(conn, import_id, payload).await?;
                    }
                }
                loaded(rows);
            }
            if let Some(conn) = copier {
                sqlx::Connection::close(conn).await?;
            }
            Ok::<(), StoreError>(())
        };
        let (encoded, written) = tokio::join!(encode, write);
        written.and(encoded)
    }

    /// A plain PostgreSQL connection to the store's database, for what `sqlx::Any` cannot do.
    async fn postgres_connection(&self) -> Result<sqlx::postgres::PgConnection> {
        let url = self.pool().connect_options().database_url.clone();
        let options: sqlx::postgres::PgConnectOptions = url.as_str().parse()?;
        Ok(<sqlx::postgres::PgConnection as sqlx::Connection>::connect_with(&options).await?)
    }

    /// Ends a running import: records its rejected lines, applies the drop guard, builds the
    /// indexes of the loaded table, computes what changed against the generation in place,
    /// and swaps the loaded table in, in one short transaction. A refused import leaves the
    /// previous generation in place.
    pub async fn directory_finish_import(
        &self,
        import_id: i64,
        rejects: &[RejectedLine],
        rejected_total: i64,
        options: FinishOptions,
    ) -> Result<ImportRecord> {
        let running = self.directory_import(import_id).await?;
        if running.status != ImportStatus::Running {
            return Err(StoreError::Invalid(format!(
                "import {import_id} is not running"
            )));
        }
        let started = std::time::Instant::now();
        self.directory_record_rejects(import_id, rejects).await?;
        let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM directory_entries_next")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let previous = self.directory_current_import(&running.source).await?;
        if let Some(refusal) = drop_guard(previous.as_ref(), rows, options) {
            let addresses: i64 =
                sqlx::query("SELECT COUNT(DISTINCT address_key) AS a FROM directory_entries_next")
                    .fetch_one(self.pool())
                    .await?
                    .try_get("a")?;
            self.directory_close_import(
                import_id,
                ImportStatus::Refused,
                rows,
                addresses,
                rejected_total,
                &refusal,
            )
            .await?;
            return self.directory_import(import_id).await;
        }
        log_phase(import_id, "count", started);
        self.directory_build_indexes(import_id).await?;
        let started = std::time::Instant::now();
        let addresses: i64 =
            sqlx::query("SELECT COUNT(DISTINCT address_key) AS a FROM directory_entries_next")
                .fetch_one(self.pool())
                .await?
                .try_get("a")?;
        log_phase(import_id, "count addresses", started);
        let started = std::time::Instant::now();
        let counts = match &previous {
            Some(previous) => {
                self.directory_record_changes(import_id, previous.id)
                    .await?
            }
            None => self.directory_record_first(import_id, addresses).await?,
        };
        log_phase(import_id, "changes", started);
        let started = std::time::Instant::now();
        self.directory_swap(
            import_id,
            &running.source,
            [rows, addresses, rejected_total],
            counts,
            options.force,
        )
        .await?;
        log_phase(import_id, "swap", started);
        self.directory_import(import_id).await
    }

    /// Marks a running import failed and drops what it loaded; the previous data stays.
    pub async fn directory_fail_import(&self, import_id: i64, message: &str) -> Result<()> {
        let mut w = self.write_txn().await?;
        let mine = sqlx::query(
            "UPDATE directory_imports SET status = 'failed', finished_at = $2, message = $3 \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(import_id)
        .bind(now())
        .bind(message)
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        // Taken over as abandoned: the loaded table may be the next import's by now.
        if mine == 1 {
            sqlx::query("DROP TABLE IF EXISTS directory_entries_next")
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await
    }

    async fn directory_record_rejects(
        &self,
        import_id: i64,
        rejects: &[RejectedLine],
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        for reject in rejects {
            sqlx::query(
                "INSERT INTO directory_import_rejects (import_id, line, kind, detail) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(import_id)
            .bind(reject.line)
            .bind(reject.kind.as_str())
            .bind(reject.detail.as_str())
            .execute(&mut *w.txn)
            .await?;
        }
        w.commit().await
    }

    /// Builds the loaded table's indexes, one write transaction each (on SQLite each holds
    /// the writer slot for the time of one sorted build, about a second at national scale).
    async fn directory_build_indexes(&self, import_id: i64) -> Result<()> {
        let live_uses_a: i64 = sqlx::query(match self.engine() {
            Engine::Sqlite => LIVE_USES_A_SQLITE,
            Engine::Postgres => LIVE_USES_A_POSTGRES,
        })
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        let indexes = match (self.engine(), live_uses_a > 0) {
            (Engine::Sqlite, true) => INDEXES_B_SQLITE,
            (Engine::Sqlite, false) => INDEXES_A_SQLITE,
            (Engine::Postgres, true) => INDEXES_B_POSTGRES,
            (Engine::Postgres, false) => INDEXES_A_POSTGRES,
        };
        match self.engine() {
            Engine::Sqlite => {
                for index in indexes {
                    let started = std::time::Instant::now();
                    let mut w = self.write_txn().await?;
                    self.directory_heartbeat(&mut w, import_id).await?;
                    sqlx::query(SQLITE_BIG_CACHE).execute(&mut *w.txn).await?;
                    let built = sqlx::query(index).execute(&mut *w.txn).await;
                    sqlx::query(SQLITE_DEFAULT_CACHE)
                        .execute(&mut *w.txn)
                        .await?;
                    built?;
                    w.commit().await?;
                    log_phase(import_id, index_phase(index), started);
                }
            }
            Engine::Postgres => {
                // The four at once, one transaction each (`CREATE INDEX` takes a SHARE lock,
                // which does not exclude another): the sorts use both cores.
                let mut w = self.write_txn().await?;
                self.directory_heartbeat(&mut w, import_id).await?;
                w.commit().await?;
                let [a, b, c, d] = indexes.map(|index| self.postgres_build_index(import_id, index));
                let (a, b, c, d) = tokio::join!(a, b, c, d);
                a.and(b).and(c).and(d)?;
            }
        }
        if self.engine() == Engine::Postgres {
            // Fresh table, no statistics yet: without them the planner guesses.
            let started = std::time::Instant::now();
            sqlx::query(ANALYZE_NEXT).execute(self.pool()).await?;
            log_phase(import_id, "analyze", started);
        }
        Ok(())
    }

    /// Builds one index of the loaded table on PostgreSQL, in its own transaction, if the
    /// import is still running (checked under a share lock: index builds run side by side, and
    /// the heartbeat's update would make them wait for each other).
    async fn postgres_build_index(&self, import_id: i64, index: &'static str) -> Result<()> {
        let started = std::time::Instant::now();
        let mut w = self.write_txn().await?;
        let alive = sqlx::query(
            "SELECT id FROM directory_imports WHERE id = $1 AND status = 'running' FOR SHARE",
        )
        .bind(import_id)
        .fetch_optional(&mut *w.txn)
        .await?;
        if alive.is_none() {
            return Err(StoreError::Invalid(format!(
                "directory import {import_id} is no longer running (taken over as abandoned)"
            )));
        }
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
            .execute(&mut *w.txn)
            .await?;
        sqlx::query(index).execute(&mut *w.txn).await?;
        w.commit().await?;
        log_phase(import_id, index_phase(index), started);
        Ok(())
    }

    /// The import a source currently serves, if any.
    pub async fn directory_current_import(&self, source: &str) -> Result<Option<ImportRecord>> {
        let row = sqlx::query("SELECT current_import FROM directory_sources WHERE source = $1")
            .bind(source)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(Some(
                self.directory_import(r.try_get("current_import")?).await?,
            )),
            None => Ok(None),
        }
    }

    /// First import of a source: every address is added; the first ones are listed.
    async fn directory_record_first(&self, import_id: i64, addresses: i64) -> Result<[i64; 3]> {
        let mut w = self.write_txn().await?;
        self.directory_heartbeat(&mut w, import_id).await?;
        sqlx::query(CHANGES_ALL_ADDED)
            .bind(import_id)
            .bind(MAX_KEPT_CHANGES)
            .execute(&mut *w.txn)
            .await?;
        w.commit().await?;
        Ok([addresses, 0, 0])
    }

    /// Keyed by address, computed in SQL between the live generation `old_id` and the loaded
    /// table: added = only in the new one, removed = only in the old one, modified = in both
    /// with a different set of rows (a row without a digest twin on either side). Counts are
    /// exact; the lists kept are capped at [`MAX_KEPT_CHANGES`] per kind.
    async fn directory_record_changes(&self, new_id: i64, old_id: i64) -> Result<[i64; 3]> {
        let mut w = self.write_txn().await?;
        self.directory_heartbeat(&mut w, new_id).await?;
        if self.engine() == Engine::Sqlite {
            sqlx::query(SQLITE_BIG_CACHE).execute(&mut *w.txn).await?;
        }
        if self.engine() == Engine::Postgres {
            // The join's hash table (the live generation's keys) in memory, not in batches.
            sqlx::query("SET LOCAL work_mem = '128MB'")
                .execute(&mut *w.txn)
                .await?;
        }
        sqlx::query(match self.engine() {
            Engine::Sqlite => CHANGES_DIFF_SQLITE,
            Engine::Postgres => CHANGES_DIFF_POSTGRES,
        })
        .bind(new_id)
        .bind(old_id)
        .execute(&mut *w.txn)
        .await?;
        let mut counts = [0; 3];
        for (count, change) in counts.iter_mut().zip(["added", "removed", "modified"]) {
            *count = sqlx::query(CHANGES_COUNT)
                .bind(new_id)
                .bind(change)
                .fetch_one(&mut *w.txn)
                .await?
                .try_get("n")?;
            if *count > MAX_KEPT_CHANGES {
                sqlx::query(CHANGES_CAP)
                    .bind(new_id)
                    .bind(change)
                    .bind(MAX_KEPT_CHANGES - 1)
                    .execute(&mut *w.txn)
                    .await?;
            }
        }
        if self.engine() == Engine::Sqlite {
            sqlx::query(SQLITE_DEFAULT_CACHE)
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await?;
        Ok(counts)
    }

    /// The atomic step, one transaction: the other sources' current rows join the loaded
    /// table, which replaces the live one by rename, and the source points at the new
    /// generation. Lookups before the commit read the old table, after it the new one.
    async fn directory_swap(
        &self,
        import_id: i64,
        source: &str,
        [rows, addresses, rejected]: [i64; 3],
        [added, removed, modified]: [i64; 3],
        forced: bool,
    ) -> Result<()> {
        let t = now();
        let mut w = self.write_txn().await?;
        if self.engine() == Engine::Postgres {
            // Writers of other sources (FHIR refresh) wait until the swap, readers do not.
            sqlx::query("LOCK TABLE directory_entries IN EXCLUSIVE MODE")
                .execute(&mut *w.txn)
                .await?;
        }
        let closed = sqlx::query(
            "UPDATE directory_imports SET status = 'ok', forced = $2, finished_at = $3, \
             heartbeat_at = $3, rows_count = $4, addresses = $5, rejected = $6, added = $7, \
             removed = $8, modified = $9 WHERE id = $1 AND status = 'running'",
        )
        .bind(import_id)
        .bind(forced as i64)
        .bind(t)
        .bind(rows)
        .bind(addresses)
        .bind(rejected)
        .bind(added)
        .bind(removed)
        .bind(modified)
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        if closed == 0 {
            return Err(StoreError::Invalid(format!(
                "directory import {import_id} is no longer running (taken over as abandoned)"
            )));
        }
        // Finding the other sources' rows scans the live table (no index on `import_id`, see
        // the ADR): 0.3 s at national scale, skipped when no other source is served.
        let others: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM directory_sources WHERE source <> $1")
                .bind(source)
                .fetch_one(&mut *w.txn)
                .await?
                .try_get("n")?;
        if others > 0 {
            sqlx::query(COPY_OTHER_SOURCES)
                .bind(source)
                .execute(&mut *w.txn)
                .await?;
        }
        sqlx::query("DROP TABLE directory_entries")
            .execute(&mut *w.txn)
            .await?;
        sqlx::query("ALTER TABLE directory_entries_next RENAME TO directory_entries")
            .execute(&mut *w.txn)
            .await?;
        self.directory_point(&mut w, source, import_id, t).await?;
        w.commit().await
    }

    /// Points `source` at generation `import_id`.
    async fn directory_point(
        &self,
        w: &mut WriteTxn<'_>,
        source: &str,
        import_id: i64,
        t: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO directory_sources (source, current_import, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (source) DO UPDATE SET current_import = $2, updated_at = $3",
        )
        .bind(source)
        .bind(import_id)
        .bind(t)
        .execute(&mut *w.txn)
        .await?;
        Ok(())
    }

    async fn directory_close_import(
        &self,
        import_id: i64,
        status: ImportStatus,
        rows: i64,
        addresses: i64,
        rejected: i64,
        message: &str,
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE directory_imports SET status = $2, finished_at = $3, rows_count = $4, \
             addresses = $5, rejected = $6, message = $7 WHERE id = $1",
        )
        .bind(import_id)
        .bind(status.as_str())
        .bind(now())
        .bind(rows)
        .bind(addresses)
        .bind(rejected)
        .bind(message)
        .execute(&mut *w.txn)
        .await?;
        if status != ImportStatus::Ok {
            sqlx::query("DROP TABLE IF EXISTS directory_entries_next")
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await
    }
    /// One import of the history.
    pub async fn directory_import(&self, import_id: i64) -> Result<ImportRecord> {
        let row = sqlx::query(
            "SELECT id, source, origin, status, forced, started_at, finished_at, rows_count, \
             addresses, rejected, added, removed, modified, message \
             FROM directory_imports WHERE id = $1",
        )
        .bind(import_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("directory import {import_id}")))?;
        import_from_row(&row)
    }

    /// The latest imports, newest first.
    pub async fn directory_history(&self, limit: i64) -> Result<Vec<ImportRecord>> {
        let rows = sqlx::query(
            "SELECT id, source, origin, status, forced, started_at, finished_at, rows_count, \
             addresses, rejected, added, removed, modified, message \
             FROM directory_imports ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(import_from_row).collect()
    }

    /// The lines an import rejected, in line order.
    pub async fn directory_import_rejects(&self, import_id: i64) -> Result<Vec<RejectedLine>> {
        let rows = sqlx::query(
            "SELECT line, kind, detail FROM directory_import_rejects WHERE import_id = $1 ORDER BY line",
        )
        .bind(import_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RejectedLine {
                    line: r.try_get("line")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// The addresses an import added, removed and modified.
    pub async fn directory_import_changes(&self, import_id: i64) -> Result<ImportChanges> {
        let rows = sqlx::query(
            "SELECT address_key, change FROM directory_import_changes WHERE import_id = $1 \
             ORDER BY address_key",
        )
        .bind(import_id)
        .fetch_all(self.pool())
        .await?;
        let mut changes = ImportChanges::default();
        for r in rows {
            let address: String = r.try_get("address_key")?;
            match r.try_get::<String, _>("change")?.as_str() {
                "added" => changes.added.push(address),
                "removed" => changes.removed.push(address),
                _ => changes.modified.push(address),
            }
        }
        Ok(changes)
    }

    /// Rows for an address, case-insensitive (one per structure the BAL is attached to).
    pub async fn directory_by_address(&self, address: &str) -> Result<Vec<DirectoryEntry>> {
        let rows = sqlx::query(concat!(
            current_entries!("e.address_key = $1"),
            " ORDER BY s.source, e.line"
        ))
        .bind(address_key(address))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Rows of a professional: `id` is a national id (`8` + RPPS, `0` + ADELI) or a bare
    /// RPPS (11 digits).
    pub async fn directory_by_national_id(&self, id: &str) -> Result<Vec<DirectoryEntry>> {
        let id = id.trim();
        let national_id = if id.len() == 11 && id.bytes().all(|b| b.is_ascii_digit()) {
            format!("8{id}")
        } else {
            id.to_string()
        };
        let rows = sqlx::query(concat!(
            current_entries!("e.national_id = $1"),
            " ORDER BY s.source, e.line"
        ))
        .bind(national_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Accent- and case-insensitive prefix search on name or first name, with filters.
    pub async fn directory_search_name(&self, query: &NameQuery) -> Result<Vec<DirectoryEntry>> {
        let prefix = fold_name(&query.name);
        if prefix.is_empty() {
            return Err(StoreError::Invalid(
                "a name search needs at least one letter".into(),
            ));
        }
        let first = query
            .first_name
            .as_deref()
            .map(fold_name)
            .unwrap_or_default();
        let profession = query.profession.as_deref().unwrap_or("").trim().to_string();
        let postcode = query.postcode.as_deref().unwrap_or("").trim().to_string();
        // A TRE_G15 code filters in SQL; a label (`Médecin`, any accents or case) is compared
        // folded in Rust, so the SQL LIMIT only applies without one.
        let is_code = profession.bytes().all(|b| b.is_ascii_digit());
        let code = if is_code {
            profession.clone()
        } else {
            String::new()
        };
        let label = if is_code {
            String::new()
        } else {
            fold_name(&profession)
        };
        let sql_limit = if query.limit > 0 && label.is_empty() {
            query.limit
        } else {
            i64::MAX
        };
        let statement = sqlx::query(NAME_SEARCH)
            .bind(prefix.clone())
            .bind(prefix_upper_bound(&prefix))
            .bind(first.clone())
            .bind(prefix_upper_bound(&first))
            .bind(postcode.clone())
            .bind(prefix_upper_bound(&postcode))
            .bind(code)
            .bind(sql_limit);
        let fetched = match self.engine() {
            Engine::Sqlite => statement.fetch_all(self.pool()).await?,
            Engine::Postgres => {
                // A generic plan: PostgreSQL otherwise re-plans this statement at every
                // execution (its generic estimate, blind to the empty filters, looks worse
                // than the custom one), and planning costs more than running it (0.4 ms
                // against 0.1 ms). `SET LOCAL` needs a transaction; sent with the `BEGIN`.
                let mut txn = self.pool().begin_with(GENERIC_PLAN_TXN).await?;
                let fetched = statement.fetch_all(&mut *txn).await?;
                txn.commit().await?;
                fetched
            }
        };
        let mut rows = Vec::with_capacity(fetched.len());
        for r in &fetched {
            rows.push(entry_from_row(r)?);
        }
        rows.sort_by_cached_key(|e| {
            (
                fold_name(&e.row.name),
                fold_name(&e.row.first_name),
                e.row.address_key(),
                e.source.clone(),
                e.line,
            )
        });
        rows.dedup_by(|a, b| a.source == b.source && a.line == b.line);
        let mut entries = Vec::new();
        for entry in rows {
            if !label.is_empty() && fold_name(&entry.row.profession_label) != label {
                continue;
            }
            entries.push(entry);
            if query.limit > 0 && entries.len() as i64 >= query.limit {
                break;
            }
        }
        Ok(entries)
    }

    /// Rows and distinct addresses per source and BAL type, of the data served now.
    pub async fn directory_counts(&self) -> Result<Vec<DirectoryCount>> {
        let rows = sqlx::query(
            "SELECT s.source, e.bal_type, COUNT(*) AS n, COUNT(DISTINCT e.address_key) AS a \
             FROM directory_entries e JOIN directory_sources s ON s.current_import = e.import_id \
             GROUP BY s.source, e.bal_type ORDER BY s.source, e.bal_type",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DirectoryCount {
                    source: r.try_get("source")?,
                    bal_type: r.try_get("bal_type")?,
                    rows: r.try_get("n")?,
                    addresses: r.try_get("a")?,
                })
            })
            .collect()
    }

    /// Replaces the rows of one address in a source that is refreshed entry by entry (FHIR),
    /// creating the source's standing generation on first use.
    pub async fn directory_refresh_entry(
        &self,
        source: &str,
        address: &str,
        rows: &[DirectoryRow],
    ) -> Result<()> {
        let import_id = match self.directory_current_import(source).await? {
            Some(current) => current.id,
            None => {
                let id = self
                    .directory_new_import(source, "entries refreshed one by one")
                    .await?;
                let t = now();
                let mut w = self.write_txn().await?;
                sqlx::query(
                    "UPDATE directory_imports SET status = 'ok', finished_at = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(t)
                .execute(&mut *w.txn)
                .await?;
                self.directory_point(&mut w, source, id, t).await?;
                w.commit().await?;
                id
            }
        };
        let mut w = self.write_txn().await?;
        sqlx::query("DELETE FROM directory_entries WHERE import_id = $1 AND address_key = $2")
            .bind(import_id)
            .bind(address_key(address))
            .execute(&mut *w.txn)
            .await?;
        for (rank, row) in rows.iter().enumerate() {
            bind_row(
                sqlx::query(INSERT_ONE.as_str()),
                import_id,
                rank as i64 + 1,
                row,
            )
            .execute(&mut *w.txn)
            .await?;
        }
        w.commit().await
    }
}

/// Incremental sync of a bulk source (LDAP by `modifyTimestamp`, migration 0007): the changed
/// entries' rows are merged into the generation the source serves, without a new generation.
impl Store {
    /// Where the next incremental run of `source` starts: the watermark (Unix seconds) and the
    /// number of incremental runs since the last full one. `None` when a full run is due: no
    /// watermark, or one saved for another origin (URL, base, filter) or for a generation the
    /// source no longer serves.
    pub async fn directory_sync_watermark(
        &self,
        source: &str,
        origin: &str,
    ) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query(SYNC_STATE)
            .bind(source)
            .bind(origin)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(Some((
                r.try_get("watermark")?,
                r.try_get("incremental_runs")?,
            ))),
            None => Ok(None),
        }
    }

    /// After a full run of `source` that the source now serves as `generation`: saves where
    /// the next incremental run starts, or forgets it (`None`: the server gave no timestamps,
    /// so every run stays full).
    pub async fn directory_set_sync_watermark(
        &self,
        source: &str,
        origin: &str,
        generation: i64,
        watermark: Option<i64>,
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        sqlx::query("DELETE FROM directory_sync_state WHERE source = $1")
            .bind(source)
            .execute(&mut *w.txn)
            .await?;
        if let Some(watermark) = watermark {
            sqlx::query(
                "INSERT INTO directory_sync_state (source, origin, generation, watermark, \
                 incremental_runs, updated_at) VALUES ($1, $2, $3, $4, 0, $5)",
            )
            .bind(source)
            .bind(origin)
            .bind(generation)
            .bind(watermark)
            .bind(now())
            .execute(&mut *w.txn)
            .await?;
        }
        w.commit().await
    }

    /// Merges the rows of the entries an incremental run found changed into the generation
    /// `source` serves, in one write transaction: each address they carry gets exactly their
    /// rows (added if the generation lacked it, modified if its rows differ). Addresses the
    /// run did not see stay as they are: deleted entries wait for the next full run. The run
    /// is recorded in the history (status `ok`, its own id, rows under the served generation)
    /// and the watermark moves to `watermark` if that is later. `None` if the watermark is no
    /// longer valid (see [`Store::directory_sync_watermark`]): a full run is due instead.
    /// `rows` carry their rank in the run.
    #[allow(clippy::too_many_arguments)]
    pub async fn directory_merge_entries(
        &self,
        source: &str,
        origin: &str,
        history_origin: &str,
        rows: &[(i64, DirectoryRow)],
        rejects: &[RejectedLine],
        rejected_total: i64,
        watermark: i64,
    ) -> Result<Option<ImportRecord>> {
        let t = now();
        let mut w = self.write_txn().await?;
        let Some(state) = sqlx::query(SYNC_STATE)
            .bind(source)
            .bind(origin)
            .fetch_optional(&mut *w.txn)
            .await?
        else {
            return Ok(None);
        };
        let generation: i64 = state.try_get("generation")?;
        let previous_watermark: i64 = state.try_get("watermark")?;
        let id = record_running_import(&mut w, source, history_origin, t).await?;
        let mut by_address: std::collections::BTreeMap<String, Vec<&(i64, DirectoryRow)>> =
            Default::default();
        for row in rows {
            by_address.entry(row.1.address_key()).or_default().push(row);
        }
        let (mut added, mut modified) = (0i64, 0i64);
        for (address, new_rows) in &by_address {
            let mut before: Vec<i64> = sqlx::query(
                "SELECT row_hash FROM directory_entries WHERE address_key = $1 AND import_id = $2",
            )
            .bind(address.as_str())
            .bind(generation)
            .fetch_all(&mut *w.txn)
            .await?
            .iter()
            .map(|r| r.try_get("row_hash"))
            .collect::<std::result::Result<_, _>>()?;
            let mut after: Vec<i64> = new_rows.iter().map(|(_, row)| row.digest()).collect();
            before.sort_unstable();
            after.sort_unstable();
            if before == after {
                continue;
            }
            let change = if before.is_empty() {
                added += 1;
                (added <= MAX_KEPT_CHANGES).then_some("added")
            } else {
                modified += 1;
                (modified <= MAX_KEPT_CHANGES).then_some("modified")
            };
            if let Some(change) = change {
                sqlx::query(
                    "INSERT INTO directory_import_changes (import_id, address_key, change) \
                     VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(address.as_str())
                .bind(change)
                .execute(&mut *w.txn)
                .await?;
            }
            sqlx::query("DELETE FROM directory_entries WHERE address_key = $1 AND import_id = $2")
                .bind(address.as_str())
                .bind(generation)
                .execute(&mut *w.txn)
                .await?;
            for (line, row) in new_rows {
                bind_row(sqlx::query(INSERT_ONE.as_str()), generation, *line, row)
                    .execute(&mut *w.txn)
                    .await?;
            }
        }
        for reject in rejects {
            sqlx::query(
                "INSERT INTO directory_import_rejects (import_id, line, kind, detail) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(reject.line)
            .bind(reject.kind.as_str())
            .bind(reject.detail.as_str())
            .execute(&mut *w.txn)
            .await?;
        }
        sqlx::query(
            "UPDATE directory_imports SET status = 'ok', finished_at = $2, heartbeat_at = $2, \
             rows_count = $3, addresses = $4, rejected = $5, added = $6, modified = $7 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(t)
        .bind(rows.len() as i64)
        .bind(by_address.len() as i64)
        .bind(rejected_total)
        .bind(added)
        .bind(modified)
        .execute(&mut *w.txn)
        .await?;
        sqlx::query(
            "UPDATE directory_sync_state SET watermark = $2, \
             incremental_runs = incremental_runs + 1, updated_at = $3 WHERE source = $1",
        )
        .bind(source)
        .bind(watermark.max(previous_watermark))
        .bind(t)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        self.directory_import(id).await.map(Some)
    }
}

/// RFC-less but essential: a truncated download must not wipe the directory. Returns why the
/// new generation is refused, if it is.
fn drop_guard(
    previous: Option<&ImportRecord>,
    rows: i64,
    options: FinishOptions,
) -> Option<String> {
    let previous = previous?;
    let floor = (previous.rows as f64 * (1.0 - options.max_drop)).ceil() as i64;
    if options.force || rows >= floor {
        return None;
    }
    Some(format!(
        "refused by the drop guard: {rows} rows against {} in import {} (more than {:.0} % fewer); \
         use --force to apply it anyway",
        previous.rows,
        previous.id,
        options.max_drop * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_to_ascii_lower_case_words() {
        assert_eq!(fold_name("Éloïse"), "eloise");
        assert_eq!(fold_name("CŒURDEROY"), "coeurderoy");
        assert_eq!(fold_name("D'ALMEIDA"), "d almeida");
        assert_eq!(fold_name("  de LA  FONTAINE "), "de la fontaine");
        assert_eq!(fold_name("Jean-Pierre"), "jean pierre");
        assert_eq!(fold_name("ØSTERGAARD"), "ostergaard");
        assert_eq!(fold_name("N’DIAYE"), "n diaye");
    }

    #[test]
    fn load_json_escapes_quotes_backslashes_and_controls() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\td’é");
        assert_eq!(out, "\"a\\\"b\\\\c\\u0009d’é\"");
        let row = DirectoryRow {
            address: "x@y".into(),
            ..Default::default()
        };
        let json = rows_json(7, &[(2, row)]);
        assert!(json.starts_with("[[[7,2,\"x@y\",\"\",\"\","), "{json}");
        assert!(json.contains("],[\"\",\"x@y\","), "{json}");
        assert!(json.ends_with("\"\"]]]"), "{json}");
        assert_eq!(json.matches(',').count(), PARAMS_PER_ROW - 1);
        assert_eq!(
            json.matches('[').count(),
            1 + PARAMS_PER_ROW.div_ceil(JSON_GROUP) + 1
        );
    }

    #[test]
    fn prefix_bound_sorts_after_every_extension() {
        let bound = prefix_upper_bound("mar");
        assert!("mar" < bound.as_str());
        assert!("martin zzz" < bound.as_str());
        assert!("mas" > bound.as_str());
    }

    #[test]
    fn digest_separates_fields() {
        let mut a = DirectoryRow {
            name: "ab".into(),
            first_name: "c".into(),
            ..Default::default()
        };
        let b = DirectoryRow {
            name: "a".into(),
            first_name: "bc".into(),
            ..Default::default()
        };
        assert_ne!(a.digest(), b.digest());
        let before = a.digest();
        a.service = "Cardiologie".into();
        assert_ne!(a.digest(), before);
    }

    #[test]
    fn drop_guard_refuses_large_drops_unless_forced() {
        let previous = ImportRecord {
            id: 1,
            source: "extraction".into(),
            origin: "x".into(),
            status: ImportStatus::Ok,
            forced: false,
            started_at: 0,
            finished_at: None,
            rows: 1000,
            addresses: 1000,
            rejected: 0,
            added: 0,
            removed: 0,
            modified: 0,
            message: None,
        };
        let guard = FinishOptions {
            max_drop: 0.10,
            force: false,
        };
        assert!(drop_guard(Some(&previous), 900, guard).is_none());
        assert!(drop_guard(Some(&previous), 899, guard).is_some());
        assert!(drop_guard(None, 1, guard).is_none());
        assert!(
            drop_guard(
                Some(&previous),
                1,
                FinishOptions {
                    force: true,
                    ..guard
                }
            )
            .is_none()
        );
    }
}
