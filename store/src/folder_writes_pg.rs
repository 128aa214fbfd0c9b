//! IMAP writes on PostgreSQL in one statement each (ADR 0043), as deliveries are
//! (`delivery_pg.rs`): a statement outside a transaction block is its own transaction, so
//! the write costs one round trip and one commit instead of BEGIN, a statement per row and
//! COMMIT. The rows written are exactly those of the transaction paths
//! (`folder_messages.rs::append_in`, `folder.rs`'s `ClaimRecent`), which SQLite keeps (its
//! dialect has no data-modifying CTEs) and which PostgreSQL still uses for `mssante
//! migrate`. A delegate's APPEND runs the same statement in a transaction with its audit
//! entry (ADR 0044).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AnyQuery, PendingAudit};
use crate::delegate_seen::set_delegate_seen;
use crate::delivery::MessageMeta;
use crate::error::{Result, StoreError};
use crate::flags::{FlagOp, apply_flags, same_flags};
use crate::folder::RecentClaim;
use crate::folder_flags::FlagUpdate;
use crate::folder_messages::{AppendPg, ref_from_row};
use crate::group_commit::{Txn, write_by};
use crate::message_ref::MessageRef;
use crate::{Store, now, retrying_conflicts};

/// APPEND: the blob, the `messages` row, the folder's next UID and modseq (under its row
/// lock, RFC 9051 §2.3.1.1, RFC 7162 §3.1.1) and the `mailbox_messages` row; other nodes
/// are told after the commit (ADR 0053). `ok` is the folder when the message fits in its
/// BAL's quota (RFC 9208, OVERQUOTA, read in the statement's snapshot, as the separate
/// read it replaces; `$11` false skips
/// the check): nothing is written otherwise. The counter row is taken last (ADR 0046): `old`
/// locks it once initplans have inserted the message and its body, so concurrent writers
/// of the folder queue behind it only for the two small rows and the commit; `FOR UPDATE`
/// reads the row's newest version, whose `first_recent_uid` the statement returns. With
/// `$12` the write claims \\Recent up to the new UIDNEXT for its caller (ADR 0050): the
/// messages from that `first_recent_uid` on are recent for the caller only. The
/// statement adds the message's bytes to the BAL's usage row itself (ADR 0049, no insert
/// trigger) after reading `mb` (an initplan), so the folder row is locked before the BAL's,
/// the order of every write (ADR 0040). A folder
/// that is gone by then fails the whole statement (a division by zero) rather than leaving
/// a message row without a copy.
const APPEND: &str = "WITH f AS (SELECT f.id, b.id AS bal_id, (NOT $11 OR b.quota_bytes IS NULL \
     OR b.used_bytes + $2 <= b.quota_bytes) AS room FROM mailboxes f JOIN bals b ON b.id = f.bal_id \
     WHERE f.id = $8), \
     ok AS (SELECT id FROM f WHERE room), \
     b AS (INSERT INTO blobs (hash, size, created_at) SELECT $1, $2, $3 FROM ok \
     ON CONFLICT (hash) DO NOTHING RETURNING hash), \
     d AS (INSERT INTO blob_data (hash, data) SELECT $1, $4 FROM ok ON CONFLICT (hash) DO NOTHING \
     RETURNING hash), \
     m AS (INSERT INTO messages (blob_hash, size, received_at, mail_from, source, message_id_hdr, \
     subject, x_mss_nil) SELECT $1, $2, $3, '', 'imap', $5, $6, $7 FROM ok RETURNING id), \
     old AS (SELECT id, first_recent_uid FROM mailboxes \
     WHERE id = (SELECT id FROM ok) AND (SELECT count(*) FROM m) = 1 \
     AND (SELECT count(*) FROM b) + (SELECT count(*) FROM d) >= 0 FOR UPDATE), \
     mb AS (UPDATE mailboxes x SET uidnext = x.uidnext + 1, highestmodseq = x.highestmodseq + 1, \
     first_recent_uid = CASE WHEN $12 THEN x.uidnext + 1 ELSE x.first_recent_uid END \
     FROM old WHERE x.id = old.id \
     RETURNING x.id, x.uidvalidity, x.uidnext - 1 AS uid, x.highestmodseq, \
     old.first_recent_uid AS first_recent), \
     mm AS (INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate, \
     saved_at) SELECT mb.id, mb.uid, m.id, mb.highestmodseq, $9, $10, $3 FROM mb, m), \
     u AS (UPDATE bals SET used_bytes = used_bytes + $2 WHERE id = (SELECT bal_id FROM f) \
     AND (SELECT count(*) FROM mb) = 1) \
     SELECT (SELECT count(*) FROM f)::BIGINT AS folders, (SELECT count(*) FROM ok)::BIGINT AS room, \
     (SELECT uidvalidity FROM mb) AS uidvalidity, (SELECT uid FROM mb) AS uid, \
     (SELECT first_recent FROM mb) AS first_recent, \
     (1 / ((SELECT count(*) FROM mb) + 1 - (SELECT count(*) FROM ok))::INT)::BIGINT AS folder_kept";

