//! The queue worker: claims due recipients, sends each (message, destination) group in
//! one transaction, records what happened. Bounded per destination and in all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mssante_store::{AttemptOutcome, QueueItem, now};
use mssante_trust::Dn;
use tokio::sync::Semaphore;

use crate::RelayContext;
use crate::client::{ClientError, Envelope, Rcpt, RcptResults, SmtpClient};
use crate::pool::Pool;
use crate::resolve::{MxHost, MxResolver};

pub struct Relay {
    ctx: RelayContext,
    resolver: MxResolver,
    pool: Pool,
    per_destination: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_flight: Arc<Semaphore>,
    worker_id: String,
}

/// `<mail hostname>/<machine hostname>/<data dir>:` — what the claims of this node's
/// processes start with. Several nodes of one operator share the mail hostname; nodes on
/// one machine each have their own data dir (ADR 0013), named here by the first hex digits
/// of its path's SHA-256 (ADR 0023): a node that starts again frees its own earlier claims,
/// never those of a live neighbour.
fn node_prefix(mail_hostname: &str, data_dir: &std::path::Path) -> String {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let dir_hash = mssante_store::blob_hash(dir.as_os_str().as_encoded_bytes());
    format!("{mail_hostname}/{machine}/{}:", &dir_hash[..12])
}

/// Recipients of one message for one domain: one SMTP transaction.
struct Group {
    domain: String,
    items: Vec<QueueItem>,
}

fn group_by_destination(items: Vec<QueueItem>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for item in items {
        let domain = item.domain().to_ascii_lowercase();
        match groups
            .iter_mut()
            .find(|g| g.domain == domain && g.items[0].message_id == item.message_id)
        {
            Some(g) => g.items.push(item),
            None => groups.push(Group {
                domain,
                items: vec![item],
            }),
        }
    }
    groups
}

impl Relay {
    pub fn new(ctx: RelayContext) -> anyhow::Result<Arc<Relay>> {
        let resolver = MxResolver::new(ctx.config.nameserver)?;
        let worker_id = format!(
            "{}{}",
            node_prefix(&ctx.config.hostname, ctx.store.data_dir()),
            std::process::id()
        );
        Ok(Arc::new(Relay {
            pool: Pool::new(ctx.config.idle_connection),
            in_flight: Arc::new(Semaphore::new(ctx.config.max_in_flight.max(1))),
            per_destination: Mutex::new(HashMap::new()),
            resolver,
            worker_id,
            ctx,
        }))
    }

