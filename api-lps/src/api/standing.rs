//! What a caller is to a BAL when it manages delegations or reads the audit trail (ADR 0037):
//! its holder (a PSC identity owning the PER BAL, an API key whose reach covers the BAL, an
//! admin key), a delegate holding `a` (manager), another delegate, or nobody. One access
//! model with the habilitations and delegations of the store (ADR 0012, ADR 0016); the
//! bounds a manager grants within are here too, so that the handlers only ask.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use mssante_store::{AccessOrigin, Bal, BalType, Delegation, Grantee, Rights, now};

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

fn both(a: Rights, b: Rights) -> Rights {
    a.without(a.without(b))
}

/// The rights `held` gives on every folder (what a BAL-wide grant may not exceed).
fn held_everywhere(held: &[Delegation]) -> Rights {
    held.iter()
        .map(|d| {
            d.folders
                .iter()
                .fold(d.rights, |acc, f| both(acc, f.rights))
        })
        .fold(Rights::NONE, Rights::union)
}

fn held_on(held: &[Delegation], folder: &str) -> Rights {
    held.iter()
        .map(|d| d.rights_on(folder))
        .fold(Rights::NONE, Rights::union)
}

fn beyond(detail: String) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "rights-beyond-grantor",
        "Rights beyond the grantor's",
        detail,
    )
}

/// A manager grants `rights` on `folders` (every folder when empty) until `not_after` only
/// within what it holds: `a` and every given right where it grants them, and no later than
/// its own delegation ends. RFC 4314 §2.1 leaves who may give which right to servers; this
/// server's rule is that a delegation never widens what its grantor could do.
pub fn within_held(
    held: &[Delegation],
    rights: Rights,
    folders: &[String],
    not_after: Option<i64>,
) -> Result<(), Problem> {
    rights_within(held, rights, folders)?;
    let own_end = held
        .iter()
        .map(|d| d.not_after)
        .try_fold(i64::MIN, |acc, end| end.map(|t| acc.max(t)));
    if let Some(end) = own_end
        && not_after.is_none_or(|t| t > end)
    {
        return Err(beyond(format!(
            "not_after: this client's own delegation ends at {end}; a delegation it gives \
             must end by then"
        )));
    }
    Ok(())
}

fn rights_within(held: &[Delegation], rights: Rights, folders: &[String]) -> Result<(), Problem> {
    let places: Vec<(&str, Rights)> = match folders.is_empty() {
        true => vec![("every folder", held_everywhere(held))],
        false => folders
            .iter()
            .map(|f| (f.as_str(), held_on(held, f)))
            .collect(),
    };
    for (place, mine) in places {
        if !mine.has('a') {
            return Err(beyond(format!(
                "rights: this client holds no `a` (manager) right on {place}"
            )));
        }
        if !mine.contains(rights) {
            return Err(beyond(format!(
                "rights: {rights} exceeds this client's own rights on {place} ({mine})"
            )));
        }
    }
    Ok(())
}

/// May a manager holding `held` change or revoke the delegation `target`? Only if it could
/// have given its rights (its end date aside: ending access early is always allowed to
/// whoever could grant it).
pub fn may_touch(held: &[Delegation], target: &Delegation) -> Result<(), Problem> {
    if !target.rights.is_empty() || target.folders.is_empty() {
        rights_within(held, target.rights, &[])?;
    }
    for f in &target.folders {
        rights_within(held, f.rights, std::slice::from_ref(&f.folder))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use mssante_store::FolderRights;

    fn held(rights: &str, folders: &[(&str, &str)], not_after: Option<i64>) -> Vec<Delegation> {
        vec![Delegation {
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
        }]
    }

    #[test]
    fn a_manager_grants_within_its_rights_folders_and_end() {
        let manager = held("lrswixtea0", &[], None);
        let read = Rights::parse("lrs").unwrap();
        assert!(within_held(&manager, read, &[], None).is_ok());
        let beyond_rights = within_held(&manager, Rights::parse("lrsp").unwrap(), &[], None);
        assert_eq!(beyond_rights.unwrap_err().name(), "rights-beyond-grantor");
        // Only INBOX managed: INBOX yes, the whole BAL no.
        let inbox = held("", &[("INBOX", "lrswixtea0")], None);
        assert!(within_held(&inbox, read, &["INBOX/Labs".into()], None).is_ok());
        assert!(within_held(&inbox, read, &[], None).is_err());
        assert!(within_held(&inbox, read, &["Sent".into()], None).is_err());
        // No `a` at all: nothing.
        let secretary = held("lrswixte0", &[], None);
        assert!(within_held(&secretary, read, &[], None).is_err());
        // A manager until t grants until t at the latest.
        let until = held("lrswixtea0", &[], Some(1000));
        assert!(within_held(&until, read, &[], Some(1000)).is_ok());
        assert!(within_held(&until, read, &[], Some(1001)).is_err());
        assert!(within_held(&until, read, &[], None).is_err());
    }

    #[test]
    fn a_manager_touches_only_what_it_could_have_given() {
        let manager = held("lrswixtea0", &[("Perso", "")], None);
        let mut target = held("lrs", &[], None).remove(0);
        // Its own rights stop at Perso: a BAL-wide delegation is beyond it.
        assert!(may_touch(&manager, &target).is_err());
        target.rights = Rights::NONE;
        target.folders = vec![FolderRights {
            folder: "INBOX".into(),
            rights: Rights::parse("lrs").unwrap(),
        }];
        assert!(may_touch(&manager, &target).is_ok());
    }
}
