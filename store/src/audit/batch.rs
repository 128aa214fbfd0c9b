//! The audit entries of one group commit, inserted together at the end of the group's
//! transaction (ADR 0044): every delegate's write and read trace of the group adds its entry
//! to the group's list instead of running an insert of its own, and the list is written by
//! one statement per 128 entries just before the commit. The entries still commit with the
//! actions they record (same transaction), chained per BAL in the order the group ran them.
//! SQLite's committer takes every write; PostgreSQL's takes the delegates' read traces
//! (ADR 0035), and first locks the chains of the group's BALs in one statement, in the order
//! of their ids, as every writer of a chain takes its lock (ADR 0060).
//!
//! Each BAL's first entry in the list chains to the head its chain had, as the hint of ADR
//! 0042 remembers it (or as read once when there is none); the statement inserts nothing
//! for a BAL whose remembered head is no longer its last entry, and the group then fails:
//! the committer runs its writes again one transaction each (ADR 0031), where every entry
//! is appended on its own and reads the chain's head when the hint was stale. A stale hint
//! thus never forks a chain, and costs one retried group (another process appended: the
//! command line, a restore).

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use crate::audit::{
    AnyQuery, AuditEntry, AuditEvent, ChainHeads, bind_entry, chained_entry, last_link,
};
use crate::error::{Result, StoreError};
use crate::{Engine, Txn};

/// Most entries in one insert: 13 values bound per entry, far below SQLite's 32,766. A
/// power of two: statements are padded to one (see [`insert_rows`]).
const ENTRIES_PER_STATEMENT: usize = 128;

/// The entries the writes of the running group recorded, in order.
#[derive(Default)]
struct Batch {
    heads: Option<Arc<ChainHeads>>,
    events: Vec<AuditEvent>,
}

tokio::task_local! {
    /// Set by the SQLite committer around the writes of a group.
    static BATCH: RefCell<Batch>;
}

/// Runs the writes of a group (`work`), collecting the audit entries they record; the
/// committer then inserts them ([`Collected::insert`]) before its COMMIT.
pub(crate) async fn collecting<F>(work: F) -> Result<Collected>
where
    F: Future<Output = Result<()>>,
{
    let (ran, batch) = BATCH
        .scope(RefCell::new(Batch::default()), async move {
            let ran = work.await;
            let batch = BATCH.with(|b| std::mem::take(&mut *b.borrow_mut()));
            (ran, batch)
        })
        .await;
    ran?;
    Ok(Collected(batch))
}

/// The audit entries a group's writes recorded, to insert in its transaction.
pub(crate) struct Collected(Batch);

impl Collected {
    pub(crate) async fn insert(self, txn: &mut Txn, engine: Engine) -> Result<()> {
        let Some(heads) = self.0.heads else {
            return Ok(());
        };
        if engine == Engine::Postgres {
            lock_chains(txn, &self.0.events).await?;
        }
        insert_batch(txn, &heads, &self.0.events, engine).await
    }
}

/// PostgreSQL: the chain locks of every BAL of `events` (`audit::lock_chain`), in one
/// statement, in the order of the BALs' ids, so that two groups, or a group and a write,
/// never wait for each other's in a circle.
async fn lock_chains(txn: &mut Txn, events: &[AuditEvent]) -> Result<()> {
    let mut bals: Vec<i64> = events.iter().map(|e| e.bal_id).collect();
    bals.sort_unstable();
    bals.dedup();
    let values: Vec<String> = (1..=bals.len())
        .map(|i| format!("(${i}::BIGINT)"))
        .collect();
    let sql = format!(
        "SELECT pg_advisory_xact_lock(1096107076, CAST(b AS INTEGER)) \
         FROM (SELECT b FROM (VALUES {}) AS v (b) ORDER BY b OFFSET 0) AS sorted",
        values.join(", ")
    );
    // Only placeholders are formatted in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for bal in bals {
        query = query.bind(bal);
    }
    query.fetch_all(&mut **txn).await?;
    Ok(())
}

/// Adds `event` to the running group's entries: `false` (nothing done) outside a group that
/// collects them, where the caller appends it itself.
pub(crate) fn add(heads: &Arc<ChainHeads>, event: &AuditEvent) -> bool {
    BATCH
        .try_with(|b| {
            let mut b = b.borrow_mut();
            b.heads.get_or_insert_with(|| heads.clone());
            b.events.push(event.clone());
        })
        .is_ok()
}

/// One entry to insert and whether its predecessor must already be stored (the first entry
/// of its BAL in the batch, chained to a head not read in this transaction).
struct Row {
    entry: AuditEntry,
    bal_id: i64,
    check: bool,
}

