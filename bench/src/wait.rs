//! End-to-end completion: wait until the delivered count reaches what was accepted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::imap::ImapSession;
use crate::net::TlsMode;

/// How delivered messages are counted.
pub enum Counter {
    /// Files in every `new/` and `cur/` folder under a directory (Maildir).
    Maildir(PathBuf),
    /// A shell command printing one number.
    Cmd(String),
    /// Sum of IMAP STATUS INBOX (MESSAGES) over one logged-in session per user.
    Imap(Vec<ImapSession>),
}

/// Counts files in directories named `new` or `cur` below `dir`.
pub fn count_maildir(dir: &Path) -> u64 {
    fn walk(dir: &Path, in_box: bool) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut n = 0;
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let name = e.file_name();
                n += walk(&e.path(), name == "new" || name == "cur");
            } else if in_box && ft.is_file() {
                n += 1;
            }
        }
        n
    }
    walk(dir, false)
}

async fn run_cmd(cmd: &str) -> Result<u64> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .await
        .with_context(|| format!("running {cmd:?}"))?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim()
        .parse()
        .with_context(|| format!("{cmd:?} printed {s:?}, not a number"))
}

impl Counter {
    /// Opens one IMAP session per user (password logins happen here, before timing).
    pub async fn imap(addr: &str, tls: TlsMode, users: &[String], pass: &str) -> Result<Counter> {
        let mut sessions = Vec::with_capacity(users.len());
        for u in users {
            let mut s = ImapSession::connect(addr, tls).await?;
            let r = s.login(u, pass).await?;
            if !r.ok() {
                bail!("IMAP login {u}: {} {}", r.status, r.text);
            }
            sessions.push(s);
        }
        Ok(Counter::Imap(sessions))
    }

    pub async fn count(&mut self) -> Result<u64> {
        match self {
            Counter::Maildir(dir) => {
                let dir = dir.clone();
                Ok(tokio::task::spawn_blocking(move || count_maildir(&dir)).await?)
            }
            Counter::Cmd(cmd) => run_cmd(cmd).await,
            Counter::Imap(sessions) => {
                let mut total = 0;
                for s in sessions {
                    let r = s.command("STATUS INBOX (MESSAGES)").await?;
                    total += u64::from(r.number_after("MESSAGES").unwrap_or(0));
                }
                Ok(total)
            }
        }
    }

    /// Polls until `count() >= target` or `timeout`; returns the last count seen.
    pub async fn wait_for(
        &mut self,
        target: u64,
        poll: Duration,
        timeout: Duration,
    ) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.count().await?;
            if n >= target || Instant::now() >= deadline {
                return Ok(n);
            }
            tokio::time::sleep(poll).await;
        }
    }

    pub async fn close(self) {
        if let Counter::Imap(sessions) = self {
            for s in sessions {
                s.logout().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_maildir_new_and_cur_only() {
        let d = std::env::temp_dir().join(format!("bench-md-{}", std::process::id()));
        for sub in [
            "u1/Maildir/new",
            "u1/Maildir/cur",
            "u1/Maildir/tmp",
            "u2/Maildir/new",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for f in [
            "u1/Maildir/new/a",
            "u1/Maildir/cur/b",
            "u1/Maildir/tmp/c",
            "u1/Maildir/dovecot-uidlist",
            "u2/Maildir/new/d",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        assert_eq!(count_maildir(&d), 3);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[tokio::test]
    async fn command_counter() {
        let mut c = Counter::Cmd("echo 41".into());
        assert_eq!(c.count().await.unwrap(), 41);
        assert!(Counter::Cmd("echo x".into()).count().await.is_err());
    }
}