/// The \Recent claim (RFC 3501 §2.3.2), see [`Store::claim_recent`]. The folder row is
/// locked (and the claim committed, with its fsync) only when it has unclaimed messages:
/// `FOR UPDATE` re-reads the newest row version after waiting for a concurrent claim and
/// skips it when that claim took everything; the `UPDATE` then writes the row it locked.
/// With nothing to claim, UIDNEXT of the statement's snapshot is the answer: every message
/// the caller knows of was read before this statement, so its UID is below it.
const CLAIM_RECENT: &str = "WITH old AS (SELECT id, first_recent_uid FROM mailboxes \
     WHERE id = $1 AND first_recent_uid < uidnext FOR UPDATE), \
     claimed AS (UPDATE mailboxes m SET first_recent_uid = m.uidnext FROM old \
     WHERE m.id = old.id RETURNING old.first_recent_uid) \
     SELECT COALESCE((SELECT first_recent_uid FROM claimed), uidnext) AS first \
     FROM mailboxes WHERE id = $1";

/// COPY (RFC 9051 §6.4.7) of the source messages whose UIDs match `{runs}` (parameters
/// from `$5`): `src` numbers them by UID; the target's counter row takes as many UIDs and
/// modseqs at once, the copies get them in order (the values the transaction path's one
/// `UPDATE` per message gives), the delegates' `\Seen` rows of the sources follow their
/// copies (ADR 0034), and their bytes are added to the BAL's
/// usage after the target's row is locked (ADR 0049). `ok` is the target when the copies
/// fit in its BAL's quota (RFC 9208, OVERQUOTA): nothing is written otherwise. A target deleted
/// meanwhile fails the statement (division by zero), as APPEND's does. With `$4` the write
/// claims \\Recent up to the target's new UIDNEXT for its caller, as APPEND's (ADR 0050).
/// `{audit}` and `{audited}`: a delegate's audit entry and its check (ADR 0059,
/// [`copy_sql`]).
const COPY: &str = "WITH src AS (SELECT mm.uid, mm.message_id, mm.flags, mm.internaldate, m.size, \
     row_number() OVER (ORDER BY mm.uid) AS rn \
     FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
     WHERE mm.mailbox_id = $1 AND ({runs})), \
     tally AS (SELECT count(*) AS n, COALESCE(sum(size), 0) AS bytes FROM src), \
     f AS (SELECT f.id, b.id AS bal_id, tally.n, (b.quota_bytes IS NULL OR b.used_bytes + tally.bytes <= b.quota_bytes) \
     AS room FROM mailboxes f JOIN bals b ON b.id = f.bal_id, tally WHERE f.id = $2), \
     ok AS (SELECT id, n FROM f WHERE room AND n > 0), \
     old AS (SELECT id, first_recent_uid FROM mailboxes WHERE id = (SELECT id FROM ok) FOR UPDATE), \
     mb AS (UPDATE mailboxes t SET uidnext = t.uidnext + ok.n, highestmodseq = t.highestmodseq + ok.n, \
     first_recent_uid = CASE WHEN $4 THEN t.uidnext + ok.n ELSE t.first_recent_uid END \
     FROM ok, old WHERE t.id = ok.id AND old.id = t.id \
     RETURNING t.uidnext - ok.n AS first_uid, t.highestmodseq - ok.n AS base_modseq, \
     old.first_recent_uid AS first_recent, t.uidnext AS next_uid), \
     mm AS (INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate, saved_at) \
     SELECT $2, mb.first_uid + src.rn - 1, src.message_id, mb.base_modseq + src.rn, src.flags, \
     src.internaldate, $3 FROM src, mb), \
     ds AS (INSERT INTO delegate_seen (mailbox_id, uid, reader, seen, modseq) \
     SELECT $2, mb.first_uid + src.rn - 1, s.reader, s.seen, 0 \
     FROM src JOIN delegate_seen s ON s.mailbox_id = $1 AND s.uid = src.uid, mb), \
     u AS (UPDATE bals SET used_bytes = used_bytes + (SELECT bytes FROM tally) \
     WHERE id = (SELECT bal_id FROM f) AND (SELECT count(*) FROM mb) = 1){audit} \
     SELECT src.uid AS source_uid, mb.first_uid + src.rn - 1 AS uid, mb.first_recent, mb.next_uid, \
     (SELECT count(*) FROM f)::BIGINT AS folders, (SELECT count(*) FROM f WHERE room)::BIGINT AS room, \
     (1 / ((SELECT count(*) FROM mb) + 1 - (SELECT count(*) FROM ok))::INT)::BIGINT AS folder_kept{audited} \
     FROM src LEFT JOIN mb ON true ORDER BY src.uid";

