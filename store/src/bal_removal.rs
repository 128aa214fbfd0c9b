//! Removing a closed BAL (ADR 0033): its folders and their messages, its aliases, the
//! grants on it and the delegations it received, its API key and client-certificate
//! bindings go, in one transaction; the row stays, marked `removed_at`, as the anchor of its
//! audit trail (which gains a `remove` entry, nothing of it is deleted) and of the delivery
//! traces retention expires; its address stays reserved and answers 550 5.1.1. Messages it
//! sent that wait in the queue stay there: they were accepted, the relay owes their delivery.

use sqlx::Row;

use crate::audit::{AuditAction, AuditEvent, append_in};
use crate::bal::{Bal, BalStatus};
use crate::error::{Result, StoreError};
use crate::group_commit::Txn;
use crate::{Engine, Store, now};

/// What removing a BAL deletes (or would), and the queued messages it keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalRemoval {
    pub folders: u64,
    pub messages: u64,
    pub aliases: u64,
    /// Delegations and habilitations on the BAL.
    pub grants: u64,
    /// Delegations other BALs gave it (each revoked in the giver's audit trail).
    pub delegations_received: u64,
    pub api_key_bindings: u64,
    /// API keys that acted on this BAL only, revoked.
    pub api_keys_revoked: u64,
    pub client_certificates: u64,
    /// Messages it sent still queued for delivery: kept.
    pub queued_kept: u64,
}

/// `FROM table WHERE` its row belongs to one of the BAL's folders.
macro_rules! of_its_mailboxes {
    ($table:literal) => {
        concat!(
            "FROM ",
            $table,
            " WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE bal_id = $1)"
        )
    };
}

/// One part of what goes: (the count it feeds, its `SELECT COUNT(*)`, its `DELETE`), both
/// over the same `FROM … WHERE …` keyed by the BAL id.
macro_rules! part {
    ($part:expr, $from:expr) => {
        (
            $part,
            concat!("SELECT COUNT(*) AS n ", $from),
            concat!("DELETE ", $from),
        )
    };
}

/// What goes, children first.
const PARTS: [(Part, &str, &str); 9] = [
    part!(Part::Messages, of_its_mailboxes!("mailbox_messages")),
    part!(Part::None, of_its_mailboxes!("expunged")),
    part!(Part::None, of_its_mailboxes!("migrated_messages")),
    part!(Part::None, "FROM subscriptions WHERE bal_id = $1"),
    part!(Part::Folders, "FROM mailboxes WHERE bal_id = $1"),
    part!(Part::Aliases, "FROM bal_aliases WHERE bal_id = $1"),
    part!(
        Part::None,
        "FROM access_grant_folders WHERE grant_id IN (SELECT id FROM access_grants WHERE bal_id = $1)"
    ),
    part!(Part::Grants, "FROM access_grants WHERE bal_id = $1"),
    part!(
        Part::ClientCertificates,
        "FROM bal_client_certificates WHERE bal_id = $1"
    ),
];

#[derive(Clone, Copy)]
enum Part {
    None,
    Messages,
    Folders,
    Aliases,
    Grants,
    ClientCertificates,
}

impl BalRemoval {
    fn add(&mut self, part: Part, n: u64) {
        match part {
            Part::None => {}
            Part::Messages => self.messages += n,
            Part::Folders => self.folders += n,
            Part::Aliases => self.aliases += n,
            Part::Grants => self.grants += n,
            Part::ClientCertificates => self.client_certificates += n,
        }
    }
}

/// Keys bound to this BAL: (id, public key id, bound to other BALs or a domain too).
const KEYS_OF: &str = "SELECT k.id, k.key_id, (k.domain IS NOT NULL OR k.scopes LIKE '%admin%' \
     OR EXISTS (SELECT 1 FROM api_key_bals o WHERE o.key_id = k.id AND o.bal_id <> $1)) AS shared \
     FROM api_keys k JOIN api_key_bals b ON b.key_id = k.id \
     WHERE b.bal_id = $1 AND k.revoked_at IS NULL";
const QUEUED_FROM: &str = "SELECT COUNT(*) AS n FROM recipients r JOIN messages m ON m.id = r.message_id \
     WHERE m.auth_bal_id = $1 AND r.status = 'queued'";
const RECEIVED: &str = "SELECT id, bal_id, rights FROM access_grants \
     WHERE grantee_kind = 'bal' AND grantee = $1";

impl Store {
    /// What `remove_bal` would delete now; nothing changes. Refused unless the BAL is closed
    /// and not removed yet.
    pub async fn bal_removal_plan(&self, address: &str) -> Result<BalRemoval> {
        let bal = self.removable_bal(address).await?;
        let mut w = self.write_txn().await?;
        let plan = removal(&mut w.txn, self.engine(), &bal, false).await?;
        w.txn.rollback().await?;
        Ok(plan)
    }

