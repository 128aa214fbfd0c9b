//! Per-user `\Seen` of delegates (ADR 0034, RFC 4314 §4): a secretary reading a doctor's
//! BAL has a read state of their own, kept in `delegate_seen` (one row per message and
//! delegate once set or cleared), while the shared `flags` column keeps the holder's. Every
//! other flag stays shared.
//!
//! A delegate's view of a message: the shared flags without `\Seen`, plus `\Seen` when their
//! row says so; its modseq the larger of the shared one and their row's. A change to a
//! delegate's `\Seen` takes the folder's next modseq like any change (a later shared change
//! must land above it, or the delegate's CHANGEDSINCE would miss it), but leaves the shared
//! row's modseq alone: the holder's sessions see HIGHESTMODSEQ move and no message change.
//!
//! The readers here are named by the session's audit author (the delegate's address or PSC
//! identity), the same whether they open the BAL under `Other Users/` or log in as it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::flags::flags_from_text;
use crate::group_commit::Txn;
use crate::message_ref::MessageRef;

pub(crate) const SEEN: &str = "\\Seen";

/// `flags` without `\Seen`, with it when `seen`.
pub(crate) fn with_seen(flags: &[String], seen: bool) -> Vec<String> {
    let mut out: Vec<String> = flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case(SEEN))
        .cloned()
        .collect();
    if seen {
        out.push(SEEN.to_string());
    }
    out
}

pub(crate) fn has_seen(flags: &[String]) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(SEEN))
}

/// The messages of a folder with `reader`'s row joined ($1 folder, $2 reader); the caller
/// adds its conditions on `mm` and `s` and its ORDER BY.
pub(crate) const SELECT_AS_DELEGATE: &str = "SELECT mm.uid, mm.modseq, mm.flags, \
     s.seen AS delegate_seen, s.modseq AS delegate_modseq \
     FROM mailbox_messages mm LEFT JOIN delegate_seen s \
     ON s.mailbox_id = mm.mailbox_id AND s.uid = mm.uid AND s.reader = $2 \
     WHERE mm.mailbox_id = $1";

/// A row of [`SELECT_AS_DELEGATE`]: (the shared ref, the delegate's `\Seen` row if any as
/// (seen, modseq)).
pub(crate) fn shared_and_delegate(r: &AnyRow) -> Result<(MessageRef, Option<(bool, u64)>)> {
    let shared = MessageRef {
        uid: r.try_get::<i64, _>("uid")? as u32,
        modseq: r.try_get::<i64, _>("modseq")? as u64,
        flags: flags_from_text(&r.try_get::<String, _>("flags")?),
    };
    let seen = r.try_get::<Option<i64>, _>("delegate_seen")?;
    let modseq = r.try_get::<Option<i64>, _>("delegate_modseq")?;
    Ok((shared, seen.zip(modseq).map(|(s, m)| (s != 0, m as u64))))
}

/// The message as the delegate sees it (module documentation).
pub(crate) fn as_delegate(shared: MessageRef, row: Option<(bool, u64)>) -> MessageRef {
    let (seen, modseq) = row.unwrap_or((false, 0));
    MessageRef {
        uid: shared.uid,
        modseq: shared.modseq.max(modseq),
        flags: with_seen(&shared.flags, seen),
    }
}

/// Most messages in one statement of [`set_delegate_seen`] (4 values bound per statement
/// plus one per message; SQLite's default limit is 32,766).
const ROWS_PER_STATEMENT: usize = 500;

/// Sets `reader`'s `\Seen` on `uids` of a folder to `seen`, at `modseq`: one statement per
/// 500 messages, not one per message (a STORE on a range is one write, ADR 0042).
pub(crate) async fn set_delegate_seen(
    txn: &mut Txn,
    folder_id: i64,
    reader: &str,
    uids: &[u32],
    seen: bool,
    modseq: u64,
) -> Result<()> {
    for chunk in uids.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, ${}, $2, $3, $4)", i + 5))
            .collect();
        let sql = format!(
            "INSERT INTO delegate_seen (mailbox_id, uid, reader, seen, modseq) VALUES {} \
             ON CONFLICT (mailbox_id, uid, reader) \
             DO UPDATE SET seen = excluded.seen, modseq = excluded.modseq",
            rows.join(", ")
        );
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folder_id)
            .bind(reader)
            .bind(seen as i64)
            .bind(modseq as i64);
        for &uid in chunk {
            q = q.bind(uid as i64);
        }
        q.execute(&mut **txn).await?;
    }
    Ok(())
}

/// Most copies in one statement of [`copy_delegate_seen`] (2 values bound per copy).
const COPIES_PER_STATEMENT: usize = 250;

/// COPY and MOVE: the delegates' read state follows each message to its copy (whose own new
/// modseq already covers the change, hence 0 here). `copies`: (source UID in `from`, new
/// UID in `to`) of the messages that have such rows; one statement per 250 of them, not
/// one per message.
pub(crate) async fn copy_delegate_seen(
    txn: &mut Txn,
    from: i64,
    to: i64,
    copies: &[(i64, u32)],
) -> Result<()> {
    for chunk in copies.chunks(COPIES_PER_STATEMENT) {
        let pairs: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 3, 2 * i + 4))
            .collect();
        let sql = format!(
            "INSERT INTO delegate_seen (mailbox_id, uid, reader, seen, modseq) \
             SELECT $1, v.column2, s.reader, s.seen, 0 FROM (VALUES {}) AS v \
             JOIN delegate_seen s ON s.mailbox_id = $2 AND s.uid = v.column1",
            pairs.join(", ")
        );
        // Only placeholders are formatted in; every value is bound. The text differs with
        // the number of copies: only the one-message form (every COPY of one message, the
        // common case) is kept in the connection's statement cache, where texts for every
        // other count would push out the statements each write uses.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(chunk.len() == 1)
            .bind(to)
            .bind(from);
        for &(uid, new_uid) in chunk {
            q = q.bind(uid).bind(i64::from(new_uid));
        }
        q.execute(&mut **txn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(uid: u32, modseq: u64, flags: &[&str]) -> MessageRef {
        MessageRef {
            uid,
            modseq,
            flags: flags.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_delegate_sees_their_own_seen_and_the_larger_modseq() {
        let shared = r(1, 5, &["\\Seen", "\\Flagged"]);
        assert_eq!(as_delegate(shared.clone(), None), r(1, 5, &["\\Flagged"]));
        assert_eq!(
            as_delegate(shared.clone(), Some((true, 9))),
            r(1, 9, &["\\Flagged", "\\Seen"])
        );
        assert_eq!(as_delegate(r(1, 12, &[]), Some((false, 9))), r(1, 12, &[]));
    }
}
