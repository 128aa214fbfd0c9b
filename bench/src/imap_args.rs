//! What the `imap` and `connections` modes are given: the server and accounts
//! (`ImapTarget`), the client mix (`ImapArgs`) and the idle sessions (`ConnArgs`). Read by
//! the runner (`imap_run`) and by the per-session profile (`imap_profile`).

use anyhow::Result;
use serde::Serialize;

use crate::imap::{ImapSession, Response};
use crate::net::TlsMode;

#[derive(Debug, clap::Args, Clone)]
pub struct ImapTarget {
    /// IMAP server address (host:port); loopback only in this project.
    #[arg(long, default_value = "127.0.0.1:1143")]
    pub addr: String,
    #[arg(long, value_enum, default_value = "none")]
    pub tls: TlsMode,
    /// Login pattern; {n} runs from 1 to --users.
    #[arg(long, default_value = "user{n}@bench.test")]
    pub user: String,
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    #[arg(long, default_value = "bench")]
    pub password: String,
    /// Work in each user's BAL as its delegate (issue 14): log in as `<prefix><user>` with
    /// PLAIN's authorization id naming the user, so every command goes through the rights
    /// checks and the audit trail. The delegations must exist (`bench/ours.sh`,
    /// OURS_DELEGATES=1); populating INBOXes still logs in as the owner.
    #[arg(long)]
    pub delegate_prefix: Option<String>,
}

impl ImapTarget {
    /// Logs `s` in to `user`'s BAL: as its owner, or as its delegate with --delegate-prefix.
    pub(crate) async fn login(&self, s: &mut ImapSession, user: &str) -> Result<Response> {
        match &self.delegate_prefix {
            Some(prefix) => {
                s.login_as(user, &format!("{prefix}{user}"), &self.password)
                    .await
            }
            None => s.login(user, &self.password).await,
        }
    }
}

#[derive(Debug, clap::Args, Clone)]
pub struct ImapArgs {
    #[command(flatten)]
    pub target: ImapTarget,
    /// Concurrent sessions.
    #[arg(short = 's', long, default_value_t = 16)]
    pub sessions: usize,
    /// Length of the timed run in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Rounds of fetch/store/idle per login.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// How long each IDLE is held, in milliseconds (not counted in latency).
    #[arg(long, default_value_t = 100)]
    pub idle_ms: u64,
    /// Messages of "new mail" whose flags and envelope are fetched.
    #[arg(long, default_value_t = 10)]
    pub new_mail: u32,
    /// Before timing, APPEND this many bio messages to each user's INBOX.
    #[arg(long, default_value_t = 0)]
    pub append: usize,
    /// The command mix: `classic` (fetch/store/idle rounds per login) or `imaptest`
    /// (imaptest's default profile, see imap_profile.rs).
    #[arg(long, value_enum, default_value = "classic")]
    pub mix: MixKind,
    /// With `--mix imaptest`: percentage of sessions that enable QRESYNC.
    #[arg(long, default_value_t = 50)]
    pub qresync_share: u64,
    /// Offered load in commands per second over all sessions (0: as fast as the server
    /// answers, the default). With a rate, each session sends its commands on a fixed
    /// schedule (sessions/rate apart), so latency is measured at that load rather than at
    /// saturation; a server that cannot keep up falls behind the schedule, which the
    /// operations/s figure shows.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Beside the mix, one delegate session per user, open for the whole run: logged in as
    /// `<prefix><user>` with PLAIN's authorization id naming the user, INBOX selected, in
    /// IDLE, reading the updates the mix's changes send it (issue 14: the secretary's
    /// session open beside the doctor's). Not counted in the operations. An empty prefix
    /// makes them the owners' own second sessions (the authorization id is then the user).
    #[arg(long)]
    pub watchers_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MixKind {
    Classic,
    Imaptest,
}

#[derive(Debug, clap::Args, Clone)]
pub struct ConnArgs {
    #[command(flatten)]
    pub target: ImapTarget,
    /// Sessions to open and hold in IDLE.
    #[arg(short = 'k', long, default_value_t = 100)]
    pub sessions: usize,
    /// Seconds to hold them once all are up.
    #[arg(long, default_value_t = 30)]
    pub hold: u64,
    /// Seconds after all sessions are up when server memory is read (after any hibernation).
    #[arg(long, default_value_t = 1)]
    pub measure_after: u64,
    /// Sessions being opened at the same time.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
    /// Kernel memory of the client's end of one connection, kB (the `pairs` mode's
    /// `client_end_kb` at the same count), subtracted from the system-wide slab growth.
    #[arg(long)]
    pub client_kernel_kb: Option<f64>,
}
