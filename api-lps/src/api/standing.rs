//! What a caller is to a BAL when it manages delegations or reads the audit trail (ADR 0037):
//! its holder (a PSC identity owning the PER BAL, an API key whose reach covers the BAL, an
//! admin key), a delegate holding `a` (manager), another delegate, or nobody. One access
//! model with the habilitations and delegations of the store (ADR 0012, ADR 0016); the
//! bounds a manager grants within are here too, so that the handlers only ask.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use mssante_store::{
    AccessOrigin, Bal, BalType, Delegation, Grantee, Rights, delegation_limits, now,
};

use super::client::{Client, Principal, out_of_scope};
use crate::{ApiContext, Problem};

/// The caller's standing on a BAL.
#[derive(Clone, Debug)]
pub enum Standing {
    /// The holder or the operator: every delegation, the audit trail.
    Holder,
    /// A delegate with `a` somewhere: grants within what these delegations hold.
    Manager(Vec<Delegation>),
    /// A delegate without `a`: works in the BAL, manages nothing.
    Delegate,
}

/// The BAL `address` and the caller's standing on it. An unknown BAL is `bal-not-found` to a
/// caller whose reach would cover it (an admin key, a key of its domain), `bal-out-of-scope`
/// to others, who learn nothing of BALs beyond their reach.
pub async fn standing(
    ctx: &ApiContext,
    client: &Client,
    address: &str,
) -> Result<(Bal, Standing), Problem> {
    let reaches = matches!(&client.principal, Principal::Key(key) if key.covers_bal(address));
    let Some(bal) = ctx
        .store
        .find_bal(address)
        .await
        .map_err(Problem::internal)?
    else {
        return Err(match reaches {
            true => Problem::new(
                StatusCode::NOT_FOUND,
                "bal-not-found",
                "BAL not found",
                format!("there is no BAL {address}"),
            ),
            false => out_of_scope(address),
        });
    };
    let holds = match &client.principal {
        Principal::Key(_) => reaches,
        Principal::Psc { national_id, .. } => {
            bal.bal_type == BalType::Per && bal.national_id.as_deref() == Some(national_id)
        }
    };
    if holds {
        return Ok((bal, Standing::Holder));
    }
    let held = callers_delegations(ctx, client, &bal).await?;
    if held.is_empty() {
        return Err(out_of_scope(address));
    }
    let manages = held.iter().any(|d| d.any_rights().has('a'));
    Ok((
        bal,
        match manages {
            true => Standing::Manager(held),
            false => Standing::Delegate,
        },
    ))
}

/// The active delegations on `bal` this caller holds: to its identity or to a BAL of its
/// own (an API key's BALs; a PSC identity's PER BAL or the ORG/CAB BALs it is habilitated
/// on), as IMAP logins unite them (`Store::principals`).
async fn callers_delegations(
    ctx: &ApiContext,
    client: &Client,
    bal: &Bal,
) -> Result<Vec<Delegation>, Problem> {
    let all = ctx
        .store
        .delegations(Some(bal.address.as_str()), None)
        .await
        .map_err(Problem::internal)?;
    let at = now();
    let mut held = Vec::new();
    for d in all.into_iter().filter(|d| d.is_active(at)) {
        if is_callers(ctx, client, &d.grantee).await? {
            held.push(d);
        }
    }
    Ok(held)
}

/// Is `grantee` this caller (its identity, or a BAL it logs in as)?
pub async fn is_callers(
    ctx: &ApiContext,
    client: &Client,
    grantee: &Grantee,
) -> Result<bool, Problem> {
    let store = &ctx.store;
    match (&client.principal, grantee) {
        (Principal::Key(key), Grantee::Bal(address)) => {
            Ok(key.bals.iter().any(|b| b.eq_ignore_ascii_case(address)))
        }
        (Principal::Key(key), Grantee::NationalId(id)) => {
            for address in &key.bals {
                let bal = store.find_bal(address).await.map_err(Problem::internal)?;
                if bal.is_some_and(|b| b.national_id.as_deref() == Some(id.as_str())) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        (Principal::Psc { national_id, .. }, Grantee::NationalId(id)) => Ok(national_id == id),
        (Principal::Psc { national_id, .. }, Grantee::Bal(address)) => {
            let Some(bal) = store.find_bal(address).await.map_err(Problem::internal)? else {
                return Ok(false);
            };
            if bal.bal_type == BalType::Per {
                return Ok(bal.national_id.as_deref() == Some(national_id.as_str()));
            }
            let at = now();
            Ok(store
                .access_grants(Some(address), Some(national_id))
                .await
                .map_err(Problem::internal)?
                .iter()
                .any(|g| {
                    g.origin == AccessOrigin::Habilitation && g.not_after.is_none_or(|t| t > at)
                }))
        }
    }
}

fn beyond(detail: String) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "rights-beyond-grantor",
        "Rights beyond the grantor's",
        detail,
    )
}

/// A manager grants only within what it holds (`mssante_store::delegation_limits`, the
/// rule IMAP's SETACL applies too).
pub fn within_held(
    held: &[Delegation],
    rights: Rights,
    folders: &[String],
    not_after: Option<i64>,
) -> Result<(), Problem> {
    delegation_limits::within_held(held, rights, folders, not_after).map_err(beyond)
}

/// May a manager holding `held` change or revoke `target` (`delegation_limits::may_touch`)?
pub fn may_touch(held: &[Delegation], target: &Delegation) -> Result<(), Problem> {
    delegation_limits::may_touch(held, target).map_err(beyond)
}

/// Who the audit trail names for this caller: a PSC identity by its national id (as IMAP
/// and SMTP logins do), an API key by `key:<key id>`.
pub fn author(client: &Client) -> String {
    match &client.principal {
        Principal::Psc { national_id, .. } => national_id.clone(),
        Principal::Key(_) => client.id.clone(),
    }
}

/// The client's address for the audit trail (`ip:port`), empty when unknown.
pub fn client_address(peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>) -> String {
    peer.map_or(String::new(), |p| p.0.0.to_string())
}

pub fn forbidden(name: &str, title: &'static str, detail: String) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, name, title, detail)
}
