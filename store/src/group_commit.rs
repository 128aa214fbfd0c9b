//! Group commit for SQLite writes: SQLite has one writer and every commit is a WAL fsync, so
//! sessions each committing their own write queue behind each other at the disk's fsync
//! rate. Here writes that arrive while a commit is in flight wait for the next one and share
//! it: one fsync for the whole group, each caller still answered only after its rows are
//! durable (ADR 0009 for deliveries' "250", ADR 0031 for IMAP's tagged OK).
//!
//! Deliveries and the IMAP writes of every session (STORE, EXPUNGE, APPEND, COPY/MOVE, the
//! \Recent claim) go through the same committer, in the order they arrived; each runs its
//! statements in the group's transaction exactly as it would in its own (a later write of
//! the group sees the earlier ones), so the folder counters (UIDNEXT, HIGHESTMODSEQ) stay
//! ordered as if each had committed alone (ADR 0025).
//!
//! If any write of a group fails, the group is rolled back and its writes are retried one
//! transaction each, so one failing write never costs the others theirs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::db::Engine;
use crate::error::{Result, StoreError};

pub(crate) use crate::Txn;

/// What [`Write::run`] returns: its statements, borrowing the write and the transaction.
pub(crate) type TxnFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A write that can share a commit with others. `run` may be called twice (in a group that
/// is then rolled back, and again alone), so it must do nothing outside the transaction.
pub(crate) trait Write: Send + Sync + 'static {
    type Output: Send + 'static;
    fn run<'a>(&'a self, txn: &'a mut Txn) -> TxnFuture<'a, Self::Output>;
}

/// `impl Write for $write` whose `run` is `$run(txn, &write)`, an async fn giving `$output`.
macro_rules! write_by {
    ($write:ty, $output:ty, $run:path) => {
        impl $crate::group_commit::Write for $write {
            type Output = $output;
            fn run<'a>(
                &'a self,
                txn: &'a mut $crate::group_commit::Txn,
            ) -> $crate::group_commit::TxnFuture<'a, $output> {
                Box::pin($run(txn, self))
            }
        }
    };
}
pub(crate) use write_by;

/// Most writes in one commit: bounds the time a session waits behind a group.
const MAX_GROUP: usize = 64;

/// A queued write with the caller waiting for it, its output kept until the commit.
struct Job<W: Write> {
    write: W,
    output: Option<W::Output>,
    done: oneshot::Sender<Result<W::Output>>,
}

/// [`Job`] without its type, so that one queue holds every kind of write.
trait Queued: Send {
    fn run<'a>(&'a mut self, txn: &'a mut Txn) -> TxnFuture<'a, ()>;
    /// Answers the caller: its output when `committed` is Ok, the error otherwise.
    fn finish(self: Box<Self>, committed: Result<()>);
}

impl<W: Write> Queued for Job<W> {
    fn run<'a>(&'a mut self, txn: &'a mut Txn) -> TxnFuture<'a, ()> {
        Box::pin(async move {
            self.output = Some(self.write.run(txn).await?);
            Ok(())
        })
    }

    fn finish(self: Box<Self>, committed: Result<()>) {
        let Job { output, done, .. } = *self;
        let outcome = committed.and_then(|()| {
            output.ok_or_else(|| StoreError::Io(std::io::Error::other("write not run")))
        });
        let _ = done.send(outcome);
    }
}

pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Box<dyn Queued>>,
    counts: Arc<Counts>,
}

/// How many writes the committer took, and in how many commits (each one fsync).
#[derive(Default)]
struct Counts {
    writes: AtomicU64,
    commits: AtomicU64,
}

/// Writes and commits of the SQLite committer since the store opened: `writes - commits`
/// is the number of fsyncs group commit saved (see [`crate::Store::shared_commits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitCounts {
    pub writes: u64,
    pub commits: u64,
}

impl GroupCommit {
    /// Starts the committer task; it ends when the store (and this handle) is dropped.
    /// The audit entries of a group are inserted together at its end (`audit/batch.rs`,
    /// ADR 0044, ADR 0060 on PostgreSQL); on SQLite its transaction takes the write lock
    /// at BEGIN.
    pub fn start(pool: sqlx::AnyPool, writer: Arc<Mutex<()>>, engine: Engine) -> GroupCommit {
        let (jobs, rx) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        tokio::spawn(run(rx, pool, writer, counts.clone(), engine));
        GroupCommit { jobs, counts }
    }

    pub fn counts(&self) -> CommitCounts {
        CommitCounts {
            writes: self.counts.writes.load(Ordering::Relaxed),
            commits: self.counts.commits.load(Ordering::Relaxed),
        }
    }

    /// Queues a write for the next commit and waits until it is durable.
    pub async fn submit<W: Write>(&self, write: W) -> Result<W::Output> {
        self.queue(write).await.map_err(|_| stopped())?
    }

    /// Queues a write for the next commit, in order with every write queued after it, and
    /// returns at once: the receiver answers once it is durable (or failed, or dropped when
    /// the store shuts down). What a delegate's read trace uses (ADR 0035).
    pub fn queue<W: Write>(&self, write: W) -> oneshot::Receiver<Result<W::Output>> {
        let (done, result) = oneshot::channel();
        let job = Job {
            write,
            output: None,
            done,
        };
        // A closed queue drops the job, and with it `done`: the receiver says so.
        let _ = self.jobs.send(Box::new(job));
        result
    }
}

/// The error of a write whose committer stopped before answering.
pub(crate) fn stopped() -> StoreError {
    StoreError::Io(std::io::Error::other("the store is shutting down"))
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Box<dyn Queued>>,
    pool: sqlx::AnyPool,
    writer: Arc<Mutex<()>>,
    counts: Arc<Counts>,
    engine: Engine,
) {
    while let Some(first) = rx.recv().await {
        // The writer slot is shared with every other write of the store (write_txn).
        let _slot = writer.lock().await;
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        counts
            .writes
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        match commit_group(&pool, &mut group, engine).await {
            Ok(()) => {
                counts.commits.fetch_add(1, Ordering::Relaxed);
                for job in group {
                    job.finish(Ok(()));
                }
            }
            Err(e) => {
                if group.len() > 1 {
                    tracing::warn!(
                        "group commit of {} writes failed ({e}); one by one",
                        group.len()
                    );
                }
                for mut job in group {
                    let committed = commit_one(&pool, job.as_mut(), engine).await;
                    if committed.is_ok() {
                        counts.commits.fetch_add(1, Ordering::Relaxed);
                    }
                    job.finish(committed);
                }
            }
        }
    }
}

/// The writes of `group` in one transaction, their audit entries inserted together before
/// the commit (on PostgreSQL, the read traces of ADR 0035: that committer takes nothing
/// else); a write run again alone (`commit_one`) appends its own, reading its chain's head
/// when the remembered one was stale.
async fn commit_group(
    pool: &sqlx::AnyPool,
    group: &mut [Box<dyn Queued>],
    engine: Engine,
) -> Result<()> {
    let mut txn = crate::db::begin_write(pool, engine).await?;
    let writes = async {
        for job in group.iter_mut() {
            job.run(&mut txn).await?;
        }
        Ok(())
    };
    let entries = crate::audit::batch::collecting(writes).await?;
    entries.insert(&mut txn, engine).await?;
    txn.commit().await?;
    Ok(())
}

async fn commit_one(pool: &sqlx::AnyPool, job: &mut dyn Queued, engine: Engine) -> Result<()> {
    let mut txn = crate::db::begin_write(pool, engine).await?;
    job.run(&mut txn).await?;
    txn.commit().await?;
    Ok(())
}
