//! BALs (boîtes aux lettres): types, national identifiers and life cycle (docs/mssante.md §2).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::address::Address;
use crate::error::{Result, StoreError, duplicate_as};
use crate::folder::{DEFAULT_FOLDERS, insert_folder, subscribe_in};
use crate::{Store, now};

/// TRE_R257-TypeBAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalType {
    /// One professional, keyed by national id.
    Per,
    /// A structure (FINESS / SIRET), shared by the professionals it habilitates.
    Org,
    /// A structure's software (lab system, DPI).
    App,
    /// A practice (cabinet).
    Cab,
}

impl BalType {
    pub fn as_str(self) -> &'static str {
        match self {
            BalType::Per => "PER",
            BalType::Org => "ORG",
            BalType::App => "APP",
            BalType::Cab => "CAB",
        }
    }

    pub fn parse(s: &str) -> Result<BalType> {
        match s.to_ascii_uppercase().as_str() {
            "PER" => Ok(BalType::Per),
            "ORG" => Ok(BalType::Org),
            "APP" => Ok(BalType::App),
            "CAB" => Ok(BalType::Cab),
            _ => Err(StoreError::Invalid(format!(
                "unknown BAL type {s:?}: expected PER, ORG, APP or CAB"
            ))),
        }
    }
}

/// Life cycle of a BAL (docs/mssante.md §2): active → suspended ⇄ active, any → closed (final).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalStatus {
    Active,
    Suspended,
    Closed,
}

impl BalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BalStatus::Active => "active",
            BalStatus::Suspended => "suspended",
            BalStatus::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Result<BalStatus> {
        match s {
            "active" => Ok(BalStatus::Active),
            "suspended" => Ok(BalStatus::Suspended),
            "closed" => Ok(BalStatus::Closed),
            _ => Err(StoreError::Invalid(format!(
                "unknown BAL status {s:?} in database"
            ))),
        }
    }
}

/// What `bal create` is given.
#[derive(Clone, Debug)]
pub struct NewBal {
    pub address: String,
    pub bal_type: BalType,
    /// RPPS (11 digits) of a PER holder; stored as national id `8` + RPPS.
    pub rpps: Option<String>,
    /// ADELI (9 digits) of a PER holder without RPPS; stored as `0` + ADELI.
    pub adeli: Option<String>,
    pub finess: Option<String>,
    pub siret: Option<String>,
    pub display_name: Option<String>,
    /// argon2id PHC string (see [`crate::hash_password`]).
    pub password_hash: Option<String>,
    pub liste_rouge: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bal {
    pub id: i64,
    pub address: Address,
    pub bal_type: BalType,
    pub national_id: Option<String>,
    pub finess: Option<String>,
    pub siret: Option<String>,
    pub display_name: Option<String>,
    pub status: BalStatus,
    pub has_password: bool,
    pub liste_rouge: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub status_changed_at: i64,
}

/// Columns read into a [`Bal`]; a macro so that `concat!` keeps the queries `&'static str`.
macro_rules! bal_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "address, ",
            $p,
            "bal_type, ",
            $p,
            "national_id, ",
            $p,
            "finess, ",
            $p,
            "siret, ",
            $p,
            "display_name, ",
            $p,
            "status, ",
            $p,
            "password_hash, ",
            $p,
            "liste_rouge, ",
            $p,
            "created_at, ",
            $p,
            "updated_at, ",
            $p,
            "status_changed_at"
        )
    };
}

fn bal_from_row(r: &AnyRow) -> Result<Bal> {
    let address: String = r.try_get("address")?;
    let password_hash: Option<String> = r.try_get("password_hash")?;
    Ok(Bal {
        id: r.try_get("id")?,
        address: Address::parse(&address)?,
        bal_type: BalType::parse(&r.try_get::<String, _>("bal_type")?)?,
        national_id: r.try_get("national_id")?,
        finess: r.try_get("finess")?,
        siret: r.try_get("siret")?,
        display_name: r.try_get("display_name")?,
        status: BalStatus::parse(&r.try_get::<String, _>("status")?)?,
        has_password: password_hash.is_some(),
        liste_rouge: r.try_get::<i64, _>("liste_rouge")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        status_changed_at: r.try_get("status_changed_at")?,
    })
}

