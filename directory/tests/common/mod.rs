//! Helpers shared by the directory tests: stores on both engines and the fixtures.
#![allow(dead_code)]

pub mod http_stub;
pub mod slapd;

use std::collections::BTreeSet;
use std::path::PathBuf;

use mssante_directory::{ImportOptions, ImportReport, Progress, import_extraction};
use mssante_store::Store;
use mssante_testkit::{Engine, TestDb};

pub async fn open(engine: Engine) -> (Store, TestDb) {
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path())
        .await
        .expect("open store");
    (store, db)
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub const SAMPLE: &str = "Extraction_Correspondance_MSSante_sample.txt";
pub const SAMPLE_ZIP: &str = "Extraction_Correspondance_MSSante_sample.zip";
pub const CORRUPT: &str = "Extraction_Correspondance_MSSante_sample_corrupt.txt";
pub const DAY2: &str = "Extraction_Correspondance_MSSante_sample_day2.txt";

pub fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).expect("read fixture"))
        .expect("json")
}

pub const GUARDED: ImportOptions = ImportOptions {
    max_drop: 0.10,
    force: false,
};

pub async fn import(store: &Store, location: &str) -> ImportReport {
    import_extraction(store, location, GUARDED, &mut Progress::hidden())
        .await
        .unwrap_or_else(|e| panic!("import of {location} failed: {e:#}"))
}

pub async fn import_fixture(store: &Store, name: &str) -> ImportReport {
    import(store, fixture(name).to_str().unwrap()).await
}

/// Lower-cased addresses of a JSON array of strings.
pub fn address_set(value: &serde_json::Value) -> BTreeSet<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").trim().to_lowercase())
        .collect()
}

pub fn set_of(addresses: &[String]) -> BTreeSet<String> {
    addresses.iter().cloned().collect()
}