/// EXPUNGE (RFC 9051 §6.4.3) of the messages whose UIDs match `{runs}` (parameters from
/// `$2`): one new modseq, the rows deleted, their UIDs remembered for QRESYNC's VANISHED
/// (RFC 7162 §3.2.10) with it. The delete reads `mb`,
/// so the folder row is locked before the message rows, as a STORE takes them.
/// `{audit}` and `{audited}`: a delegate's audit entry and its check (ADR 0059,
/// [`expunge_sql`]).
const EXPUNGE: &str = "WITH mb AS (UPDATE mailboxes SET highestmodseq = highestmodseq + 1 \
     WHERE id = $1 RETURNING id, highestmodseq), \
     d AS (DELETE FROM mailbox_messages WHERE mailbox_id = (SELECT id FROM mb) AND ({runs}) \
     RETURNING uid), \
     e AS (INSERT INTO expunged (mailbox_id, uid, modseq) \
     SELECT $1, d.uid, (SELECT highestmodseq FROM mb) FROM d){audit} \
     SELECT (SELECT count(*) FROM mb)::BIGINT AS folders, d.uid{audited} \
     FROM (SELECT 1) one LEFT JOIN d ON true \
     ORDER BY d.uid";

/// STORE's write (RFC 9051 §6.4.6, RFC 7162 §3.1.3) of flags computed from a read of the
/// rows (`$2…`: uid, modseq read, new flags, per message): one new modseq, each row updated
/// only if its modseq is still the one read, and the statement fails (division by zero)
/// unless every row was, so that a concurrent change is never overwritten: the caller reads
/// again and recomputes (ADR 0046). The folder row is locked before the message rows (the
/// update joins `mb`), the order of every write.
const STORE_FLAGS: &str = "WITH w (uid, seen, flags) AS (VALUES {values}), \
     mb AS (UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 \
     RETURNING id, highestmodseq), \
     u AS (UPDATE mailbox_messages mm SET flags = w.flags, modseq = mb.highestmodseq FROM w, mb \
     WHERE mm.mailbox_id = mb.id AND mm.uid = w.uid AND mm.modseq = w.seen RETURNING mm.uid) \
     SELECT (SELECT highestmodseq FROM mb) AS modseq, \
     (1 / ((SELECT count(*) FROM u) = {count})::INT)::BIGINT AS all_written";

/// Most messages one [`STORE_FLAGS`] statement writes (three parameters each); a STORE
/// changing more takes the transaction path.
pub(crate) const MAX_STORE_WRITES: usize = 500;

