//! What a *manager* delegate (one holding `a`) may give or change, whatever the door (the
//! HTTP API, IMAP SETACL/DELETEACL): RFC 4314 §2.1 leaves who may give which right to
//! servers; this server's rule is that a delegation never widens what its grantor could do.
//! No SQL: the caller passes the delegations it holds on the BAL (active ones).

use crate::delegation::Delegation;
use crate::rights::Rights;

/// A manager grants `rights` on `folders` (every folder when empty) until `not_after` only
/// within what it holds: `a` and every given right where it grants them, and no later than
/// its own delegation ends. The error says which limit, for the caller's refusal.
pub fn within_held(
    held: &[Delegation],
    rights: Rights,
    folders: &[String],
    not_after: Option<i64>,
) -> Result<(), String> {
    rights_within(held, rights, folders)?;
    if let Some(end) = own_end(held)
        && not_after.is_none_or(|t| t > end)
    {
        return Err(format!(
            "not_after: this client's own delegation ends at {end}; a delegation it gives \
             must end by then"
        ));
    }
    Ok(())
}

/// When the last of `held` ends; `None` when one of them never does.
pub fn own_end(held: &[Delegation]) -> Option<i64> {
    held.iter()
        .map(|d| d.not_after)
        .try_fold(i64::MIN, |acc, end| end.map(|t| acc.max(t)))
}

/// `rights` on `folders` (every folder when empty) are within what `held` gives, `a` included.
pub fn rights_within(
    held: &[Delegation],
    rights: Rights,
    folders: &[String],
) -> Result<(), String> {
    let places: Vec<(&str, Rights)> = match folders.is_empty() {
        true => vec![("every folder", held_everywhere(held))],
        false => folders
            .iter()
            .map(|f| (f.as_str(), held_on(held, f)))
            .collect(),
    };
    for (place, mine) in places {
        if !mine.has('a') {
            return Err(format!(
                "rights: this client holds no `a` (manager) right on {place}"
            ));
        }
        if !mine.contains(rights) {
            return Err(format!(
                "rights: {rights} exceeds this client's own rights on {place} ({mine})"
            ));
        }
    }
    Ok(())
}

