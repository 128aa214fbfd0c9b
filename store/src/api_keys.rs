//! API keys of the HTTP API (ADR 0018) and the answers kept for `Idempotency-Key`.
//!
//! A key is `mss_<key id>_<secret>`: the key id is public (lists, logs), the secret is 256
//! random bits shown once. Only the SHA-256 of the whole key is stored: a secret of that
//! strength needs no slow hash, and the check stays cheap on every request.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Result, StoreError};
use crate::{Store, now};

/// What a key may be allowed to do; `admin` acts on every domain and BAL.
/// `delegation`: grant and revoke delegations of the key's BALs; `audit`: read and verify
/// their audit trails (ADR 0037).
pub const API_SCOPES: &[&str] = &[
    "send",
    "read",
    "status",
    "directory",
    "delegation",
    "audit",
    "admin",
];

const KEY_PREFIX: &str = "mss_";

/// What `apikey create` is given.
#[derive(Clone, Debug, Default)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    /// The key acts on the BALs of this domain.
    pub domain: Option<String>,
    /// The key acts on these BALs.
    pub bals: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub domain: Option<String>,
    pub bals: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope || s == "admin")
    }

    /// Whether the key may act on the BAL `address` (of domain `domain`).
    pub fn covers_bal(&self, address: &str) -> bool {
        if self.scopes.iter().any(|s| s == "admin") {
            return true;
        }
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        self.domain
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(domain))
            || self.bals.iter().any(|b| b.eq_ignore_ascii_case(address))
    }
}

/// A new key and its secret, which is never readable again.
#[derive(Clone, Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

/// The first answer given to a request carrying an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn check_scopes(scopes: &[String]) -> Result<()> {
    if scopes.is_empty() {
        return Err(StoreError::Invalid(format!(
            "a key needs at least one scope: {}",
            API_SCOPES.join(", ")
        )));
    }
    match scopes.iter().find(|s| !API_SCOPES.contains(&s.as_str())) {
        Some(bad) => Err(StoreError::Invalid(format!(
            "unknown scope {bad:?}: the scopes are {}",
            API_SCOPES.join(", ")
        ))),
        None => Ok(()),
    }
}