/// How often a STORE reads again after a concurrent change before it takes the transaction
/// path, which locks the folder row before reading.
const STORE_ATTEMPTS: u32 = 4;

/// `(uid BETWEEN $n AND $n+1 OR …)` for `runs`, parameters numbered from `first`.
pub(crate) fn runs_clause(column: &str, first: usize, runs: usize) -> String {
    let terms: Vec<String> = (0..runs)
        .map(|i| {
            format!(
                "{column} BETWEEN ${} AND ${}",
                first + 2 * i,
                first + 2 * i + 1
            )
        })
        .collect();
    terms.join(" OR ")
}

impl Store {
    /// APPEND in one statement; returns (uidvalidity, uid). The caller tells local
    /// and other nodes (`Store::folder_committed`, ADR 0053).
    pub(crate) async fn append_pg(&self, a: &AppendPg<'_>) -> Result<Appended> {
        let row = retrying_conflicts(|| async {
            // The tagged OK waits for the commit, not for the first row (`fetch_committed`).
            crate::db::fetch_committed(bind_append(a), self.pool())
                .await
                .and_then(|row| row.ok_or(sqlx::Error::RowNotFound))
                .map_err(folder_gone)
        })
        .await?;
        appended(&row, a.claim_recent)
    }

    /// A delegate's APPEND (ADR 0044): the same statement, then the audit entry, in one
    /// transaction (BEGIN, the statement, the chain's lock, the entry, COMMIT) rather than
    /// the transaction path's statement per row; with the delegate's own `\Seen` row before
    /// the entry when the flags had `\Seen` (ADR 0034).
    pub(crate) async fn append_pg_audited(
        &self,
        a: &AppendPg<'_>,
        audit: PendingAudit,
        own_seen: Option<String>,
    ) -> Result<Appended> {
        let write = AppendPgAudited {
            folder_id: a.folder_id,
            hash: a.hash.to_string(),
            size: a.size,
            bytes: a.bytes.to_vec(),
            flags: a.flags.to_string(),
            internaldate: a.internaldate,
            meta: a.meta.clone(),
            check_quota: a.check_quota,
            claim_recent: a.claim_recent,
            audit,
            own_seen,
        };
        self.write(write).await
    }

    /// COPY in one statement; (source uid, new uid) pairs, none when no source matched, and
    /// the \\Recent claim when `claim_recent` and something was copied.
    pub(crate) async fn copy_pg(
        &self,
        from: i64,
        runs: &[(u32, u32)],
        to: i64,
        claim_recent: bool,
    ) -> Result<(Vec<(u32, u32)>, Option<RecentClaim>)> {
        let sql = copy_sql(runs.len(), None);
        let rows = retrying_conflicts(|| async {
            bind_copy(&sql, (from, to), claim_recent, runs)
                .fetch_all(self.pool())
                .await
                .map_err(folder_gone)
        })
        .await?;
        copied(&rows, claim_recent)
    }

