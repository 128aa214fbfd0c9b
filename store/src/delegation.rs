//! Delegations (issue 14, ADR 0016): a BAL's holder (or the operator) lets a grantee work in
//! the BAL with RFC 4314 rights, optionally only in some folders and until an end date. They
//! are rows of `access_grants` with origin `delegation` (one access model with habilitations,
//! ADR 0012), per-folder rights in `access_grant_folders`, and every change is written to the
//! audit trail in the same transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AuditAction, AuditEvent, append_in};
use crate::bal::{Bal, BalStatus, BalType};
use crate::error::{Result, StoreError};
use crate::rights::{Grantee, NamedRights, Rights};
use crate::{Store, now};

/// Rights of a delegation on one folder (and its subfolders).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRights {
    pub folder: String,
    pub rights: Rights,
}

/// One delegation as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    pub grant_id: i64,
    pub bal_id: i64,
    pub bal: String,
    pub grantee: Grantee,
    /// Rights on every folder not listed in `folders`; empty when only those folders open.
    pub rights: Rights,
    pub folders: Vec<FolderRights>,
    /// Unix seconds after which the delegation ends; `None` = until revoked.
    pub not_after: Option<i64>,
    pub created_at: i64,
}

impl Delegation {
    /// Rights on `folder`: those of the longest listed folder that is it or one of its
    /// parents, else the delegation's own.
    pub fn rights_on(&self, folder: &str) -> Rights {
        self.folders
            .iter()
            .filter(|f| {
                folder == f.folder
                    || (folder.starts_with(f.folder.as_str())
                        && folder.as_bytes().get(f.folder.len()) == Some(&b'/'))
            })
            .max_by_key(|f| f.folder.len())
            .map_or(self.rights, |f| f.rights)
    }

    /// Union of the rights on any folder (what MYRIGHTS-like summaries and SMTP read).
    pub fn any_rights(&self) -> Rights {
        self.folders
            .iter()
            .fold(self.rights, |acc, f| acc.union(f.rights))
    }

    pub fn is_active(&self, at: i64) -> bool {
        self.not_after.is_none_or(|end| end > at)
    }

    /// `secretary`, `lrs`, or `INBOX:read Sent:lrs` when restricted to folders.
    pub fn rights_text(&self) -> String {
        let named = |r: Rights| match NamedRights::of(r) {
            Some(n) => n.name().to_string(),
            None if r.is_empty() => "none".into(),
            None => r.to_string(),
        };
        let mut parts = Vec::new();
        if !self.rights.is_empty() || self.folders.is_empty() {
            parts.push(named(self.rights));
        }
        for f in &self.folders {
            parts.push(format!("{}:{}", f.folder, named(f.rights)));
        }
        parts.join(" ")
    }
}

/// A delegation to record (`grant_delegation`).
#[derive(Clone, Debug)]
pub struct NewDelegation<'a> {
    pub bal: &'a str,
    pub grantee: &'a Grantee,
    pub rights: Rights,
    /// When not empty, the delegation opens only these folders (and their subfolders).
    pub folders: &'a [String],
    pub not_after: Option<i64>,
    /// Who grants (for the audit trail): `operator`, a BAL address or a PSC identity.
    pub author: &'a str,
    pub client: &'a str,
}

/// `SELECT` of a delegation row and its BAL's address, then the rest of the query; a macro so
/// that `concat!` keeps the queries `&'static str`.
macro_rules! select_grants {
    ($($rest:literal),*) => {
        concat!(
            "SELECT g.id, g.bal_id, b.address, g.grantee_kind, g.grantee, g.rights, g.not_after, ",
            "g.created_at FROM access_grants g JOIN bals b ON b.id = g.bal_id WHERE g.origin = 'delegation' ",
            $($rest),*
        )
    };
}

fn delegation_from_row(r: &AnyRow) -> Result<Delegation> {
    Ok(Delegation {
        grant_id: r.try_get("id")?,
        bal_id: r.try_get("bal_id")?,
        bal: r.try_get("address")?,
        grantee: Grantee::from_columns(
            &r.try_get::<String, _>("grantee_kind")?,
            r.try_get("grantee")?,
        )?,
        rights: Rights::from_stored(&r.try_get::<String, _>("rights")?),
        folders: Vec::new(),
        not_after: r.try_get("not_after")?,
        created_at: r.try_get("created_at")?,
    })
}

