//! Idle SMTP connections kept for reuse (one TLS handshake for many messages to the same
//! peer: a laboratory's morning batch to one hospital goes over a few connections).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::SmtpClient;

pub(crate) struct Pool {
    idle: Mutex<HashMap<String, Vec<(SmtpClient, Instant)>>>,
    max_idle: Duration,
}

impl Pool {
    pub fn new(max_idle: Duration) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle,
        }
    }

    /// An idle connection to `key` that has not waited too long, if any.
    pub fn take(&self, key: &str) -> Option<SmtpClient> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(key)?;
        while let Some((client, since)) = list.pop() {
            if since.elapsed() < self.max_idle {
                return Some(client);
            }
        }
        None
    }

    pub fn put(&self, key: &str, client: SmtpClient) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.entry(key.to_string())
            .or_default()
            .push((client, Instant::now()));
    }

    /// Drops connections idle for too long (the peer would close them anyway).
    pub fn expire(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        for list in idle.values_mut() {
            list.retain(|(_, since)| since.elapsed() < self.max_idle);
        }
        idle.retain(|_, list| !list.is_empty());
    }
}