    /// EXPUNGE in one statement; the UIDs removed, ascending.
    pub(crate) async fn expunge_pg(&self, folder_id: i64, runs: &[(u32, u32)]) -> Result<Vec<u32>> {
        let sql = expunge_sql(runs.len(), None);
        let rows = retrying_conflicts(|| async {
            bind_runs(&sql, folder_id, runs)
                .fetch_all(self.pool())
                .await
                .map_err(StoreError::Database)
        })
        .await?;
        if rows
            .first()
            .map(|r| r.try_get::<i64, _>("folders"))
            .transpose()?
            != Some(1)
        {
            return Err(StoreError::NotFound("folder".into()));
        }
        let mut removed = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(uid) = r.try_get::<Option<i64>, _>("uid")? {
                removed.push(uid as u32);
            }
        }
        Ok(removed)
    }

    /// STORE on the shared flags: a read of the rows and one statement writing those that
    /// change, on one pooled connection (ADR 0046). `None` when concurrent changes kept
    /// invalidating the read, or the STORE writes too many messages: the caller takes the
    /// transaction path.
    pub(crate) async fn update_flags_pg(
        &self,
        folder_id: i64,
        runs: &[(u32, u32)],
        change: (FlagOp, &[String]),
        unchanged_since: Option<u64>,
    ) -> Result<Option<FlagUpdate>> {
        let read_sql = format!(
            "SELECT uid, modseq, flags FROM mailbox_messages WHERE mailbox_id = $1 AND ({}) \
             ORDER BY uid",
            runs_clause("uid", 2, runs.len())
        );
        let mut conn = self.pool().acquire().await?;
        for _ in 0..STORE_ATTEMPTS {
            // Only placeholders are formatted in; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(read_sql.clone())).bind(folder_id);
            for &(lo, hi) in runs {
                q = q.bind(lo as i64).bind(hi as i64);
            }
            let current = q.fetch_all(&mut *conn).await?;
            let current: Vec<MessageRef> =
                current.iter().map(ref_from_row).collect::<Result<_>>()?;
            let plan = plan_flags(&current, change, unchanged_since);
            if plan.writes.len() > MAX_STORE_WRITES {
                return Ok(None);
            }
            if plan.writes.is_empty() {
                return Ok(Some(FlagUpdate {
                    changed: Vec::new(),
                    conflicts: plan.conflicts,
                }));
            }
            match self
                .write_flags_pg(&mut conn, folder_id, &plan.writes)
                .await
            {
                Ok(Some(modseq)) => return Ok(Some(plan.into_update(modseq))),
                Ok(None) => continue,
                Err(e) if e.is_write_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// [`STORE_FLAGS`] for `writes`; the new modseq, or `None` when a row changed since it
    /// was read (nothing written then).
    async fn write_flags_pg(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        folder_id: i64,
        writes: &[FlagWrite],
    ) -> Result<Option<u64>> {
        let values: Vec<String> = (0..writes.len())
            .map(|i| {
                let p = 2 + 3 * i;
                format!("(${p}::BIGINT, ${}::BIGINT, ${}::TEXT)", p + 1, p + 2)
            })
            .collect();
        let sql = STORE_FLAGS
            .replace("{values}", &values.join(", "))
            .replace("{count}", &writes.len().to_string());
        // Only placeholders and the count are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(folder_id);
        for w in writes {
            q = q
                .bind(w.uid as i64)
                .bind(w.read_modseq as i64)
                .bind(w.flags.join(" "));
        }
        // `fetch_all` reads up to ReadyForQuery, after the commit (ADR 0048).
        match q.fetch_all(&mut **conn).await {
            Ok(rows) => {
                let row = rows
                    .first()
                    .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
                Ok(Some(row.try_get::<i64, _>("modseq")? as u64))
            }
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("22012") => Ok(None),
            Err(e) => Err(StoreError::Database(e)),
        }
    }

    /// [`Store::claim_recent`] on PostgreSQL: one round trip, claim or not.
    pub(crate) async fn claim_recent_pg(&self, folder_id: i64) -> Result<u32> {
        let row = retrying_conflicts(|| async {
            crate::db::fetch_committed(sqlx::query(CLAIM_RECENT).bind(folder_id), self.pool())
                .await
                .map_err(StoreError::Database)
        })
        .await?
        .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        Ok(row.try_get::<i64, _>("first")? as u32)
    }
}

/// A message whose flags a STORE changes: its UID, the modseq it was read with, its new flags.
struct FlagWrite {
    uid: u32,
    read_modseq: u64,
    flags: Vec<String>,
}

/// What a STORE does to the rows it read.
struct FlagPlan {
    writes: Vec<FlagWrite>,
    /// Changed after UNCHANGEDSINCE (RFC 7162 §3.1.3), left as they are.
    conflicts: Vec<u32>,
}

impl FlagPlan {
    fn into_update(self, modseq: u64) -> FlagUpdate {
        let changed = self
            .writes
            .into_iter()
            .map(|w| MessageRef {
                uid: w.uid,
                modseq,
                flags: w.flags,
            })
            .collect();
        FlagUpdate {
            changed,
            conflicts: self.conflicts,
        }
    }
}

/// The new flags of each message of `current` that `op` changes, as the transaction path
/// computes them (`folder_flags.rs::update_flags_in`).
fn plan_flags(
    current: &[MessageRef],
    (op, flags): (FlagOp, &[String]),
    unchanged_since: Option<u64>,
) -> FlagPlan {
    let mut plan = FlagPlan {
        writes: Vec::new(),
        conflicts: Vec::new(),
    };
    for m in current {
        if unchanged_since.is_some_and(|since| m.modseq > since) {
            plan.conflicts.push(m.uid);
            continue;
        }
        let new = apply_flags(&m.flags, op, flags);
        if !same_flags(&new, &m.flags) {
            plan.writes.push(FlagWrite {
                uid: m.uid,
                read_modseq: m.modseq,
                flags: new,
            });
        }
    }
    plan
}

/// [`EXPUNGE`] for `runs` UID runs (parameters from `$2`); with `audited`, the first
/// placeholder after them, the statement also appends a delegate's audit entry and fails
/// unless it did and every message asked for was removed (`$audited` their count, then the
/// entry's, ADR 0059).
pub(crate) fn expunge_sql(runs: usize, audited: Option<usize>) -> String {
    let (audit, check) = audited_parts(audited, "d");
    EXPUNGE
        .replace("{runs}", &runs_clause("uid", 2, runs))
        .replace("{audit}", &audit)
        .replace("{audited}", &check)
}

/// [`expunge_sql`]'s statement with `$1` (the folder) and the runs bound.
pub(crate) fn bind_runs<'q>(sql: &'q str, folder_id: i64, runs: &[(u32, u32)]) -> AnyQuery<'q> {
    // Only placeholders are formatted in; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(folder_id);
    for &(lo, hi) in runs {
        q = q.bind(lo as i64).bind(hi as i64);
    }
    q
}