/// May a manager holding `held` change or revoke the delegation `target`? Only if it could
/// have given its rights (its end date aside: ending access early is always allowed to
/// whoever could grant it).
pub fn may_touch(held: &[Delegation], target: &Delegation) -> Result<(), String> {
    if !target.rights.is_empty() || target.folders.is_empty() {
        rights_within(held, target.rights, &[])?;
    }
    for f in &target.folders {
        rights_within(held, f.rights, std::slice::from_ref(&f.folder))?;
    }
    Ok(())
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

/// May a manager holding `held` set `rights` (`None`: remove) on `folder` for a grantee whose
/// delegation is `existing` (IMAP SETACL / DELETEACL, RFC 4314 §3.1–3.2)? It must be able to
/// touch the existing delegation; rights it adds must be within its own on that folder, and
/// a new delegation (no end date over IMAP) must not outlive the manager's own. Taking
/// rights away needs no more than touching.
pub fn may_set_folder(
    held: &[Delegation],
    existing: Option<&Delegation>,
    folder: &str,
    rights: Option<Rights>,
) -> Result<(), String> {
    if let Some(target) = existing {
        may_touch(held, target)?;
    }
    let before = existing.map_or(Rights::NONE, |d| d.rights_on(folder));
    let Some(after) = rights.filter(|r| !before.contains(*r)) else {
        return Ok(());
    };
    let not_after = existing.and_then(|d| d.not_after);
    within_held(held, after, &[folder.to_string()], not_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegation::tests::sample as delegation;

    fn rights(text: &str) -> Option<Rights> {
        Some(Rights::parse(text).unwrap())
    }

    #[test]
    fn a_manager_sets_on_a_folder_only_what_it_could_give() {
        let manager = [delegation("lrswixtea0", &[], None)];
        assert!(may_set_folder(&manager, None, "INBOX", rights("lrs")).is_ok());
        // `p` and `k` are not the manager's: not to give.
        let beyond = may_set_folder(&manager, None, "INBOX", rights("lrsk"));
        assert!(beyond.unwrap_err().contains("exceeds"));
        // A manager of INBOX only manages nothing in Sent.
        let inbox_only = [delegation("", &[("INBOX", "lrswixtea0")], None)];
        assert!(may_set_folder(&inbox_only, None, "Sent", rights("lr")).is_err());
        assert!(may_set_folder(&inbox_only, None, "INBOX", rights("lr")).is_ok());
    }

    #[test]
    fn a_manager_with_an_end_date_gives_nothing_that_outlives_it() {
        let until = [delegation("lrswixtea0", &[], Some(1000))];
        // A new delegation over IMAP has no end: refused.
        assert!(may_set_folder(&until, None, "INBOX", rights("lr")).is_err());
        // An existing one ending by then may gain rights.
        let ending = delegation("lr", &[], Some(900));
        assert!(may_set_folder(&until, Some(&ending), "INBOX", rights("lrs")).is_ok());
    }

    #[test]
    fn a_manager_touches_and_takes_away_only_what_it_could_have_given() {
        let manager = [delegation("lrswixtea0", &[], None)];
        // Another manager with `k` (beyond this one): neither changed nor removed.
        let stronger = delegation("lrswikxtea0", &[], None);
        assert!(may_set_folder(&manager, Some(&stronger), "INBOX", None).is_err());
        assert!(may_set_folder(&manager, Some(&stronger), "INBOX", rights("lr")).is_err());
        // A reader: rights taken away or removed whole, freely.
        let reader = delegation("lrs", &[], None);
        assert!(may_set_folder(&manager, Some(&reader), "INBOX", rights("l")).is_ok());
        assert!(may_set_folder(&manager, Some(&reader), "INBOX", None).is_ok());
    }

    #[test]
    fn a_manager_grants_within_its_rights_folders_and_end() {
        let manager = [delegation("lrswixtea0", &[], None)];
        let read = Rights::parse("lrs").unwrap();
        assert!(within_held(&manager, read, &[], None).is_ok());
        assert!(within_held(&manager, Rights::parse("lrsp").unwrap(), &[], None).is_err());
        // Only INBOX managed: INBOX yes, the whole BAL no.
        let inbox = [delegation("", &[("INBOX", "lrswixtea0")], None)];
        assert!(within_held(&inbox, read, &["INBOX/Labs".into()], None).is_ok());
        assert!(within_held(&inbox, read, &[], None).is_err());
        assert!(within_held(&inbox, read, &["Sent".into()], None).is_err());
        // No `a` at all: nothing.
        let secretary = [delegation("lrswixte0", &[], None)];
        assert!(within_held(&secretary, read, &[], None).is_err());
        // A manager until t grants until t at the latest.
        let until = [delegation("lrswixtea0", &[], Some(1000))];
        assert!(within_held(&until, read, &[], Some(1000)).is_ok());
        assert!(within_held(&until, read, &[], Some(1001)).is_err());
        assert!(within_held(&until, read, &[], None).is_err());
    }

    #[test]
    fn a_manager_touches_only_what_it_could_have_given() {
        let manager = [delegation("lrswixtea0", &[("Perso", "")], None)];
        let mut target = delegation("lrs", &[], None);
        // Its own rights stop at Perso: a BAL-wide delegation is beyond it.
        assert!(may_touch(&manager, &target).is_err());
        target.rights = Rights::NONE;
        target.folders = vec![crate::delegation::FolderRights {
            folder: "INBOX".into(),
            rights: Rights::parse("lrs").unwrap(),
        }];
        assert!(may_touch(&manager, &target).is_ok());
    }
}
