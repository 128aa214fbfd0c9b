//! A row of the local copy (`directory_entries`): its columns, its digest, and how it is bound
//! into and read back from SQL.

use std::fmt::Write as _;
use std::sync::LazyLock;

use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::{Any, AnyArguments, AnyRow};

use super::name_folding::fold_name;
use crate::error::Result;

/// A row of the local copy as every source gives it (the national extraction, an LDAP
/// directory, the FHIR API): one BAL and the professional or structure behind it, attached to
/// one structure. Absent values are empty strings. How a source's format maps to these fields
/// is the source reader's business (the `directory` crate); the store only stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryRow {
    /// BAL type: PER, ORG, APP, CAB.
    pub bal_type: String,
    /// The BAL's address, as written in the source (the key is its lower-cased form).
    pub address: String,
    /// Type of the professional's identifier: 8 = RPPS, 0 = ADELI.
    pub pp_id_type: String,
    pub pp_id: String,
    /// National id of the professional: type + identifier (`8` + RPPS).
    pub national_id: String,
    /// Type of the structure's identifier: 1 FINESS, 3 SIRET, 4 RPPS rang.
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
    /// The structure's registered name.
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

/// The columns of [`DirectoryRow`] in the table, in the order of [`DirectoryRow::values`]; a
/// macro so that `concat!` keeps the queries `&'static str`.
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
pub(super) use row_columns;

impl DirectoryRow {
    /// The values in the order of the table's columns ([`row_columns`]) and of the digest:
    /// changing it would make every stored row look modified at the next import.
    pub(super) fn values(&self) -> [&str; 31] {
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
    pub(super) fn digest(&self) -> i64 {
        let mut hasher = Sha256::new();
        for field in self.values() {
            hasher.update(field.as_bytes());
            hasher.update([0x1f]); // unit separator: ("ab","c") and ("a","bc") differ
        }
        let bytes = hasher.finalize();
        i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
    }

    pub(super) fn from_db(r: &AnyRow) -> Result<DirectoryRow> {
        Ok(DirectoryRow {
            bal_type: r.try_get("bal_type")?,
            address: r.try_get("address")?,
            pp_id_type: r.try_get("pp_id_type")?,
            pp_id: r.try_get("pp_id")?,
            national_id: r.try_get("national_id")?,
            structure_id_type: r.try_get("structure_id_type")?,
            structure_id: r.try_get("structure_id")?,
            service: r.try_get("service")?,
            civility: r.try_get("civility")?,
            name: r.try_get("name")?,
            first_name: r.try_get("first_name")?,
            profession_category: r.try_get("profession_category")?,
            profession_category_label: r.try_get("profession_category_label")?,
            profession_code: r.try_get("profession_code")?,
            profession_label: r.try_get("profession_label")?,
            skill_code: r.try_get("skill_code")?,
            skill_label: r.try_get("skill_label")?,
            dematerialisation: r.try_get("dematerialisation")?,
            structure_name: r.try_get("structure_name")?,
            structure_brand: r.try_get("structure_brand")?,
            addr_l2: r.try_get("addr_l2")?,
            addr_l3: r.try_get("addr_l3")?,
            addr_number: r.try_get("addr_number")?,
            addr_number_complement: r.try_get("addr_number_complement")?,
            addr_street_type: r.try_get("addr_street_type")?,
            addr_street: r.try_get("addr_street")?,
            addr_l5: r.try_get("addr_l5")?,
            addr_l6: r.try_get("addr_l6")?,
            postcode: r.try_get("postcode")?,
            department: r.try_get("department")?,
            country: r.try_get("country")?,
        })
    }
}

/// The lookup form of an address: trimmed and lower-cased (no two BALs differ only by case).
pub fn address_key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Parameters bound per row: import id, line, three keys, digest and the 31 columns.
pub(super) const PARAMS_PER_ROW: usize = 37;

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
pub(super) static INSERT_ONE: LazyLock<String> =
    LazyLock::new(|| insert_sql("directory_entries", 1));

type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

pub(super) fn bind_row<'q>(
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
    for field in row.values() {
        q = q.bind(field.to_string());
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