type Txn = sqlx::Transaction<'static, sqlx::Any>;

async fn grant_row(txn: &mut Txn, bal_id: i64, grantee: &Grantee) -> Result<Option<Delegation>> {
    let sql = select_grants!("AND g.bal_id = $1 AND g.grantee_kind = $2 AND g.grantee = $3");
    let row = sqlx::query(sql)
        .bind(bal_id)
        .bind(grantee.kind())
        .bind(grantee.id())
        .fetch_optional(&mut **txn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut d = delegation_from_row(&row)?;
    d.folders = folder_rows(&mut **txn, d.grant_id).await?;
    Ok(Some(d))
}

async fn folder_rows<'e, E>(executor: E, grant_id: i64) -> Result<Vec<FolderRights>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT folder, rights FROM access_grant_folders WHERE grant_id = $1 ORDER BY folder",
    )
    .bind(grant_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FolderRights {
                folder: r.try_get("folder")?,
                rights: Rights::from_stored(&r.try_get::<String, _>("rights")?),
            })
        })
        .collect()
}

async fn set_folder_row(txn: &mut Txn, grant_id: i64, folder: &str, rights: Rights) -> Result<()> {
    sqlx::query(
        "INSERT INTO access_grant_folders (grant_id, folder, rights) VALUES ($1, $2, $3) \
         ON CONFLICT (grant_id, folder) DO UPDATE SET rights = excluded.rights",
    )
    .bind(grant_id)
    .bind(folder)
    .bind(rights.to_string())
    .execute(&mut **txn)
    .await?;
    Ok(())
}

pub(crate) async fn delete_grant(txn: &mut Txn, grant_id: i64) -> Result<()> {
    sqlx::query("DELETE FROM access_grant_folders WHERE grant_id = $1")
        .bind(grant_id)
        .execute(&mut **txn)
        .await?;
    sqlx::query("DELETE FROM access_grants WHERE id = $1")
        .bind(grant_id)
        .execute(&mut **txn)
        .await?;
    Ok(())
}

impl Store {
    /// The BAL a delegation is given on: active or suspended, never closed, and not an APP
    /// BAL (software, not people).
    async fn delegable_bal(&self, address: &str) -> Result<Bal> {
        let bal = self.bal(address).await?;
        if bal.status == BalStatus::Closed {
            return Err(StoreError::Invalid(format!("{} is closed", bal.address)));
        }
        if bal.bal_type == BalType::App {
            return Err(StoreError::Invalid(format!(
                "{} is an APP BAL: it is not delegated to people",
                bal.address
            )));
        }
        Ok(bal)
    }

    async fn check_grantee(&self, bal: &Bal, grantee: &Grantee) -> Result<()> {
        match grantee {
            Grantee::Bal(address) => {
                let to = self.bal(address).await?;
                if to.id == bal.id {
                    return Err(StoreError::Invalid(format!(
                        "{address} cannot be delegated to itself"
                    )));
                }
            }
            Grantee::NationalId(id) => {
                if bal.national_id.as_deref() == Some(id.as_str()) {
                    return Err(StoreError::Invalid(format!(
                        "{id} holds {}: it needs no delegation",
                        bal.address
                    )));
                }
            }
        }
        Ok(())
    }