    /// Removes a closed BAL (module documentation); `author` signs the audit entry.
    pub async fn remove_bal(&self, address: &str, author: &str) -> Result<BalRemoval> {
        let bal = self.removable_bal(address).await?;
        let mut w = self.write_txn().await?;
        let done = removal(&mut w.txn, self.engine(), &bal, true).await?;
        let mut event = AuditEvent::new(bal.id, author, AuditAction::Remove);
        event.detail = format!(
            "{} folders, {} messages, {} aliases, {} grants, {} delegations received, \
             {} API key bindings ({} keys revoked), {} client certificates deleted; \
             {} queued messages kept",
            done.folders,
            done.messages,
            done.aliases,
            done.grants,
            done.delegations_received,
            done.api_key_bindings,
            done.api_keys_revoked,
            done.client_certificates,
            done.queued_kept
        );
        append_in(&mut w.txn, self.engine(), &event).await?;
        sqlx::query(
            "UPDATE bals SET removed_at = $1, password_hash = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now())
        .bind(bal.id)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        self.auth_cache().forget(bal.address.as_str());
        Ok(done)
    }

    /// When the BAL `bal_id` was removed, if it was.
    pub async fn bal_removed_at(&self, bal_id: i64) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT removed_at FROM bals WHERE id = $1")
            .bind(bal_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("removed_at")?)
    }

    async fn removable_bal(&self, address: &str) -> Result<Bal> {
        let bal = self.bal(address).await?;
        if bal.status != BalStatus::Closed {
            return Err(StoreError::Invalid(format!(
                "BAL {} is {}: close it first (`mssante bal close {}`: mail to it is refused \
                 and logins stop, nothing is deleted)",
                bal.address,
                bal.status.as_str(),
                bal.address
            )));
        }
        if let Some(at) = self.bal_removed_at(bal.id).await? {
            return Err(StoreError::Invalid(format!(
                "BAL {} was removed already (at {at})",
                bal.address
            )));
        }
        Ok(bal)
    }
}

/// Counts, and with `delete` deletes, what goes with `bal`, inside the caller's transaction.
async fn removal(txn: &mut Txn, engine: Engine, bal: &Bal, delete: bool) -> Result<BalRemoval> {
    let mut done = BalRemoval {
        queued_kept: count(txn, QUEUED_FROM, bal.id).await?,
        ..BalRemoval::default()
    };
    received_delegations(txn, engine, bal, delete, &mut done).await?;
    api_keys(txn, bal.id, delete, &mut done).await?;
    for (part, count_sql, delete_sql) in PARTS {
        let n = match delete {
            true => sqlx::query(delete_sql)
                .bind(bal.id)
                .execute(&mut **txn)
                .await?
                .rows_affected(),
            false => count(txn, count_sql, bal.id).await?,
        };
        done.add(part, n);
    }
    Ok(done)
}

async fn count(txn: &mut Txn, sql: &'static str, bal_id: i64) -> Result<u64> {
    let row = sqlx::query(sql).bind(bal_id).fetch_one(&mut **txn).await?;
    Ok(row.try_get::<i64, _>("n")? as u64)
}

/// Delegations other BALs gave this one: revoked, each in its giver's audit trail.
async fn received_delegations(
    txn: &mut Txn,
    engine: Engine,
    bal: &Bal,
    delete: bool,
    done: &mut BalRemoval,
) -> Result<()> {
    let rows = sqlx::query(RECEIVED)
        .bind(bal.address.as_str())
        .fetch_all(&mut **txn)
        .await?;
    done.delegations_received = rows.len() as u64;
    if !delete {
        return Ok(());
    }
    for row in rows {
        let grant_id: i64 = row.try_get("id")?;
        crate::delegation::delete_grant(txn, grant_id).await?;
        let mut event = AuditEvent::new(row.try_get("bal_id")?, "operator", AuditAction::Revoke);
        event.detail = format!(
            "{} {} (the BAL was removed)",
            bal.address,
            row.try_get::<String, _>("rights")?
        );
        append_in(txn, engine, &event).await?;
    }
    Ok(())
}

/// Its key bindings go; a key that acted on this BAL only is revoked, with its webhooks.
async fn api_keys(txn: &mut Txn, bal_id: i64, delete: bool, done: &mut BalRemoval) -> Result<()> {
    let keys = sqlx::query(KEYS_OF)
        .bind(bal_id)
        .fetch_all(&mut **txn)
        .await?;
    done.api_key_bindings = keys.len() as u64;
    for key in &keys {
        let shared = key
            .try_get::<bool, _>("shared")
            .or_else(|_| key.try_get::<i64, _>("shared").map(|n| n != 0))?;
        if shared {
            continue;
        }
        done.api_keys_revoked += 1;
        if delete {
            let key_id: String = key.try_get("key_id")?;
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
                .bind(now())
                .bind(key.try_get::<i64, _>("id")?)
                .execute(&mut **txn)
                .await?;
            crate::api_events::stop_webhooks_of(txn, &format!("key:{key_id}")).await?;
        }
    }
    if delete {
        sqlx::query("DELETE FROM api_key_bals WHERE bal_id = $1")
            .bind(bal_id)
            .execute(&mut **txn)
            .await?;
    }
    Ok(())
}
