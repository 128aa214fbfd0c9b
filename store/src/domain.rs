//! Local domains: the domains this instance hosts BALs for.

use sqlx::Row;

use crate::address::normalise_domain;
use crate::error::{Result, StoreError, duplicate_as};
use crate::{Store, now};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

impl Store {
    pub async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = normalise_domain(name).map_err(StoreError::Invalid)?;
        let mut w = self.write_txn().await?;
        let row = sqlx::query(
            "INSERT INTO domains (name, created_at) VALUES ($1, $2) RETURNING id, created_at",
        )
        .bind(&name)
        .bind(now())
        .fetch_one(&mut *w.txn)
        .await
        .map_err(duplicate_as(&format!("domain {name}")))?;
        let domain = Domain {
            id: row.try_get("id")?,
            name,
            created_at: row.try_get("created_at")?,
        };
        w.commit().await?;
        Ok(domain)
    }

    pub async fn list_domains(&self) -> Result<Vec<Domain>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM domains ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Domain {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn domain_id(&self, name: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT id FROM domains WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    pub async fn is_local_domain(&self, name: &str) -> Result<bool> {
        Ok(self.domain_id(&name.to_lowercase()).await?.is_some())
    }
}