    /// Delegates `new.bal` to `new.grantee`, or replaces what was delegated (rights, folders,
    /// end date); audited as `grant` or `change` in the same transaction.
    pub async fn grant_delegation(&self, new: &NewDelegation<'_>) -> Result<Delegation> {
        let bal = self.delegable_bal(new.bal).await?;
        self.check_grantee(&bal, new.grantee).await?;
        if new.rights.is_empty() {
            return Err(StoreError::Invalid(
                "a delegation needs at least one right".into(),
            ));
        }
        let bal_wide = if new.folders.is_empty() {
            new.rights
        } else {
            Rights::NONE
        };
        let mut w = self.write_txn().await?;
        let before = grant_row(&mut w.txn, bal.id, new.grantee).await?;
        // A change replaces the delegation whole: its folders and rights are those given now.
        if let Some(old) = &before {
            delete_grant(&mut w.txn, old.grant_id).await?;
        }
        sqlx::query(
            "INSERT INTO access_grants \
             (bal_id, grantee_kind, grantee, origin, rights, not_after, created_at) \
             VALUES ($1, $2, $3, 'delegation', $4, $5, $6)",
        )
        .bind(bal.id)
        .bind(new.grantee.kind())
        .bind(new.grantee.id())
        .bind(bal_wide.to_string())
        .bind(new.not_after)
        .bind(now())
        .execute(&mut *w.txn)
        .await?;
        let grant = grant_row(&mut w.txn, bal.id, new.grantee)
            .await?
            .ok_or_else(|| StoreError::NotFound("the delegation just written".into()))?;
        for folder in new.folders {
            set_folder_row(&mut w.txn, grant.grant_id, folder, new.rights).await?;
        }
        let after = grant_row(&mut w.txn, bal.id, new.grantee)
            .await?
            .ok_or_else(|| StoreError::NotFound("the delegation just written".into()))?;
        let action = if before.is_some() {
            AuditAction::Change
        } else {
            AuditAction::Grant
        };
        let mut event = AuditEvent::new(bal.id, new.author, action);
        event.client = new.client.to_string();
        event.detail = grant_detail(&after);
        append_in(&mut w.txn, self.engine(), &event).await?;
        w.commit().await?;
        self.access_changed(bal.id).await;
        Ok(after)
    }

    /// SETACL / DELETEACL on one folder (RFC 4314 §3.1, §3.2): `Some(rights)` sets the
    /// grantee's rights on `folder`, `None` removes them; a delegation left with no right
    /// anywhere is removed. Returns the delegation as it is now (`None`: none left).
    pub async fn set_delegation_folder(
        &self,
        bal: &Bal,
        grantee: &Grantee,
        folder: &str,
        rights: Option<Rights>,
        author: &str,
        client: &str,
    ) -> Result<Option<Delegation>> {
        self.check_grantee(bal, grantee).await?;
        let mut w = self.write_txn().await?;
        let before = grant_row(&mut w.txn, bal.id, grantee).await?;
        let grant_id = match &before {
            Some(d) => d.grant_id,
            None if rights.is_none_or(Rights::is_empty) => return Ok(None),
            None => {
                let row = sqlx::query(
                    "INSERT INTO access_grants \
                     (bal_id, grantee_kind, grantee, origin, rights, not_after, created_at) \
                     VALUES ($1, $2, $3, 'delegation', '', NULL, $4) RETURNING id",
                )
                .bind(bal.id)
                .bind(grantee.kind())
                .bind(grantee.id())
                .bind(now())
                .fetch_one(&mut *w.txn)
                .await?;
                row.try_get("id")?
            }
        };
        set_folder_row(&mut w.txn, grant_id, folder, rights.unwrap_or(Rights::NONE)).await?;
        let after = grant_row(&mut w.txn, bal.id, grantee)
            .await?
            .expect("just written");
        let (action, result) = if after.any_rights().is_empty() {
            delete_grant(&mut w.txn, grant_id).await?;
            (AuditAction::Revoke, None)
        } else if before.is_some() {
            (AuditAction::Change, Some(after))
        } else {
            (AuditAction::Grant, Some(after))
        };
        let mut event = AuditEvent::new(bal.id, author, action);
        event.client = client.to_string();
        event.folder = folder.to_string();
        event.detail = format!(
            "{} {}",
            grantee,
            result
                .as_ref()
                .map_or("none".into(), Delegation::rights_text)
        );
        append_in(&mut w.txn, self.engine(), &event).await?;
        w.commit().await?;
        self.access_changed(bal.id).await;
        Ok(result)
    }