fn digits(what: &str, value: &str, len: usize) -> Result<String> {
    let v = value.trim();
    if v.len() != len || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::Invalid(format!(
            "{what} must be {len} digits (got {value:?})"
        )));
    }
    Ok(v.to_string())
}

/// Checks the identifiers a BAL type requires and returns the national id to store.
fn national_id_for(new: &NewBal) -> Result<Option<String>> {
    let rpps = new
        .rpps
        .as_deref()
        .map(|v| digits("RPPS", v, 11))
        .transpose()?;
    let adeli = new
        .adeli
        .as_deref()
        .map(|v| digits("ADELI", v, 9))
        .transpose()?;
    let has_structure = new.finess.is_some() || new.siret.is_some();
    match new.bal_type {
        BalType::Per => match (rpps, adeli) {
            (Some(r), None) => Ok(Some(format!("8{r}"))),
            (None, Some(a)) => Ok(Some(format!("0{a}"))),
            (Some(_), Some(_)) => Err(StoreError::Invalid(
                "a PER BAL has one national id: give --rpps or --adeli, not both".into(),
            )),
            (None, None) => Err(StoreError::Invalid(
                "a PER BAL needs the holder's national id: --rpps (or --adeli)".into(),
            )),
        },
        BalType::Org | BalType::App if !has_structure => Err(StoreError::Invalid(format!(
            "an {} BAL belongs to a structure: give --finess (or --siret)",
            new.bal_type.as_str()
        ))),
        _ if rpps.is_some() || adeli.is_some() => Err(StoreError::Invalid(format!(
            "--rpps/--adeli identify a professional's PER BAL, not an {} BAL",
            new.bal_type.as_str()
        ))),
        _ => Ok(None),
    }
}

impl Store {
    /// Creates a BAL and its special-use folders (INBOX, Sent, Drafts, Trash) in one
    /// transaction.
    pub async fn create_bal(&self, new: &NewBal) -> Result<Bal> {
        let address = Address::parse(&new.address)?;
        let national_id = national_id_for(new)?;
        let finess = new
            .finess
            .as_deref()
            .map(|v| digits("FINESS", v, 9))
            .transpose()?;
        let siret = new
            .siret
            .as_deref()
            .map(|v| digits("SIRET", v, 14))
            .transpose()?;
        let domain_id = self.domain_id(address.domain()).await?.ok_or_else(|| {
            StoreError::Invalid(format!(
                "domain {} is not a local domain: add it first with `mssante domain add {}`",
                address.domain(),
                address.domain()
            ))
        })?;
        if let Some(bal) = self.alias_target(&address).await? {
            return Err(StoreError::Duplicate(format!(
                "{address}: already an alias of {} (`mssante bal alias remove` first)",
                bal.address
            )));
        }
        let t = now();
        let mut w = self.write_txn().await?;
        let row = sqlx::query(
            "INSERT INTO bals (address, domain_id, bal_type, national_id, finess, siret, display_name, \
             status, password_hash, liste_rouge, created_at, updated_at, status_changed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $10, $10) RETURNING id",
        )
        .bind(address.as_str())
        .bind(domain_id)
        .bind(new.bal_type.as_str())
        .bind(national_id)
        .bind(finess)
        .bind(siret)
        .bind(new.display_name.clone())
        .bind(new.password_hash.clone())
        .bind(new.liste_rouge as i64)
        .bind(t)
        .fetch_one(&mut *w.txn)
        .await
        .map_err(duplicate_as(&format!("BAL {address}")))?;
        let bal_id: i64 = row.try_get("id")?;
        for (name, special_use) in DEFAULT_FOLDERS {
            insert_folder(&mut w.txn, bal_id, name, special_use).await?;
            subscribe_in(&mut w.txn, bal_id, name).await?;
        }
        w.commit().await?;
        self.bal(address.as_str()).await
    }

