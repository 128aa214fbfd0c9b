//! `imap --mix imaptest`: the command mix of imaptest's default profile (issue 11), so that
//! both servers see what that tool sends. Each cycle walks imaptest's states in order, each
//! run with imaptest's default probability (and "again" probability for a repeat):
//!
//! | state | what is sent | probability (again) |
//! |---|---|---|
//! | LOGIN | `LOGIN` (with QRESYNC: then `ENABLE QRESYNC`) | 100 |
//! | LIST | `LIST "" *` | 50 |
//! | STATUS | `STATUS INBOX (MESSAGES UNSEEN UIDNEXT)` | 50 |
//! | SELECT | `SELECT INBOX`; with QRESYNC `(QRESYNC (uidvalidity modseq))` from the last cycle | 100 |
//! | FETCH | `FETCH a:b (UID FLAGS ENVELOPE INTERNALDATE RFC822.SIZE)`, up to 10 messages | 100 |
//! | FETCH2 | `UID FETCH n BODY.PEEK[]` of one message | 100 (30) |
//! | COPY | `COPY n INBOX` | 33 (5) |
//! | STORE | `STORE a:b ±FLAGS (\Seen $Label1)` | 50 |
//! | DELETE | `STORE n +FLAGS.SILENT (\Deleted)` | 100 |
//! | EXPUNGE | `EXPUNGE` | 100 |
//! | APPEND | `APPEND INBOX` of a 40 KB message | 100 (5) |
//! | LOGOUT | `LOGOUT` | 100 |
//!
//! A mailbox's size stays about level: each cycle deletes one message and adds 1.05 by
//! APPEND and 0.35 by COPY. `--qresync-share` is the percentage of sessions that enable
//! QRESYNC (RFC 7162), so one run measures both kinds of client.

use anyhow::{Result, bail};

use crate::imap::{ImapSession, number_after};
use crate::imap_args::ImapArgs;
use crate::stats::OpStats;

/// A small deterministic generator (xorshift64*): runs are reproducible per session.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with `percent` % probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A number in 1..=n (n ≥ 1).
    pub fn pick(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32 + 1
    }
}

/// Runs `f` once with `percent` probability, then again while the `again` chance holds.
macro_rules! with_chance {
    ($dice:expr, $percent:expr, $again:expr, $body:block) => {
        if $dice.chance($percent) {
            loop {
                $body
                if !$dice.chance($again) {
                    break;
                }
            }
        }
    };
}

/// What a QRESYNC session remembers of the mailbox between cycles (RFC 7162 §3.2.5).
#[derive(Clone, Copy, Default)]
pub struct Resync {
    pub uidvalidity: u32,
    pub modseq: u32,
}

/// One imaptest-like cycle: login, the states above, logout. `resync` is `None` for a
/// session without QRESYNC.
pub async fn cycle(
    a: &ImapArgs,
    user: &str,
    resync: Option<&mut Resync>,
    message: &[u8],
    dice: &mut Dice,
    st: &mut OpStats,
) -> Result<()> {
    let t = &a.target;
    let mut s = ImapSession::connect(&t.addr, t.tls).await?;
    let r = st.timed("login", t.login(&mut s, user)).await?;
    if !r.ok() {
        bail!("login {user} refused: {}", r.text);
    }
    if resync.is_some() {
        st.timed("enable", s.command("ENABLE QRESYNC")).await?;
    }
    with_chance!(dice, 50, 0, {
        st.timed("list", s.command("LIST \"\" *")).await?;
    });
    with_chance!(dice, 50, 0, {
        let c = "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)";
        st.timed("status", s.command(c)).await?;
    });
    let select = match &resync {
        Some(r) if r.uidvalidity > 0 => {
            format!("SELECT INBOX (QRESYNC ({} {}))", r.uidvalidity, r.modseq)
        }
        Some(_) => "SELECT INBOX (CONDSTORE)".to_string(),
        None => "SELECT INBOX".to_string(),
    };
    let sel = st.timed("select", s.command(&select)).await?;
    // The next cycle resynchronises from what this SELECT said (RFC 7162 §3.2.5).
    if let Some(r) = resync {
        r.uidvalidity = sel.number_after("UIDVALIDITY").unwrap_or(0);
        r.modseq = sel.number_after("HIGHESTMODSEQ").unwrap_or(0);
    }
    let mut exists = sel.number_before("EXISTS").unwrap_or(0);
    if exists > 0 {
        let lo = dice.pick(exists);
        let hi = (lo + 9).min(exists);
        let c = format!("FETCH {lo}:{hi} (UID FLAGS ENVELOPE INTERNALDATE RFC822.SIZE)");
        let env = st.timed("fetch", s.command(&c)).await?;
        let uids: Vec<u32> = env
            .untagged
            .iter()
            .filter_map(|l| number_after(&String::from_utf8_lossy(l), "UID"))
            .collect();
        with_chance!(dice, 100, 30, {
            if !uids.is_empty() {
                let uid = uids[dice.pick(uids.len() as u32) as usize - 1];
                let c = format!("UID FETCH {uid} BODY.PEEK[]");
                st.timed("fetch_body", s.command(&c)).await?;
            }
        });
        with_chance!(dice, 33, 5, {
            let c = format!("COPY {} INBOX", dice.pick(exists));
            let r = st.timed("copy", s.command(&c)).await?;
            exists = r.number_before("EXISTS").unwrap_or(exists);
        });
        with_chance!(dice, 50, 0, {
            let lo = dice.pick(exists);
            let hi = (lo + 4).min(exists);
            let sign = if dice.chance(50) { '+' } else { '-' };
            let c = format!("STORE {lo}:{hi} {sign}FLAGS (\\Seen $Label1)");
            st.timed("store", s.command(&c)).await?;
        });
        if exists > 0 {
            let c = format!("STORE {} +FLAGS.SILENT (\\Deleted)", dice.pick(exists));
            st.timed("delete", s.command(&c)).await?;
        }
        st.timed("expunge", s.command("EXPUNGE")).await?;
    }
    with_chance!(dice, 100, 5, {
        let r = st.timed("append", s.append("INBOX", message)).await?;
        if !r.ok() {
            bail!("APPEND for {user}: {} {}", r.status, r.text);
        }
    });
    let t0 = std::time::Instant::now();
    s.logout().await;
    st.ops.entry("logout").or_default().push(t0.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_are_fair_enough_and_reproducible() {
        let mut d = Dice::new(7);
        let hits = (0..10_000).filter(|_| d.chance(33)).count();
        assert!((3_000..3_600).contains(&hits), "{hits}");
        let (mut a, mut b) = (Dice::new(3), Dice::new(3));
        assert!((0..100).all(|_| a.pick(10) == b.pick(10)));
        let mut d = Dice::new(1);
        assert!((0..1000).map(|_| d.pick(5)).all(|n| (1..=5).contains(&n)));
    }
}