    /// Ends a delegation now; false when there was none. Audited as `revoke`.
    pub async fn revoke_delegation(
        &self,
        address: &str,
        grantee: &Grantee,
        author: &str,
        client: &str,
    ) -> Result<bool> {
        let bal = self.bal(address).await?;
        let mut w = self.write_txn().await?;
        let Some(grant) = grant_row(&mut w.txn, bal.id, grantee).await? else {
            return Ok(false);
        };
        delete_grant(&mut w.txn, grant.grant_id).await?;
        let mut event = AuditEvent::new(bal.id, author, AuditAction::Revoke);
        event.client = client.to_string();
        event.detail = grant_detail(&grant);
        append_in(&mut w.txn, self.engine(), &event).await?;
        w.commit().await?;
        self.access_changed(bal.id).await;
        Ok(true)
    }

    /// Delegations, optionally of one BAL and/or to one grantee, ended ones included.
    pub async fn delegations(
        &self,
        address: Option<&str>,
        grantee: Option<&Grantee>,
    ) -> Result<Vec<Delegation>> {
        let bal_id = match address {
            Some(address) => Some(self.bal(address).await?.id),
            None => None,
        };
        let sql = select_grants!(
            "AND ($1 IS NULL OR g.bal_id = $1) ",
            "AND ($2 IS NULL OR (g.grantee_kind = $2 AND g.grantee = $3)) ",
            "ORDER BY b.address, g.grantee_kind, g.grantee"
        );
        let rows = sqlx::query(sql)
            .bind(bal_id)
            .bind(grantee.map(Grantee::kind))
            .bind(grantee.map(Grantee::id))
            .fetch_all(self.pool())
            .await?;
        self.with_folders(&rows).await
    }

    async fn with_folders(&self, rows: &[AnyRow]) -> Result<Vec<Delegation>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut d = delegation_from_row(r)?;
            d.folders = folder_rows(self.pool(), d.grant_id).await?;
            out.push(d);
        }
        Ok(out)
    }

    /// Who a session is, as grantees: the BAL it logged in as, its national id (a PSC
    /// identity, or the national id of the PER BAL it logged in to) and the ORG/CAB BALs that
    /// identity is habilitated on (a grant to an ORG BAL is for its members).
    pub async fn principals(&self, login: &Bal, identity: Option<&str>) -> Result<Vec<Grantee>> {
        let mut out = vec![Grantee::Bal(login.address.as_str().to_string())];
        let identity = identity.or(match login.bal_type {
            BalType::Per => login.national_id.as_deref(),
            _ => None,
        });
        if let Some(id) = identity {
            out.push(Grantee::NationalId(id.to_string()));
            let rows = sqlx::query(
                "SELECT b.address FROM access_grants g JOIN bals b ON b.id = g.bal_id \
                 WHERE g.origin = 'habilitation' AND g.grantee_kind = 'national_id' \
                 AND g.grantee = $1 AND (g.not_after IS NULL OR g.not_after > $2)",
            )
            .bind(id)
            .bind(now())
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                let address: String = r.try_get("address")?;
                if address != login.address.as_str() {
                    out.push(Grantee::Bal(address));
                }
            }
        }
        Ok(out)
    }

    /// The delegations open to any of `principals` now, on active BALs, by BAL. When two
    /// principals hold one on the same BAL, both are returned (the caller unites them).
    pub async fn delegations_to(&self, principals: &[Grantee]) -> Result<Vec<Delegation>> {
        // One query per principal: a session has two to four of them.
        let sql = select_grants!(
            "AND b.status = 'active' AND (g.not_after IS NULL OR g.not_after > $1) ",
            "AND g.grantee_kind = $2 AND g.grantee = $3"
        );
        let mut rows = Vec::new();
        for p in principals {
            rows.extend(
                sqlx::query(sql)
                    .bind(now())
                    .bind(p.kind())
                    .bind(p.id())
                    .fetch_all(self.pool())
                    .await?,
            );
        }
        let mut out = self.with_folders(&rows).await?;
        out.sort_by(|a, b| a.bal.cmp(&b.bal));
        Ok(out)
    }

    /// Removes the delegations whose end date has passed, each audited as `expire` in the
    /// transaction that removes it. Sessions still holding one refuse it on their own (they
    /// compare the end date at each command); this keeps the trail and the table exact.
    pub async fn expire_delegations(&self) -> Result<Vec<Delegation>> {
        let sql = select_grants!("AND g.not_after IS NOT NULL AND g.not_after <= $1");
        let rows = sqlx::query(sql).bind(now()).fetch_all(self.pool()).await?;
        let ended = self.with_folders(&rows).await?;
        for d in &ended {
            let mut w = self.write_txn().await?;
            delete_grant(&mut w.txn, d.grant_id).await?;
            let mut event = AuditEvent::new(d.bal_id, "operator", AuditAction::Expire);
            event.detail = grant_detail(d);
            append_in(&mut w.txn, self.engine(), &event).await?;
            w.commit().await?;
            self.access_changed(d.bal_id).await;
        }
        Ok(ended)
    }
}

