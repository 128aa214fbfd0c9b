//! Periodic jobs that must run on one node at a time (delivery reports, the directory
//! publication outbox, retention): this node runs them while it holds the leadership of the database
//! (`store/src/leader.rs`, ADR 0023), and another node takes them over when it dies.

use std::time::Duration;

use mssante_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the leader proves it still holds the lock; a leader cut off from the database
/// stops its jobs within this time (plus the ping's own timeout).
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How often a follower asks to lead: the takeover delay after a leader dies.
const ASK_EVERY: Duration = Duration::from_secs(3);
/// How long jobs get to finish what they are doing when leadership ends.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The leadership role of the periodic jobs (the advisory lock key is derived from it).
pub const ROLE: &str = "periodic jobs";

/// Runs `start` (which spawns the jobs, stopping when the token is cancelled) whenever this
/// node leads, until `shutdown`.
pub async fn lead(
    store: Store,
    shutdown: CancellationToken,
    start: impl Fn(CancellationToken) -> Vec<JoinHandle<()>>,
) {
    loop {
        match store.try_lead(ROLE).await {
            Ok(Some(mut leadership)) => {
                tracing::info!("leader: this node runs the periodic jobs");
                let jobs = shutdown.child_token();
                let handles = start(jobs.clone());
                let lost = loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break false,
                        _ = tokio::time::sleep(CHECK_EVERY) => {}
                    }
                    if !leadership.still_held().await {
                        break true;
                    }
                };
                if lost {
                    tracing::warn!("leader: lost the database lock; periodic jobs stopped");
                }
                jobs.cancel();
                for handle in handles {
                    stop(handle).await;
                }
                leadership.release().await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("leader: cannot ask for the leadership: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(ASK_EVERY) => {}
        }
    }
}

/// Lets a job end by itself (it watches its token), then aborts it.
async fn stop(mut handle: JoinHandle<()>) {
    if tokio::time::timeout(STOP_GRACE, &mut handle).await.is_err() {
        handle.abort();
    }
}