/// Chains `events` per BAL after each chain's head and inserts them; fails (the group is
/// retried one write at a time) when a remembered head was stale.
async fn insert_batch(
    txn: &mut Txn,
    heads: &ChainHeads,
    events: &[AuditEvent],
    engine: Engine,
) -> Result<()> {
    let mut links: Vec<Link> = Vec::new();
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let at = match links.iter().position(|l| l.bal_id == event.bal_id) {
            Some(at) => at,
            None => {
                let (head, check) = match heads.get(event.bal_id) {
                    Some(hint) => (Some(hint), true),
                    // Read in this transaction, under SQLite's single writer or the chain's
                    // lock taken above on PostgreSQL: it is the head.
                    None => (last_link(txn, event.bal_id).await?, false),
                };
                links.push(Link {
                    bal_id: event.bal_id,
                    head,
                    check,
                });
                links.len() - 1
            }
        };
        let link = &mut links[at];
        let entry = chained_entry(event, link.head.take());
        link.head = Some((entry.seq, entry.hash.clone()));
        rows.push(Row {
            entry,
            bal_id: event.bal_id,
            check: std::mem::take(&mut link.check),
        });
    }
    for chunk in rows.chunks(ENTRIES_PER_STATEMENT) {
        insert_rows(txn, chunk, engine).await?;
    }
    for link in links {
        if let Some(head) = link.head {
            heads.set(link.bal_id, head);
        }
    }
    Ok(())
}

/// Where a BAL's chain stands while the batch is chained: its last link so far, and whether
/// the next row must check it (it was remembered, not read in this transaction).
struct Link {
    bal_id: i64,
    head: Option<(i64, String)>,
    check: bool,
}

/// The last value of a row of [`insert_rows`]: inserted as it is, inserted if its chain's
/// head is the one it follows, or padding never inserted.
const UNCHECKED: i64 = 0;
const CHECKED: i64 = 1;
const PADDING: i64 = 2;

/// A row of [`insert_rows`] that its WHERE leaves out: the three numbers of an entry
/// (`bal_id`, `seq`, `at`), its nine texts, then [`PADDING`].
fn bind_padding(query: AnyQuery<'_>) -> AnyQuery<'_> {
    let mut query = query.bind(0i64).bind(0i64).bind(0i64);
    for _ in 0..9 {
        query = query.bind("");
    }
    query.bind(PADDING)
}

/// One statement for `rows`: each row whose `check` is set is inserted only if the entry
/// it chains to is its chain's last (both lookups in the `(bal_id, seq)` index); the rows
/// that follow it chain to rows of the same statement.
///
/// Anonymous `?` placeholders on SQLite: SQLite resolves each numbered one (`$N`) by a
/// linear search of those already seen, both when it parses the statement and when sqlx
/// binds it (`sqlite3_bind_parameter_name`), so a group's 50 to 64 entries (650 to 830
/// parameters) cost milliseconds of quadratic work in the committer, every other write of
/// the next group waiting behind it (ADR 0047). PostgreSQL numbers them (`$N`), which it
/// resolves by index. Both name a `VALUES` list's columns `column1`, `column2`, ….
///
/// The statement has room for the next power of two of rows, the rest padded with rows its
/// WHERE leaves out (`check` 2): eight texts in all, each parsed once per connection and
/// kept in its statement cache, instead of a statement parsed again at every group (ADR
/// 0055; the parse of a 45-row statement cost about as much as running it).
async fn insert_rows(txn: &mut Txn, rows: &[Row], engine: Engine) -> Result<()> {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let slots = rows.len().next_power_of_two();
    let values: Vec<String> = match engine {
        Engine::Sqlite => vec![ROW.to_string(); slots],
        Engine::Postgres => (0..slots).map(numbered_row).collect(),
    };
    let sql = format!(
        "INSERT INTO audit_log (bal_id, seq, at, author, action, folder, message_ids, client, \
         result, detail, prev_hash, hash) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
         v.column8, v.column9, v.column10, v.column11, v.column12 FROM (VALUES {}) AS v \
         WHERE v.column13 = {UNCHECKED} OR (v.column13 = {CHECKED} AND \
         EXISTS (SELECT 1 FROM audit_log a WHERE a.bal_id = v.column1 AND a.seq = v.column2 - 1 \
         AND a.hash = v.column11) \
         AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.bal_id = v.column1 \
         AND a.seq >= v.column2))",
        values.join(", ")
    );
    // Only placeholders and constants are formatted in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        let check = match row.check {
            true => CHECKED,
            false => UNCHECKED,
        };
        query = bind_entry(query, row.bal_id, &row.entry).bind(check);
    }
    for _ in rows.len()..slots {
        query = bind_padding(query);
    }
    let done = query.execute(&mut **txn).await?;
    if done.rows_affected() != rows.len() as u64 {
        return Err(StoreError::Io(std::io::Error::other(
            "an audit chain moved under the group's remembered head; retrying one by one",
        )));
    }
    Ok(())
}

/// Row `i` of [`insert_rows`] on PostgreSQL: its 13 placeholders numbered, typed as the
/// table's columns (a `VALUES` list's own types are inferred from its first row only).
fn numbered_row(i: usize) -> String {
    const TYPES: [&str; 13] = [
        "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT",
        "TEXT", "TEXT", "BIGINT",
    ];
    let cells: Vec<String> = TYPES
        .iter()
        .enumerate()
        .map(|(j, t)| format!("${}::{t}", 13 * i + j + 1))
        .collect();
    format!("({})", cells.join(", "))
}