/// The `{audit}` CTEs (placeholders from `$first + 1`) and the `{audited}` column of a
/// statement that appends a delegate's audit entry (ADR 0059): the column divides by zero
/// unless the entry was appended and `$first` rows are in `rows` (the messages the entry
/// names). Both empty without `first`.
fn audited_parts(first: Option<usize>, rows: &str) -> (String, String) {
    match first {
        Some(first) => (
            format!(", {}", crate::audit::pg_append_ctes(first + 1, "mb")),
            format!(
                ", (1 / ((SELECT count(*) FROM {rows}) = ${first} \
                 AND (SELECT count(*) FROM a) = 1)::INT)::BIGINT AS audited"
            ),
        ),
        None => (String::new(), String::new()),
    }
}

/// [`COPY`] for `runs` UID runs; with `audited`, the first placeholder after them, the
/// statement also appends a delegate's audit entry and fails unless it did and every
/// message of the runs was copied (`$audited` their count, then the entry's, ADR 0059).
pub(crate) fn copy_sql(runs: usize, audited: Option<usize>) -> String {
    let (audit, check) = audited_parts(audited, "src");
    COPY.replace("{runs}", &runs_clause("mm.uid", 5, runs))
        .replace("{audit}", &audit)
        .replace("{audited}", &check)
}

/// [`copy_sql`]'s statement with its first values bound: `$1` to `$4`, the runs from `$5`.
pub(crate) fn bind_copy<'q>(
    sql: &'q str,
    (from, to): (i64, i64),
    claim_recent: bool,
    runs: &[(u32, u32)],
) -> AnyQuery<'q> {
    // Only placeholders are formatted in; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .bind(now())
        .bind(claim_recent);
    for &(lo, hi) in runs {
        q = q.bind(lo as i64).bind(hi as i64);
    }
    q
}