    /// Runs the queue until shutdown (the reports it owes run apart: `reports::run`).
    pub async fn run(self: Arc<Self>) {
        // A previous run of this node may have died holding claims (SIGKILL, power loss).
        let prefix = node_prefix(&self.ctx.config.hostname, self.ctx.store.data_dir());
        match self.ctx.store.release_node_claims(&prefix).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("relay: {n} queued recipient(s) claimed by an earlier run freed")
            }
            Err(e) => tracing::error!("relay: freeing earlier claims failed: {e}"),
        }
        self.claim_loop().await;
    }

    async fn claim_loop(self: &Arc<Self>) {
        let shutdown = self.ctx.shutdown.clone();
        loop {
            let claimed = match self.claim_round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("relay: claiming queued mail failed: {e}");
                    0
                }
            };
            if claimed == 0 {
                self.pool.expire();
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.ctx.config.poll_interval) => {}
                }
            } else if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Claims as many due rows as there is room for and starts their deliveries.
    async fn claim_round(self: &Arc<Self>) -> anyhow::Result<usize> {
        let room = self.in_flight.available_permits();
        if room == 0 {
            // Wait for one delivery to finish rather than spin.
            let permit = self.in_flight.clone().acquire_owned().await?;
            drop(permit);
            return Ok(1);
        }
        let lease = self.ctx.config.lease.as_secs() as i64;
        let items = self
            .ctx
            .store
            .claim_queued(&self.worker_id, lease, room as i64)
            .await?;
        let n = items.len();
        for group in group_by_destination(items) {
            let permit = self.in_flight.clone().acquire_owned().await?;
            let relay = self.clone();
            tokio::spawn(async move {
                relay.deliver_group(group).await;
                drop(permit);
            });
        }
        Ok(n)
    }

    fn destination_slot(&self, domain: &str) -> Arc<Semaphore> {
        let mut map = self
            .per_destination
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(domain.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.ctx.config.max_per_destination.max(1))))
            .clone()
    }

    async fn deliver_group(&self, group: Group) {
        let slot = self.destination_slot(&group.domain);
        let Ok(_permit) = slot.acquire().await else {
            return;
        };
        let (peer, outcomes) = match self.attempt(&group).await {
            Ok((remote_mta, peer_dsn, results)) => {
                let outcomes = results
                    .into_iter()
                    .zip(&group.items)
                    .map(|(r, item)| self.outcome(item, r, &remote_mta, peer_dsn))
                    .collect();
                (remote_mta, outcomes)
            }
            Err((e, tried)) => {
                let outcomes = group
                    .items
                    .iter()
                    .map(|item| self.failure_outcome(item, &e, None))
                    .collect::<Vec<_>>();
                (tried.unwrap_or_default(), outcomes)
            }
        };
        for (item, outcome) in group.items.iter().zip(outcomes) {
            let recorded = match self.ctx.store.record_attempt(item, &outcome).await {
                Ok(true) => true,
                Ok(false) => {
                    // ADR 0045: our lease ran out during the attempt and another claim took
                    // the row (or an administrator withdrew ours); that claim records the
                    // row, once. Not an error: at least once, never marked twice.
                    tracing::info!(
                        queue_row = item.id,
                        to = %item.address,
                        "relay: outcome not recorded, the claim on this row expired and was taken over"
                    );
                    false
                }
                Err(e) => {
                    // The lease will expire and the row be tried again: at least once.
                    tracing::error!(to = %item.address, "recording the relay outcome failed: {e}");
                    false
                }
            };
            // Logged once recorded: a `relayed` line with `recorded` says the row was marked
            // sent (the kill -9 torture counts them: never twice for one row).
            log_attempt(item, &peer, &outcome, recorded);
        }
    }

    fn outcome(
        &self,
        item: &QueueItem,
        result: Result<mssante_mail::Reply, ClientError>,
        remote_mta: &str,
        peer_dsn: bool,
    ) -> AttemptOutcome {
        match result {
            Ok(reply) => AttemptOutcome::Relayed {
                remote_mta: remote_mta.to_string(),
                reply: reply.text(),
                peer_dsn,
            },
            Err(e) => self.failure_outcome(item, &e, Some(remote_mta)),
        }
    }

    /// A 5xx fails at once; a 4xx is retried with backoff until the message is too old.
    fn failure_outcome(
        &self,
        item: &QueueItem,
        e: &ClientError,
        remote_mta: Option<&str>,
    ) -> AttemptOutcome {
        let remote_mta = remote_mta.map(str::to_string);
        if e.permanent {
            return AttemptOutcome::Failed {
                remote_mta,
                status: e.status.clone(),
                reply: e.message.clone(),
            };
        }
        let config = &self.ctx.config;
        let age = (now() - item.received_at).max(0) as u64;
        if age >= config.give_up_after.as_secs() {
            // RFC 3463 X.4.7: delivery time expired.
            return AttemptOutcome::Failed {
                remote_mta,
                status: "5.4.7".into(),
                reply: format!(
                    "delivery time expired after {} hours; last error: {}",
                    age / 3600,
                    e.message
                ),
            };
        }
        AttemptOutcome::Deferred {
            remote_mta,
            status: e.status.clone(),
            reply: e.message.clone(),
            next_attempt: now() + config.backoff(item.attempts + 1).as_secs() as i64,
            delayed: age >= config.delay_notify_after.as_secs(),
        }
    }

    /// Sends the group to the first MX host that takes it. Returns the peer's name, whether
    /// it speaks DSN, and the result per recipient; on failure, the error and the last host
    /// tried (none when the domain was not resolved or is not in the trust space).
    async fn attempt(
        &self,
        group: &Group,
    ) -> Result<(String, bool, RcptResults), (ClientError, Option<String>)> {
        self.check_destination_listed(&group.domain)
            .map_err(|e| (e, None))?;
        let hosts = self
            .resolver
            .destinations(&group.domain)
            .await
            .map_err(|e| (e, None))?;
        let first = &group.items[0];
        let body = self
            .ctx
            .store
            .read_blob(&first.blob_hash)
            .await
            .map_err(|e| {
                let e = ClientError::temporary("4.3.0", format!("reading the message: {e}"));
                (e, None)
            })?;
        let envelope = Envelope {
            mail_from: first.mail_from.clone(),
            ret: first.ret,
            envid: first.envid.clone(),
            rcpts: group
                .items
                .iter()
                .map(|i| Rcpt {
                    address: i.address.clone(),
                    notify: i.notify,
                    orcpt: i.orcpt.clone(),
                })
                .collect(),
        };
        let mut last_error = None;
        for host in &hosts {
            match self.send_via(host, &group.domain, &envelope, &body).await {
                Ok(done) => return Ok(done),
                // A permanent answer from a host is the domain's answer (RFC 5321 §5.1:
                // try the next MX only when this one could not be reached).
                Err(e) if e.permanent => return Err((e, Some(host.name.clone()))),
                Err(e) => {
                    tracing::info!(domain = %group.domain, mx = %host.name, "relay: {e}");
                    last_error = Some((e, Some(host.name.clone())));
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| (ClientError::temporary("4.4.4", "no MX host to try"), None)))
    }

    /// docs/mssante.md §3: MSSanté mail never leaves the trust space.
    fn check_destination_listed(&self, domain: &str) -> Result<(), ClientError> {
        if !self.ctx.config.enforce_trust {
            return Ok(());
        }
        let Some(list) = self.ctx.trust.as_ref().and_then(|t| t.snapshot()) else {
            return Err(ClientError::temporary(
                "4.7.1",
                "no MSSanté whitelist loaded yet; waiting for the first sync",
            ));
        };
        match list.is_listed(domain) {
            true => Ok(()),
            false => Err(ClientError {
                permanent: true,
                status: "5.1.2".into(),
                message: format!("{domain} is not in the MSSanté whitelist (trust space)"),
            }),
        }
    }

    async fn send_via(
        &self,
        host: &MxHost,
        domain: &str,
        envelope: &Envelope,
        body: &[u8],
    ) -> Result<(String, bool, RcptResults), ClientError> {
        let key = format!("{}:{}", host.name, self.ctx.config.port);
        if let Some(mut client) = self.pool.take(&key) {
            // One MX often serves many domains: the DN must be listed for this one too.
            self.check_peer_dn(&client, &host.name, domain)?;
            match client.send(envelope, body).await {
                Ok(results) => return Ok(self.finish(key, client, results)),
                // A pooled connection the peer closed meanwhile: open a fresh one.
                Err(e) if e.status == "4.4.2" => {}
                Err(e) => return Err(e),
            }
        }
        let mut client = self.connect(host, domain).await?;
        let results = client.send(envelope, body).await?;
        Ok(self.finish(key, client, results))
    }

    /// Keeps the connection for the next message to this host: `send` leaves it between
    /// transactions.
    fn finish(
        &self,
        key: String,
        client: SmtpClient,
        results: RcptResults,
    ) -> (String, bool, RcptResults) {
        let done = (client.remote_mta.clone(), client.extensions.dsn, results);
        self.pool.put(&key, client);
        done
    }

    /// Opens a connection to one of the host's addresses and checks who answered.
    async fn connect(&self, host: &MxHost, domain: &str) -> Result<SmtpClient, ClientError> {
        let mut last_error = None;
        for ip in &host.addrs {
            let addr = SocketAddr::new(*ip, self.ctx.config.port);
            let client = SmtpClient::connect(
                addr,
                &host.name,
                &self.ctx.config.hostname,
                &self.ctx.tls,
                self.ctx.config.timeouts,
            )
            .await;
            match client {
                Ok(client) => {
                    self.check_peer_dn(&client, &host.name, domain)?;
                    return Ok(client);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::temporary("4.4.4", format!("{} has no address", host.name))
        }))
    }

    /// docs/mssante.md §3: the peer's certificate DN must be listed for the recipient domain.
    fn check_peer_dn(
        &self,
        client: &SmtpClient,
        mx: &str,
        domain: &str,
    ) -> Result<(), ClientError> {
        if !self.ctx.config.enforce_trust {
            return Ok(());
        }
        let refused = |why: String| ClientError::temporary("4.7.5", why);
        let leaf = client
            .peer_certificates()
            .first()
            .ok_or_else(|| refused(format!("{mx} presented no certificate")))?;
        let dn = Dn::from_certificate(leaf)
            .map_err(|e| refused(format!("{mx}: unreadable certificate: {e}")))?;
        let list = self.ctx.trust.as_ref().and_then(|t| t.snapshot());
        match list.is_some_and(|l| l.dn_allowed(domain, &dn)) {
            true => Ok(()),
            false => Err(refused(format!(
                "{mx} presented certificate DN \"{dn}\", which the MSSanté whitelist does not list for {domain}"
            ))),
        }
    }
}

/// One line per recipient and attempt (target `relay.attempt`): the queue and message rows,
/// the recipient, the attempt number, the peer MX (reached, or last tried), the result and
/// the reply or error, and whether the outcome was recorded in the queue (when not, the row
/// is tried again after its lease). Never content.
fn log_attempt(item: &QueueItem, peer: &str, outcome: &AttemptOutcome, recorded: bool) {
    let (result, status, reply) = match outcome {
        AttemptOutcome::Relayed { reply, .. } => ("relayed", "", reply.as_str()),
        AttemptOutcome::Failed { status, reply, .. } => ("failed", status.as_str(), reply.as_str()),
        AttemptOutcome::Deferred { status, reply, .. } => {
            ("deferred", status.as_str(), reply.as_str())
        }
    };
    tracing::info!(
        target: "relay.attempt",
        queue_row = item.id,
        message_row = item.message_id,
        to = %item.address,
        attempt = item.attempts + 1,
        peer,
        result,
        status,
        reply,
        recorded,
        "relay attempt"
    );
}
