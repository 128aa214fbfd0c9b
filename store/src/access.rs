//! Who may open which BAL (ADR 0012): the holder of a PER BAL by its national id, and the
//! identities granted access in `access_grants` — habilitations the operator records now,
//! delegations with narrower rights later (issue 14), in the same table.
//!
//! An identity is an opaque string (a PSC `SubjectNameID` or `preferred_username`): most are
//! `8`+RPPS, but staff enrolled outside RPPS have other forms, so nothing here parses it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AuditAction, AuditEvent, append_in};
use crate::bal::{Bal, BalStatus, BalType};
use crate::error::{Result, StoreError};
use crate::{Store, now};

/// RFC 4314 rights of a habilitation: everything a member of the structure does with its BAL
/// (read, flag, file, delete, post) but administering rights (`a`).
pub const HABILITATION_RIGHTS: &str = "lrswipkxte";
/// The holder's rights on their own BAL (RFC 4314 §2.1, `a` included).
pub const HOLDER_RIGHTS: &str = "lrswipkxtea";

/// Why an access row exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessOrigin {
    /// The holder of a PER BAL (no row: the BAL's national id).
    Holder,
    /// Granted by the operator on an ORG or CAB BAL.
    Habilitation,
    /// Granted by a BAL's holder (issue 14).
    Delegation,
}

impl AccessOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessOrigin::Holder => "holder",
            AccessOrigin::Habilitation => "habilitation",
            AccessOrigin::Delegation => "delegation",
        }
    }

    fn parse(text: &str) -> Result<AccessOrigin> {
        match text {
            "habilitation" => Ok(AccessOrigin::Habilitation),
            "delegation" => Ok(AccessOrigin::Delegation),
            other => Err(StoreError::Invalid(format!(
                "unknown access origin {other:?} in database"
            ))),
        }
    }
}

/// One row of `access_grants`, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessGrant {
    pub bal: String,
    pub national_id: String,
    pub origin: AccessOrigin,
    pub rights: String,
    /// Unix seconds after which the grant no longer opens the BAL; `None` = until revoked.
    pub not_after: Option<i64>,
    pub created_at: i64,
}

/// What an identity may do on the BAL it opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub bal: Bal,
    pub origin: AccessOrigin,
    pub rights: String,
}

/// Why an identity may not open a BAL. Protocols answer the same to the client for all of
/// them and log the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessRefusal {
    UnknownBal,
    Suspended,
    Closed,
    /// The BAL exists and is active; this identity holds no right on it.
    NoRight,
}

fn grant_from_row(row: &AnyRow) -> Result<AccessGrant> {
    Ok(AccessGrant {
        bal: row.try_get("address")?,
        national_id: row.try_get("grantee")?,
        origin: AccessOrigin::parse(&row.try_get::<String, _>("origin")?)?,
        rights: row.try_get("rights")?,
        not_after: row.try_get("not_after")?,
        created_at: row.try_get("created_at")?,
    })
}

fn check_identity(national_id: &str) -> Result<&str> {
    let id = national_id.trim();
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{national_id:?} is not a national identifier"
        )));
    }
    Ok(id)
}

impl Store {
    /// Records that `national_id` may open the ORG or CAB BAL `address` (a habilitation by
    /// the operator), until `not_after` when given. Granting again replaces the end date.
    pub async fn grant_habilitation(
        &self,
        address: &str,
        national_id: &str,
        not_after: Option<i64>,
    ) -> Result<AccessGrant> {
        let national_id = check_identity(national_id)?;
        let bal = self.bal(address).await?;
        match bal.bal_type {
            BalType::Org | BalType::Cab => {}
            BalType::Per => {
                return Err(StoreError::Invalid(format!(
                    "{} is a PER BAL: its holder opens it by national id; access for others \
                     is a delegation, not a habilitation",
                    bal.address
                )));
            }
            BalType::App => {
                return Err(StoreError::Invalid(format!(
                    "{} is an APP BAL: software logs in with its certificate or password, \
                     not a professional's identity",
                    bal.address
                )));
            }
        }
        if bal.status == BalStatus::Closed {
            return Err(StoreError::Invalid(format!("{} is closed", bal.address)));
        }
        let mut w = self.write_txn().await?;
        // Portable upsert: both engines support ON CONFLICT … DO UPDATE.
        sqlx::query(
            "INSERT INTO access_grants \
             (bal_id, grantee_kind, grantee, origin, rights, not_after, created_at) \
             VALUES ($1, 'national_id', $2, 'habilitation', $3, $4, $5) \
             ON CONFLICT (bal_id, grantee_kind, grantee, origin) \
             DO UPDATE SET not_after = excluded.not_after, rights = excluded.rights",
        )
        .bind(bal.id)
        .bind(national_id)
        .bind(HABILITATION_RIGHTS)
        .bind(not_after)
        .bind(now())
        .execute(&mut *w.txn)
        .await?;
        let mut event = AuditEvent::new(bal.id, "operator", AuditAction::Grant);
        event.detail = format!("{national_id} habilitation {HABILITATION_RIGHTS}");
        append_in(&mut w.txn, self.engine(), &event).await?;
        w.commit().await?;
        self.access_changed(bal.id).await;
        self.access_grants(Some(bal.address.as_str()), Some(national_id))
            .await?
            .into_iter()
            .find(|g| g.origin == AccessOrigin::Habilitation)
            .ok_or_else(|| StoreError::NotFound("the grant just written".into()))
    }