/// What a [`COPY`] statement's rows say: (source UID, new UID) pairs, none when no source
/// matched, and the \\Recent claim when `claim_recent` and something was copied; the
/// target gone or its BAL's quota full refuse it.
pub(crate) fn copied(rows: &[AnyRow], claim_recent: bool) -> Result<CopiedPairs> {
    let Some(first) = rows.first() else {
        return Ok((Vec::new(), None));
    };
    if first.try_get::<i64, _>("folders")? == 0 {
        return Err(StoreError::NotFound("folder".into()));
    }
    if first.try_get::<i64, _>("room")? == 0 {
        return Err(StoreError::OverQuota);
    }
    let recent = match claim_recent {
        true => Some(RecentClaim {
            first: first.try_get::<i64, _>("first_recent")? as u32,
            next: first.try_get::<i64, _>("next_uid")? as u32,
        }),
        false => None,
    };
    let pairs = rows
        .iter()
        .map(|r| {
            let source: i64 = r.try_get("source_uid")?;
            let uid: i64 = r.try_get("uid")?;
            Ok((source as u32, uid as u32))
        })
        .collect::<Result<_>>()?;
    Ok((pairs, recent))
}

/// A COPY's (source UID, new UID) pairs and its \\Recent claim.
pub(crate) type CopiedPairs = (Vec<(u32, u32)>, Option<RecentClaim>);

/// [`APPEND`] with the values of `a` bound.
fn bind_append<'q>(a: &'q AppendPg<'_>) -> AnyQuery<'q> {
    sqlx::query(APPEND)
        .bind(a.hash)
        .bind(a.size)
        .bind(now())
        .bind(a.bytes)
        .bind(a.meta.message_id.as_deref())
        .bind(a.meta.subject.as_deref())
        .bind(a.meta.x_mss_nil.as_deref())
        .bind(a.folder_id)
        .bind(a.flags)
        .bind(a.internaldate)
        .bind(a.check_quota)
        .bind(a.claim_recent)
}

/// (uidvalidity, uid) from the row [`APPEND`] returns, with the \\Recent claim when `claim`;
/// the folder gone or the quota full refuse it.
fn appended(row: &AnyRow, claim: bool) -> Result<Appended> {
    if row.try_get::<i64, _>("folders")? == 0 {
        return Err(StoreError::NotFound("folder".into()));
    }
    if row.try_get::<i64, _>("room")? == 0 {
        return Err(StoreError::OverQuota);
    }
    let uidvalidity: i64 = row.try_get("uidvalidity")?;
    let uid: i64 = row.try_get("uid")?;
    let recent = claim
        .then(|| row.try_get::<i64, _>("first_recent"))
        .transpose()?
        .map(|first| RecentClaim {
            first: first as u32,
            next: uid as u32 + 1,
        });
    Ok(((uidvalidity as u32, uid as u32), recent))
}

/// What an APPEND stored, (uidvalidity, uid), and its \\Recent claim when asked for.
type Appended = ((u32, u32), Option<RecentClaim>);

/// What [`Store::append_pg_audited`] writes, owned (a write may run again, ADR 0040).
struct AppendPgAudited {
    folder_id: i64,
    hash: String,
    size: i64,
    bytes: Vec<u8>,
    flags: String,
    internaldate: i64,
    meta: MessageMeta,
    check_quota: bool,
    claim_recent: bool,
    audit: PendingAudit,
    /// A delegate's own `\Seen` on the new message (ADR 0034).
    own_seen: Option<String>,
}

write_by!(AppendPgAudited, Appended, append_audited_in);

async fn append_audited_in(txn: &mut Txn, w: &AppendPgAudited) -> Result<Appended> {
    let a = AppendPg {
        folder_id: w.folder_id,
        hash: &w.hash,
        size: w.size,
        bytes: &w.bytes,
        flags: &w.flags,
        internaldate: w.internaldate,
        meta: &w.meta,
        check_quota: w.check_quota,
        claim_recent: w.claim_recent,
    };
    let row = bind_append(&a)
        .fetch_one(&mut **txn)
        .await
        .map_err(folder_gone)?;
    let appended = appended(&row, w.claim_recent)?;
    let uid = appended.0.1;
    if let Some(reader) = &w.own_seen {
        set_delegate_seen(txn, w.folder_id, reader, &[uid], true, 0).await?;
    }
    w.audit.record(txn, &[uid]).await?;
    Ok(appended)
}

/// The statement's division by zero is a folder that no longer exists.
fn folder_gone(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("22012") => {
            StoreError::NotFound("folder".into())
        }
        _ => StoreError::Database(e),
    }
}
