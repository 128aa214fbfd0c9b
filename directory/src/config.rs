//! The `[directory]` section of the configuration file.

use serde::{Deserialize, Serialize};

/// Default of `max_drop`: an import with 10 % fewer rows than the current one is refused.
pub const DEFAULT_MAX_DROP: f64 = 0.10;

/// ```toml
/// [directory]
/// extraction = "https://example.invalid/Extraction_Correspondance_MSSante.zip"
/// max_drop = 0.10
///
/// [directory.ldap]
/// url = "ldaps://annuaire.example:636"
/// base = "dc=annuaire,dc=sante,dc=test"
/// full_every = 24   # incremental syncs between two full ones
///
/// [directory.fhir]
/// base_url = "https://gateway.api.esante.gouv.fr/fhir/v2"
/// api_key = "..."
/// ```
#[derive(Deserialize, Serialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// Where `directory import` reads the extraction when given no location: a file path or
    /// an `https://` URL.
    pub extraction: Option<String>,
    /// Largest drop in row count (a fraction) an import may bring without `--force`.
    pub max_drop: Option<f64>,
    pub ldap: Option<LdapConfig>,
    pub fhir: Option<FhirConfig>,
    pub publication: Option<PublicationConfig>,
}

impl DirectoryConfig {
    pub fn max_drop(&self) -> f64 {
        self.max_drop.unwrap_or(DEFAULT_MAX_DROP)
    }
}

#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:389` (with `starttls = true` to upgrade) or `ldaps://host:636`.
    pub url: String,
    pub base: String,
    #[serde(default = "default_filter")]
    pub filter: String,
    /// Simple bind (RFC 4513 §5.2); anonymous when absent.
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    #[serde(default)]
    pub starttls: bool,
    /// RFC 2696 page size.
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// Incremental syncs (by `modifyTimestamp`) between two full ones; a full sync also runs
    /// on `sync-ldap --full`. Only a full sync removes deleted entries. 0: always full.
    #[serde(default = "default_full_every")]
    pub full_every: u32,
    #[serde(default)]
    pub mapping: LdapMapping,
}

fn default_filter() -> String {
    "(objectClass=*)".into()
}

fn default_page_size() -> i32 {
    500
}

/// With an hourly cron job, one full sync a day.
pub const DEFAULT_FULL_EVERY: u32 = 24;

fn default_full_every() -> u32 {
    DEFAULT_FULL_EVERY
}

/// Which LDAP attribute holds which directory field. The defaults match the fixtures' LDIF
/// (inetOrgPerson and organization of the standard schema).
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct LdapMapping {
    pub mail: String,
    /// RPPS or ADELI number.
    pub pp_id: String,
    /// `RPPS` or `ADELI`: the kind of `pp_id` (RPPS when absent).
    pub pp_id_kind: String,
    pub profession: String,
    /// PER or ORG.
    pub bal_type: String,
    pub name: String,
    pub first_name: String,
    /// Structure name (raison sociale); on organization entries, the structure id and name.
    pub structure_name: String,
    pub structure_id: String,
    pub service: String,
    pub postcode: String,
    pub department: String,
    /// Attribute holding per-BAL details (`bal=<address>;structure=<id>;service=…;demat=…`)
    /// that pair each address of a person with its structure.
    pub row_details: String,
}

impl Default for LdapMapping {
    fn default() -> LdapMapping {
        LdapMapping {
            mail: "mail".into(),
            pp_id: "employeeNumber".into(),
            pp_id_kind: "employeeType".into(),
            profession: "title".into(),
            bal_type: "businessCategory".into(),
            name: "sn".into(),
            first_name: "givenName".into(),
            structure_name: "o".into(),
            structure_id: "departmentNumber".into(),
            service: "ou".into(),
            postcode: "postalCode".into(),
            department: "st".into(),
            row_details: "description".into(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct FhirConfig {
    /// `https://…/fhir/v2`.
    pub base_url: String,
    /// Sent as the `ESANTE-API-KEY` header.
    pub api_key: Option<String>,
    /// Client-side rate limit (the API allows 17 requests/s).
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
}

fn default_rate() -> u32 {
    17
}

#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct PublicationConfig {
    /// FHIR base the PATCH requests go to.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Attempts before an outbox item is marked failed.
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
}

fn default_attempts() -> i64 {
    10
}
