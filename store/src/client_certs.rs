//! Client certificates bound to application BALs (SASL EXTERNAL, ADR 0029): the operator
//! binds a certificate name (its subject DN or a subjectAltName, as a binding key computed by
//! the trust crate) to an APP BAL; a login with a certificate carrying that name opens it.
//!
//! The store neither parses certificates nor names: keys are opaque strings here.

use sqlx::Row;

use crate::address::Address;
use crate::audit::{AuditAction, AuditEvent, append_in};
use crate::bal::{Bal, BalStatus, BalType};
use crate::error::{Result, StoreError};
use crate::{Store, now};

/// One binding, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateBinding {
    pub bal: String,
    /// The lookup key (`dn:…`, `email:…`, `dns:…`, `uri:…`).
    pub name_key: String,
    /// The name as the operator gave it.
    pub name: String,
    pub created_at: i64,
}

/// Why a certificate opens no BAL. Protocols log it; the client hears a generic refusal,
/// except [`CertificateRefusal::NotAuthorized`] (an authorization failure, RFC 5530 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateRefusal {
    /// No name of the certificate is bound to a BAL.
    NotBound,
    /// Bound to several BALs and the client named none (RFC 4422 Appendix A: an empty
    /// authorization identity asks the server to derive it, which it cannot do here).
    Ambiguous,
    /// The BAL the client named is not one this certificate is bound to.
    NotAuthorized,
    Suspended,
    Closed,
}

impl Store {
    /// Binds the certificate name `name_key` (shown as `name`) to the APP BAL `address`.
    /// False when that binding already existed.
    pub async fn bind_client_certificate(
        &self,
        address: &str,
        name_key: &str,
        name: &str,
    ) -> Result<bool> {
        let bal = self.bal(address).await?;
        if bal.bal_type != BalType::App {
            return Err(StoreError::Invalid(format!(
                "{} is a {} BAL: certificates open application (APP) BALs only; people log in \
                 with Pro Santé Connect",
                bal.address,
                bal.bal_type.as_str()
            )));
        }
        if bal.status == BalStatus::Closed {
            return Err(StoreError::Invalid(format!("{} is closed", bal.address)));
        }
        let mut w = self.write_txn().await?;
        let done = sqlx::query(
            "INSERT INTO bal_client_certificates (bal_id, name_key, name, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (bal_id, name_key) DO NOTHING",
        )
        .bind(bal.id)
        .bind(name_key)
        .bind(name)
        .bind(now())
        .execute(&mut *w.txn)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let mut event = AuditEvent::new(bal.id, "operator", AuditAction::Grant);
        event.detail = format!("client certificate {name}");
        append_in(&mut w.txn, self.engine(), &event).await?;
        w.commit().await?;
        Ok(true)
    }

    /// Removes a binding; false when there was none.
    pub async fn unbind_client_certificate(&self, address: &str, name_key: &str) -> Result<bool> {
        let bal = self.bal(address).await?;
        let mut w = self.write_txn().await?;
        let done =
            sqlx::query("DELETE FROM bal_client_certificates WHERE bal_id = $1 AND name_key = $2")
                .bind(bal.id)
                .bind(name_key)
                .execute(&mut *w.txn)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let mut event = AuditEvent::new(bal.id, "operator", AuditAction::Revoke);
        event.detail = format!("client certificate {name_key}");
        append_in(&mut w.txn, self.engine(), &event).await?;
        w.commit().await?;
        Ok(true)
    }

    /// Bindings, of one BAL or all, by BAL then name.
    pub async fn client_certificate_bindings(
        &self,
        address: Option<&str>,
    ) -> Result<Vec<CertificateBinding>> {
        let bal_id = match address {
            Some(address) => Some(self.bal(address).await?.id),
            None => None,
        };
        let rows = sqlx::query(
            "SELECT b.address, c.name_key, c.name, c.created_at \
             FROM bal_client_certificates c JOIN bals b ON b.id = c.bal_id \
             WHERE ($1 IS NULL OR c.bal_id = $1) ORDER BY b.address, c.name_key",
        )
        .bind(bal_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CertificateBinding {
                    bal: row.try_get("address")?,
                    name_key: row.try_get("name_key")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The BAL a certificate with the names `name_keys` opens (RFC 4422 Appendix A):
    /// `authzid` when it names one the certificate is bound to; with no `authzid`, the one
    /// BAL it is bound to. `Ok(Err(_))` is a refusal; `Err(_)` a storage failure.
    pub async fn bal_for_client_certificate(
        &self,
        name_keys: &[String],
        authzid: Option<&str>,
    ) -> Result<std::result::Result<Bal, CertificateRefusal>> {
        let mut bound: Vec<String> = Vec::new();
        for key in name_keys {
            let rows = sqlx::query(
                "SELECT b.address FROM bal_client_certificates c JOIN bals b ON b.id = c.bal_id \
                 WHERE c.name_key = $1",
            )
            .bind(key)
            .fetch_all(self.pool())
            .await?;
            for row in rows {
                let address: String = row.try_get("address")?;
                if !bound.contains(&address) {
                    bound.push(address);
                }
            }
        }
        let chosen = match (authzid, bound.as_slice()) {
            (_, []) => return Ok(Err(CertificateRefusal::NotBound)),
            (None, [only]) => only.clone(),
            (None, _) => return Ok(Err(CertificateRefusal::Ambiguous)),
            (Some(named), _) => {
                let named = Address::parse(named.trim()).ok();
                match bound
                    .iter()
                    .find(|a| named.as_ref().is_some_and(|n| n.as_str() == a.as_str()))
                {
                    Some(address) => address.clone(),
                    None => return Ok(Err(CertificateRefusal::NotAuthorized)),
                }
            }
        };
        let Some(bal) = self.find_bal(&chosen).await? else {
            return Ok(Err(CertificateRefusal::NotBound));
        };
        match bal.status {
            BalStatus::Active => {}
            BalStatus::Suspended => return Ok(Err(CertificateRefusal::Suspended)),
            BalStatus::Closed => return Ok(Err(CertificateRefusal::Closed)),
        }
        self.record_login(bal.id).await?;
        Ok(Ok(bal))
    }
}