/// How many times the grant tables have changed (`access_changes`, kept by triggers in the
/// writers' transactions; migration 0017). `None` when it cannot be read (a schema left
/// older than this binary by `SchemaPolicy::AsIs`).
pub(crate) async fn access_changes(pool: &sqlx::AnyPool) -> Option<i64> {
    sqlx::query_scalar("SELECT changes FROM access_changes WHERE id = 1")
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
}

/// `secretary@… secretary until 1767225600`: what a grant entry of the trail says.
fn grant_detail(d: &Delegation) -> String {
    let until = d.not_after.map_or(String::new(), |t| format!(" until {t}"));
    format!("{} {}{until}", d.grantee, d.rights_text())
}

impl Store {
    /// The rights a session logged in to `delegate` (the BAL, its holder's national id, the
    /// structures that identity is habilitated on) holds by delegation on the BAL `bal_id`
    /// now, united over its grants; `None` when it holds no delegation there. The HTTP API
    /// sends on behalf of a BAL with it (SEND_RIGHT, ADR 0016).
    pub async fn delegated_rights(&self, delegate: &Bal, bal_id: i64) -> Result<Option<Rights>> {
        let principals = self.principals(delegate, None).await?;
        let delegations = self.delegations_to(&principals).await?;
        Ok(delegations
            .iter()
            .filter(|d| d.bal_id == bal_id)
            .map(Delegation::any_rights)
            .reduce(Rights::union))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A delegation of `dr@x.fr` to `sec@x.fr` (for the unit tests of the crate).
    pub(crate) fn sample(
        rights: &str,
        folders: &[(&str, &str)],
        not_after: Option<i64>,
    ) -> Delegation {
        Delegation {
            grant_id: 1,
            bal_id: 1,
            bal: "dr@x.fr".into(),
            grantee: Grantee::Bal("sec@x.fr".into()),
            rights: Rights::parse(rights).unwrap(),
            folders: folders
                .iter()
                .map(|(f, r)| FolderRights {
                    folder: f.to_string(),
                    rights: Rights::parse(r).unwrap(),
                })
                .collect(),
            not_after,
            created_at: 0,
        }
    }

    fn delegation(rights: &str, folders: &[(&str, &str)]) -> Delegation {
        sample(rights, folders, None)
    }

    #[test]
    fn folder_rights_cover_subfolders_and_the_longest_wins() {
        let d = delegation("", &[("INBOX", "lrs"), ("INBOX/Private", "")]);
        assert_eq!(d.rights_on("INBOX").to_string(), "lrs");
        assert_eq!(d.rights_on("INBOX/Labs").to_string(), "lrs");
        assert!(d.rights_on("INBOX/Private").is_empty());
        assert!(d.rights_on("INBOXES").is_empty());
        assert!(d.rights_on("Sent").is_empty());
        assert_eq!(d.rights_text(), "INBOX:read INBOX/Private:none");
        let wide = delegation("lrswixte0", &[("Perso", "")]);
        assert_eq!(wide.rights_on("Sent").to_string(), "lrswixte0");
        assert!(wide.rights_on("Perso/2026").is_empty());
        assert_eq!(wide.rights_text(), "secretary Perso:none");
    }
}