    /// Looks a BAL up by address (any case).
    pub async fn find_bal(&self, address: &str) -> Result<Option<Bal>> {
        let Ok(address) = Address::parse(address) else {
            return Ok(None);
        };
        Ok(self.find_bal_with_hash(&address).await?.map(|(bal, _)| bal))
    }

    /// A BAL and whether it is over its quota already (`over_quota(id, 0)`), in one query
    /// (the RCPT TO path).
    pub(crate) async fn find_bal_and_fullness(
        &self,
        address: &Address,
    ) -> Result<Option<(Bal, bool)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            bal_columns!(""),
            ", CAST(CASE WHEN quota_bytes IS NOT NULL AND used_bytes > quota_bytes \
             THEN 1 ELSE 0 END AS BIGINT) AS over_quota FROM bals WHERE address = $1"
        ))
        .bind(address.as_str());
        // Every RCPT runs it: on a kept connection (ADR 0052).
        let row = self.fetch_all_kept(row).await?.into_iter().next();
        match row {
            Some(r) => Ok(Some((
                bal_from_row(&r)?,
                r.try_get::<i64, _>("over_quota")? == 1,
            ))),
            None => Ok(None),
        }
    }

    /// A BAL and its password hash, in one query (the login path).
    pub(crate) async fn find_bal_with_hash(
        &self,
        address: &Address,
    ) -> Result<Option<(Bal, Option<String>)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            bal_columns!(""),
            " FROM bals WHERE address = $1"
        ))
        .bind(address.as_str())
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => Ok(Some((bal_from_row(&r)?, r.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    /// A BAL by its id.
    pub async fn bal_by_id(&self, id: i64) -> Result<Option<Bal>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            bal_columns!(""),
            " FROM bals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(bal_from_row).transpose()
    }

    /// Like [`Store::find_bal`], with a "not found" error naming the address.
    pub async fn bal(&self, address: &str) -> Result<Bal> {
        self.find_bal(address)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("BAL {address}")))
    }

    /// All BALs, optionally of one domain, ordered by address.
    pub async fn list_bals(&self, domain: Option<&str>) -> Result<Vec<Bal>> {
        let rows = match domain {
            Some(d) => {
                sqlx::query(concat!(
                    "SELECT ",
                    bal_columns!("b."),
                    " FROM bals b JOIN domains d ON d.id = b.domain_id WHERE d.name = $1 ORDER BY b.address"
                ))
                .bind(d.to_lowercase())
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(concat!("SELECT ", bal_columns!(""), " FROM bals ORDER BY address"))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(bal_from_row).collect()
    }

    /// Moves a BAL along its life cycle. Closed is final; suspending a suspended BAL or
    /// reactivating an active one is refused so that scripts notice their mistake.
    pub async fn set_bal_status(&self, address: &str, to: BalStatus) -> Result<Bal> {
        let bal = self.bal(address).await?;
        let allowed = match (bal.status, to) {
            (BalStatus::Closed, _) => false,
            (BalStatus::Active, BalStatus::Suspended) => true,
            (BalStatus::Suspended, BalStatus::Active) => true,
            (_, BalStatus::Closed) => true,
            _ => false,
        };
        if !allowed {
            return Err(StoreError::Invalid(format!(
                "BAL {} is {}: cannot make it {}",
                bal.address,
                bal.status.as_str(),
                to.as_str()
            )));
        }
        let t = now();
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE bals SET status = $1, updated_at = $2, status_changed_at = $2 WHERE id = $3",
        )
        .bind(to.as_str())
        .bind(t)
        .bind(bal.id)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        self.auth_cache().forget(bal.address.as_str());
        self.bal(address).await
    }

    /// Replaces a BAL's password hash; cached verifications of the old one stop counting.
    pub async fn set_bal_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let bal = self.bal(address).await?;
        if bal.status == BalStatus::Closed {
            return Err(StoreError::Invalid(format!(
                "BAL {} is closed",
                bal.address
            )));
        }
        let mut w = self.write_txn().await?;
        sqlx::query("UPDATE bals SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now())
            .bind(bal.id)
            .execute(&mut *w.txn)
            .await?;
        w.commit().await?;
        self.auth_cache().forget(bal.address.as_str());
        Ok(())
    }

    /// Sets (or removes, with `None`) a BAL's storage quota in bytes (RFC 9208 STORAGE).
    pub async fn set_bal_quota(&self, address: &str, bytes: Option<u64>) -> Result<Bal> {
        let bal = self.bal(address).await?;
        let mut w = self.write_txn().await?;
        sqlx::query("UPDATE bals SET quota_bytes = $1, updated_at = $2 WHERE id = $3")
            .bind(bytes.map(|b| b as i64))
            .bind(now())
            .bind(bal.id)
            .execute(&mut *w.txn)
            .await?;
        w.commit().await?;
        Ok(bal)
    }

    /// Bytes used by a BAL across its folders, and its quota (RFC 9208 STORAGE). The usage
    /// is a running counter, not a sum over the mailbox: the statements that add copies add
    /// their bytes (ADR 0049), triggers on `mailbox_messages` take removals off (migration 0014).
    pub async fn bal_usage(&self, bal_id: i64) -> Result<(u64, Option<u64>)> {
        let row = sqlx::query("SELECT used_bytes, quota_bytes FROM bals WHERE id = $1")
            .bind(bal_id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok((0, None));
        };
        Ok((
            row.try_get::<i64, _>("used_bytes")?.max(0) as u64,
            row.try_get::<Option<i64>, _>("quota_bytes")?
                .map(|q| q as u64),
        ))
    }

    /// Whether storing `extra` more bytes would take the BAL over its quota (one row read).
    pub async fn over_quota(&self, bal_id: i64, extra: u64) -> Result<bool> {
        let (used, quota) = self.bal_usage(bal_id).await?;
        Ok(quota.is_some_and(|quota| used + extra > quota))
    }

    /// Whether the account logged in as `auth_bal_id` may use `sender` as envelope sender:
    /// its own BAL, or a BAL delegated to it with the send right (`0`, ADR 0016).
    pub async fn may_send_as(&self, auth_bal_id: i64, sender: &Address) -> Result<bool> {
        let Some(bal) = self.find_bal(sender.as_str()).await? else {
            return Ok(false);
        };
        if bal.status != BalStatus::Active {
            return Ok(false);
        }
        if bal.id == auth_bal_id {
            return Ok(true);
        }
        let Some(auth) = self.bal_by_id(auth_bal_id).await? else {
            return Ok(false);
        };
        let principals = self.principals(&auth, None).await?;
        Ok(self
            .delegations_to(&principals)
            .await?
            .iter()
            .any(|d| d.bal_id == bal.id && d.any_rights().has(crate::rights::SEND_RIGHT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per(rpps: Option<&str>, adeli: Option<&str>) -> NewBal {
        NewBal {
            address: "a@b.mssante.fr".into(),
            bal_type: BalType::Per,
            rpps: rpps.map(Into::into),
            adeli: adeli.map(Into::into),
            finess: None,
            siret: None,
            display_name: None,
            password_hash: None,
            liste_rouge: false,
        }
    }

    #[test]
    fn per_national_id_is_prefixed() {
        assert_eq!(
            national_id_for(&per(Some("10003456789"), None))
                .unwrap()
                .unwrap(),
            "810003456789"
        );
        assert_eq!(
            national_id_for(&per(None, Some("751234567")))
                .unwrap()
                .unwrap(),
            "0751234567"
        );
    }

    #[test]
    fn per_needs_exactly_one_valid_id() {
        assert!(national_id_for(&per(None, None)).is_err());
        assert!(national_id_for(&per(Some("123"), None)).is_err());
        assert!(national_id_for(&per(Some("1000345678a"), None)).is_err());
        assert!(national_id_for(&per(Some("10003456789"), Some("751234567"))).is_err());
    }

    #[test]
    fn org_needs_a_structure_and_no_rpps() {
        let mut org = per(None, None);
        org.bal_type = BalType::Org;
        assert!(national_id_for(&org).is_err());
        org.finess = Some("750712184".into());
        assert_eq!(national_id_for(&org).unwrap(), None);
        org.rpps = Some("10003456789".into());
        assert!(national_id_for(&org).is_err());
    }
}