    /// Removes a habilitation; false when there was none.
    pub async fn revoke_habilitation(&self, address: &str, national_id: &str) -> Result<bool> {
        let national_id = check_identity(national_id)?;
        let bal = self.bal(address).await?;
        let mut w = self.write_txn().await?;
        let done = sqlx::query(
            "DELETE FROM access_grants WHERE bal_id = $1 AND grantee_kind = 'national_id' \
             AND grantee = $2 AND origin = 'habilitation'",
        )
        .bind(bal.id)
        .bind(national_id)
        .execute(&mut *w.txn)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let mut event = AuditEvent::new(bal.id, "operator", AuditAction::Revoke);
        event.detail = format!("{national_id} habilitation");
        append_in(&mut w.txn, self.engine(), &event).await?;
        w.commit().await?;
        self.access_changed(bal.id).await;
        Ok(true)
    }

    /// Grants to identities, optionally of one BAL and/or one identity, by BAL then identity.
    pub async fn access_grants(
        &self,
        address: Option<&str>,
        national_id: Option<&str>,
    ) -> Result<Vec<AccessGrant>> {
        let bal_id = match address {
            Some(address) => Some(self.bal(address).await?.id),
            None => None,
        };
        const SQL: &str = concat!(
            "SELECT b.address, g.grantee, g.origin, g.rights, g.not_after, g.created_at ",
            "FROM access_grants g JOIN bals b ON b.id = g.bal_id ",
            "WHERE g.grantee_kind = 'national_id' ",
            "AND ($1 IS NULL OR g.bal_id = $1) AND ($2 IS NULL OR g.grantee = $2) ",
            "ORDER BY b.address, g.grantee, g.origin"
        );
        let rows = sqlx::query(SQL)
            .bind(bal_id)
            .bind(national_id.map(str::trim))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// May `national_id` open `address` now? The holder of a PER BAL by its national id, or
    /// a grant that has not ended. `Ok(Err(_))` is a refusal; `Err(_)` a storage failure.
    pub async fn access_for_identity(
        &self,
        national_id: &str,
        address: &str,
    ) -> Result<std::result::Result<Access, AccessRefusal>> {
        let Some(bal) = self.find_bal(address).await? else {
            return Ok(Err(AccessRefusal::UnknownBal));
        };
        match bal.status {
            BalStatus::Active => {}
            BalStatus::Suspended => return Ok(Err(AccessRefusal::Suspended)),
            BalStatus::Closed => return Ok(Err(AccessRefusal::Closed)),
        }
        if bal.bal_type == BalType::Per && bal.national_id.as_deref() == Some(national_id) {
            self.record_login(bal.id).await?;
            return Ok(Ok(Access {
                bal,
                origin: AccessOrigin::Holder,
                rights: HOLDER_RIGHTS.into(),
            }));
        }
        // A habilitation wins over a delegation when both exist (its rights are wider).
        let row = sqlx::query(
            "SELECT origin, rights FROM access_grants WHERE bal_id = $1 \
             AND grantee_kind = 'national_id' AND grantee = $2 \
             AND (not_after IS NULL OR not_after > $3) ORDER BY origin DESC LIMIT 1",
        )
        .bind(bal.id)
        .bind(national_id)
        .bind(now())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Err(AccessRefusal::NoRight));
        };
        self.record_login(bal.id).await?;
        Ok(Ok(Access {
            origin: AccessOrigin::parse(&row.try_get::<String, _>("origin")?)?,
            rights: row.try_get("rights")?,
            bal,
        }))
    }
}

impl Store {
    /// Every active BAL `national_id` may open now, with its rights: the PER BALs it holds,
    /// then its grants that have not ended (a habilitation wins over a delegation).
    pub async fn accesses_of_identity(&self, national_id: &str) -> Result<Vec<Access>> {
        let mut out: Vec<Access> = Vec::new();
        let held = sqlx::query(
            "SELECT address FROM bals WHERE bal_type = 'PER' AND national_id = $1 \
             AND status = 'active' ORDER BY address",
        )
        .bind(national_id)
        .fetch_all(self.pool())
        .await?;
        let granted = sqlx::query(
            "SELECT DISTINCT b.address FROM access_grants g JOIN bals b ON b.id = g.bal_id \
             WHERE g.grantee_kind = 'national_id' AND g.grantee = $1 AND b.status = 'active' \
             AND (g.not_after IS NULL OR g.not_after > $2) ORDER BY b.address",
        )
        .bind(national_id)
        .bind(now())
        .fetch_all(self.pool())
        .await?;
        for row in held.iter().chain(granted.iter()) {
            let address: String = row.try_get("address")?;
            if out.iter().any(|a| a.bal.address.as_str() == address) {
                continue;
            }
            if let Ok(access) = self.access_for_identity(national_id, &address).await? {
                out.push(access);
            }
        }
        Ok(out)
    }
}