fn key_from_row(row: &AnyRow, bals: Vec<String>) -> Result<ApiKey> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        name: row.try_get("name")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        domain: row.try_get("domain")?,
        bals,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Creates a key. Unless it has the admin scope it must be limited to a domain or to
    /// BALs, which must exist.
    pub async fn create_api_key(&self, new: &NewApiKey) -> Result<CreatedApiKey> {
        check_scopes(&new.scopes)?;
        let admin = new.scopes.iter().any(|s| s == "admin");
        if !admin && new.domain.is_none() && new.bals.is_empty() {
            return Err(StoreError::Invalid(
                "a key without the admin scope acts on a domain (--domain) or on BALs (--bal)"
                    .into(),
            ));
        }
        let domain = match &new.domain {
            Some(d) => {
                let d = crate::normalise_domain(d).map_err(StoreError::Invalid)?;
                if !self.is_local_domain(&d).await? {
                    return Err(StoreError::NotFound(format!("domain {d}")));
                }
                Some(d)
            }
            None => None,
        };
        let mut bals = Vec::with_capacity(new.bals.len());
        for address in &new.bals {
            bals.push(self.bal(address).await?);
        }
        let name = new.name.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "a key needs a short printable name".into(),
            ));
        }
        let key_id = random_hex(6);
        let secret = format!("{KEY_PREFIX}{key_id}_{}", random_hex(32));
        let created_at = now();
        let mut w = self.write_txn().await?;
        let row = sqlx::query(
            "INSERT INTO api_keys (key_id, secret_hash, name, scopes, domain, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&key_id)
        .bind(hash_key(&secret))
        .bind(name)
        .bind(new.scopes.join(" "))
        .bind(domain.clone())
        .bind(created_at)
        .fetch_one(&mut *w.txn)
        .await?;
        let id: i64 = row.try_get("id")?;
        for bal in &bals {
            sqlx::query(
                "INSERT INTO api_key_bals (key_id, bal_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(bal.id)
            .execute(&mut *w.txn)
            .await?;
        }
        w.commit().await?;
        let key = ApiKey {
            id,
            key_id,
            name: name.to_string(),
            scopes: new.scopes.clone(),
            domain,
            bals: bals.iter().map(|b| b.address.to_string()).collect(),
            created_at,
            revoked_at: None,
        };
        Ok(CreatedApiKey { key, secret })
    }

    async fn key_bals(&self, id: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT b.address FROM api_key_bals k JOIN bals b ON b.id = k.bal_id \
             WHERE k.key_id = $1 ORDER BY b.address",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("address").map_err(Into::into))
            .collect()
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT id, key_id, name, scopes, domain, created_at, revoked_at FROM api_keys ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let bals = self.key_bals(row.try_get("id")?).await?;
            keys.push(key_from_row(row, bals)?);
        }
        Ok(keys)
    }

    /// Revokes a key (by its public id); false when there is no such active key.
    pub async fn revoke_api_key(&self, key_id: &str) -> Result<bool> {
        let mut w = self.write_txn().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(key_id)
        .execute(&mut *w.txn)
        .await?;
        // Its webhooks stop with it (the API names a key's client `key:<key id>`).
        crate::api_events::stop_webhooks_of(&mut w.txn, &format!("key:{key_id}")).await?;
        w.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The active key a client presented, or `None` for anything else.
    pub async fn api_key_for_secret(&self, presented: &str) -> Result<Option<ApiKey>> {
        let Some(key_id) = presented
            .strip_prefix(KEY_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
        else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT id, key_id, secret_hash, name, scopes, domain, created_at, revoked_at \
             FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL",
        )
        .bind(key_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("secret_hash")?;
        // Both sides are digests of the same length: an early exit on the first differing
        // byte tells nothing usable about the secret.
        if stored != hash_key(presented) {
            return Ok(None);
        }
        let bals = self.key_bals(row.try_get("id")?).await?;
        key_from_row(&row, bals).map(Some)
    }

    /// The answer kept for `(client, key)`, if any.
    pub async fn idempotent_response(
        &self,
        client: &str,
        idem_key: &str,
    ) -> Result<Option<StoredResponse>> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM api_idempotency \
             WHERE client = $1 AND idem_key = $2",
        )
        .bind(client)
        .bind(idem_key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(StoredResponse {
                request_hash: r.try_get("request_hash")?,
                status: r.try_get::<i64, _>("status")? as u16,
                body: r.try_get("response")?,
            })
        })
        .transpose()
    }

    /// Keeps the first answer to `(client, key)`; a later one for the same pair is dropped.
    pub async fn keep_idempotent_response(
        &self,
        client: &str,
        idem_key: &str,
        response: &StoredResponse,
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        sqlx::query(
            "INSERT INTO api_idempotency (client, idem_key, request_hash, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(client)
        .bind(idem_key)
        .bind(&response.request_hash)
        .bind(response.status as i64)
        .bind(&response.body)
        .bind(now())
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scopes: &[&str], domain: Option<&str>, bals: &[&str]) -> ApiKey {
        ApiKey {
            id: 1,
            key_id: "k".into(),
            name: "n".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            domain: domain.map(str::to_string),
            bals: bals.iter().map(|s| s.to_string()).collect(),
            created_at: 0,
            revoked_at: None,
        }
    }

    #[test]
    fn scope_and_reach() {
        let lab = key(&["send"], None, &["labo@a.fr"]);
        assert!(lab.has_scope("send") && !lab.has_scope("read"));
        assert!(lab.covers_bal("LABO@a.fr") && !lab.covers_bal("other@a.fr"));
        let domain = key(&["read"], Some("a.fr"), &[]);
        assert!(domain.covers_bal("x@a.fr") && !domain.covers_bal("x@b.fr"));
        let admin = key(&["admin"], None, &[]);
        assert!(admin.has_scope("send") && admin.covers_bal("x@b.fr"));
    }

    #[test]
    fn scopes_are_checked() {
        assert!(check_scopes(&[]).is_err());
        assert!(check_scopes(&["sned".into()]).is_err());
        assert!(check_scopes(&["send".into(), "status".into()]).is_ok());
    }
}
