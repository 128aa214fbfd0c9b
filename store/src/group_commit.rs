//! Group commit for SQLite deliveries: SQLite has one writer and every commit is a WAL
//! fsync, so sixteen sessions each committing their own message queue behind each other at
//! the disk's fsync rate. Here deliveries that arrive while a commit is in flight wait for
//! the next one and share it: one fsync for the whole group, each message still "250" only
//! after its rows are durable (ADR 0009).
//!
//! If any message of a group fails, the group is rolled back and its messages are retried
//! one transaction each, so one bad message never costs the others their delivery.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::delivery::{DeliveryReceipt, PreparedMessage, insert_message};
use crate::error::{Result, StoreError};
use crate::now;

/// Most messages in one commit: bounds the time a session waits behind a group.
const MAX_GROUP: usize = 64;

type Outcome = Result<(DeliveryReceipt, Vec<i64>)>;

struct Job {
    prepared: PreparedMessage,
    done: oneshot::Sender<Outcome>,
}

pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the committer task; it ends when the store (and this handle) is dropped.
    pub fn start(pool: sqlx::AnyPool, writer: Arc<Mutex<()>>) -> GroupCommit {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, pool, writer));
        GroupCommit { jobs }
    }

    /// Queues a message for the next commit and waits until it is durable.
    pub async fn submit(&self, prepared: PreparedMessage) -> Outcome {
        let (done, result) = oneshot::channel();
        let stopped = || StoreError::Io(std::io::Error::other("the store is shutting down"));
        self.jobs
            .send(Job { prepared, done })
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Job>, pool: sqlx::AnyPool, writer: Arc<Mutex<()>>) {
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
        match commit_group(&pool, &group).await {
            Ok(outcomes) => {
                for (job, outcome) in group.into_iter().zip(outcomes) {
                    let _ = job.done.send(Ok(outcome));
                }
            }
            Err(e) => {
                if group.len() > 1 {
                    tracing::warn!(
                        "group commit of {} messages failed ({e}); one by one",
                        group.len()
                    );
                }
                for job in group {
                    let outcome = commit_one(&pool, &job.prepared).await;
                    let _ = job.done.send(outcome);
                }
            }
        }
    }
}

async fn commit_group(
    pool: &sqlx::AnyPool,
    group: &[Job],
) -> Result<Vec<(DeliveryReceipt, Vec<i64>)>> {
    let t = now();
    let mut txn = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        outcomes.push(insert_message(&mut txn, &job.prepared, t).await?);
    }
    txn.commit().await?;
    Ok(outcomes)
}

async fn commit_one(pool: &sqlx::AnyPool, prepared: &PreparedMessage) -> Outcome {
    let mut txn = pool.begin().await?;
    let outcome = insert_message(&mut txn, prepared, now()).await?;
    txn.commit().await?;
    Ok(outcome)
}
