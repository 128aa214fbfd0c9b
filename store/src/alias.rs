//! Other addresses of a BAL: aliases (mail to one is delivered to the BAL) and renaming a
//! BAL, which keeps its old address as an alias unless asked not to (ADR 0030). An address
//! is either a BAL's or an alias, never both; both live in a local domain.

use sqlx::Row;

use crate::address::Address;
use crate::bal::Bal;
use crate::error::{Result, StoreError, duplicate_as};
use crate::{Store, now};

/// Aliases with their BAL's address, then `$tail` (literal SQL only).
macro_rules! select_aliases {
    ($tail:literal) => {
        concat!(
            "SELECT a.address, b.address AS bal_address, a.created_at \
             FROM bal_aliases a JOIN bals b ON b.id = a.bal_id ",
            $tail
        )
    };
}

/// One alias and the BAL it leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub address: String,
    pub bal_address: String,
    pub created_at: i64,
}

impl Store {
    /// Makes `alias` another address of the BAL `bal_address`.
    pub async fn add_alias(&self, bal_address: &str, alias: &str) -> Result<Alias> {
        let bal = self.bal(bal_address).await?;
        let alias = self.free_local_address(alias).await?;
        let t = now();
        let mut w = self.write_txn().await?;
        insert_alias(&mut w.txn, alias.as_str(), bal.id, t).await?;
        w.commit().await?;
        Ok(Alias {
            address: alias.as_str().to_string(),
            bal_address: bal.address.as_str().to_string(),
            created_at: t,
        })
    }

    /// Removes an alias; mail to it is then refused (`550 5.1.1`). Returns the BAL it led to.
    pub async fn remove_alias(&self, alias: &str) -> Result<String> {
        let alias = Address::parse(alias)?;
        let bal = self
            .alias_target(&alias)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alias {alias}")))?;
        let mut w = self.write_txn().await?;
        sqlx::query("DELETE FROM bal_aliases WHERE address = $1")
            .bind(alias.as_str())
            .execute(&mut *w.txn)
            .await?;
        w.commit().await?;
        Ok(bal.address.as_str().to_string())
    }

    /// The aliases of one BAL, or of all, by address.
    pub async fn list_aliases(&self, bal_address: Option<&str>) -> Result<Vec<Alias>> {
        let rows = match bal_address {
            Some(address) => {
                let bal = self.bal(address).await?;
                sqlx::query(select_aliases!("WHERE a.bal_id = $1 ORDER BY a.address"))
                    .bind(bal.id)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query(select_aliases!("ORDER BY a.address"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(Alias {
                    address: r.try_get("address")?,
                    bal_address: r.try_get("bal_address")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The BAL an alias leads to.
    pub async fn alias_target(&self, alias: &Address) -> Result<Option<Bal>> {
        let bal_address: Option<String> = sqlx::query_scalar(
            "SELECT b.address FROM bal_aliases a JOIN bals b ON b.id = a.bal_id WHERE a.address = $1",
        )
        .bind(alias.as_str())
        .fetch_optional(self.pool())
        .await?;
        match bal_address {
            Some(address) => self.find_bal(&address).await,
            None => Ok(None),
        }
    }

    /// Gives the BAL `from` the address `to` (same folders, messages, grants, keys). With
    /// `keep_alias`, `from` becomes an alias, so that mail sent to the old address still
    /// arrives. Delegations granted to the BAL by address follow it. Logins with the old
    /// address stop working.
    pub async fn rename_bal(&self, from: &str, to: &str, keep_alias: bool) -> Result<Bal> {
        let bal = self.bal(from).await?;
        let to = self.free_local_address(to).await?;
        let t = now();
        let mut w = self.write_txn().await?;
        sqlx::query("UPDATE bals SET address = $1, domain_id = (SELECT id FROM domains WHERE name = $2), updated_at = $3 WHERE id = $4")
            .bind(to.as_str())
            .bind(to.domain())
            .bind(t)
            .bind(bal.id)
            .execute(&mut *w.txn)
            .await
            .map_err(duplicate_as(&format!("BAL {to}")))?;
        // Habilitations and delegations name a BAL grantee by its address (ADR 0016).
        sqlx::query("UPDATE access_grants SET grantee = $1 WHERE grantee = $2")
            .bind(to.as_str())
            .bind(bal.address.as_str())
            .execute(&mut *w.txn)
            .await?;
        if keep_alias {
            insert_alias(&mut w.txn, bal.address.as_str(), bal.id, t).await?;
        }
        w.commit().await?;
        self.auth_cache().forget(bal.address.as_str());
        self.bal(to.as_str()).await
    }

    /// `address` parsed, in a local domain, and neither a BAL's address nor an alias yet.
    async fn free_local_address(&self, address: &str) -> Result<Address> {
        let address = Address::parse(address)?;
        if !self.is_local_domain(address.domain()).await? {
            return Err(StoreError::Invalid(format!(
                "domain {} is not a local domain: add it first with `mssante domain add {}`",
                address.domain(),
                address.domain()
            )));
        }
        if self.find_bal(address.as_str()).await?.is_some() {
            return Err(StoreError::Duplicate(format!("BAL {address}")));
        }
        if let Some(bal) = self.alias_target(&address).await? {
            return Err(StoreError::Duplicate(format!(
                "{address}: already an alias of {}",
                bal.address
            )));
        }
        Ok(address)
    }
}

async fn insert_alias(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    alias: &str,
    bal_id: i64,
    t: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO bal_aliases (address, bal_id, created_at) VALUES ($1, $2, $3)")
        .bind(alias)
        .bind(bal_id)
        .bind(t)
        .execute(&mut **txn)
        .await
        .map_err(duplicate_as(&format!("alias {alias}")))?;
    Ok(())
}
