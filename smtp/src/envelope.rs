//! MAIL FROM and RCPT TO (RFC 5321 §4.1.1.2, §4.1.1.3) with the ESMTP parameters we
//! advertise: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461).

use mssante_store::{Address, RcptDisposition, RecipientSpec};
use tokio::io::{AsyncRead, AsyncWrite};

use mssante_mail::dsn::{Notify, Ret};
use mssante_mail::xtext;

use crate::command::{Param, Path};
use crate::reply::{self, Reply};
use crate::session::{Session, Transaction};

/// MAIL FROM parameters once checked.
#[derive(Default)]
struct MailParams {
    smtputf8: bool,
    ret: Option<Ret>,
    envid: Option<String>,
}

fn bad_param(what: &str) -> Reply {
    Reply::new(501, "5.5.4", format!("Invalid parameter: {what}"))
}

/// RFC 5321 §4.5.3.1.10: an unknown parameter gets 555.
fn unknown_param(keyword: &str) -> Reply {
    Reply::new(555, "5.5.4", format!("Unsupported parameter {keyword}"))
}

fn parse_mail_params(params: &[Param], max_size: usize) -> Result<MailParams, Reply> {
    let mut out = MailParams::default();
    for p in params {
        let value = p.value.as_deref();
        match (p.keyword.as_str(), value) {
            // RFC 1870 §6: refuse at MAIL time a message declared too big.
            ("SIZE", Some(v)) => {
                let size: u64 = v.parse().map_err(|_| bad_param("SIZE"))?;
                if size > max_size as u64 {
                    return Err(Reply::new(
                        552,
                        "5.3.4",
                        format!("Message size exceeds fixed limit of {max_size} bytes"),
                    ));
                }
            }
            ("BODY", Some(v))
                if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => {}
            ("BODY", _) => return Err(bad_param("BODY must be 7BIT or 8BITMIME")),
            ("SMTPUTF8", None) => out.smtputf8 = true,
            // RFC 3461 §4.3
            ("RET", v) => {
                let ret = v.and_then(Ret::parse);
                out.ret = Some(ret.ok_or_else(|| bad_param("RET must be FULL or HDRS"))?);
            }
            // RFC 3461 §4.4: at most 100 characters of xtext.
            ("ENVID", Some(v)) if v.len() <= 100 => {
                out.envid = Some(
                    xtext::decode(v).map_err(|e| bad_param(&format!("ENVID is not xtext: {e}")))?,
                )
            }
            ("ENVID", _) => return Err(bad_param("ENVID")),
            // RFC 4954 §5: accepted and not trusted.
            ("AUTH", Some(_)) => {}
            (k, _) => return Err(unknown_param(k)),
        }
    }
    Ok(out)
}

/// RCPT TO parameters (RFC 3461 §4.1, §4.2).
fn parse_rcpt_params(params: &[Param]) -> Result<(Option<Notify>, Option<String>), Reply> {
    let (mut notify, mut orcpt) = (None, None);
    for p in params {
        match (p.keyword.as_str(), p.value.as_deref()) {
            ("NOTIFY", Some(v)) => {
                // RFC 3461 §4.1
                notify = Some(Notify::parse(v).map_err(|_| bad_param("NOTIFY"))?)
            }
            ("ORCPT", Some(v)) => {
                let (addr_type, encoded) = v
                    .split_once(';')
                    .ok_or_else(|| bad_param("ORCPT must be addr-type;address"))?;
                let addr = xtext::decode(encoded)
                    .map_err(|e| bad_param(&format!("ORCPT is not xtext: {e}")))?;
                if addr_type.is_empty() || addr.is_empty() {
                    return Err(bad_param("ORCPT"));
                }
                orcpt = Some(format!("{};{}", addr_type.to_ascii_lowercase(), addr));
            }
            (k, _) => return Err(unknown_param(k)),
        }
    }
    Ok((notify, orcpt))
}

/// RFC 6531 §3.4: a non-ASCII address without SMTPUTF8 gets 553 5.6.7.
fn needs_smtputf8(address: &str) -> Reply {
    Reply::new(
        553,
        "5.6.7",
        format!("Non-ASCII address <{address}> requires SMTPUTF8"),
    )
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn mail(&mut self, from: Path, params: Vec<Param>) {
        if self.helo.is_none() {
            return self.reply(reply::bad_sequence("Send EHLO first"));
        }
        if self.txn.is_some() {
            return self.reply(reply::bad_sequence("Nested MAIL command"));
        }
        // RFC 4954 §6 / RFC 6409 §4.3: submission requires authentication.
        if self.kind.requires_auth() && self.auth.is_none() {
            return self.reply(Reply::new(530, "5.7.0", "Authentication required"));
        }
        let params = match parse_mail_params(&params, self.ctx.config.max_message_size) {
            Ok(p) => p,
            Err(r) => return self.reply(r),
        };
        let from = match from {
            Path::Null => None,
            Path::Address(raw) => {
                if !raw.is_ascii() && !params.smtputf8 {
                    return self.reply(needs_smtputf8(&raw));
                }
                match Address::parse(&raw) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        return self.reply(Reply::new(
                            553,
                            "5.1.7",
                            format!("Bad sender address: {e}"),
                        ));
                    }
                }
            }
            Path::Postmaster => return self.reply(reply::syntax_error("invalid reverse-path")),
        };
        if let Some(refusal) = self.check_sender(from.as_ref()).await {
            return self.reply(refusal);
        }
        if let Some(refusal) = self.check_peer_operator(from.as_ref()) {
            return self.reply(refusal);
        }
        self.txn = Some(Transaction {
            from,
            smtputf8: params.smtputf8,
            ret: params.ret,
            envid: params.envid,
            rcpts: Vec::new(),
            bdat: None,
            started: std::time::Instant::now(),
            message_id: None,
        });
        self.reply(Reply::new(250, "2.1.0", "Sender OK"));
    }

    /// Submission: the envelope sender must be a BAL the account may send as.
    async fn check_sender(&self, from: Option<&Address>) -> Option<Reply> {
        let auth = self.auth.as_ref()?;
        crate::submit::sender_refusal(&self.ctx, auth, from).await
    }

    pub(crate) async fn rcpt(&mut self, to: Path, params: Vec<Param>) {
        let Some(smtputf8) = self.txn.as_ref().map(|t| t.smtputf8) else {
            return self.reply(reply::bad_sequence("Send MAIL FROM first"));
        };
        if self.txn.as_ref().is_some_and(|t| t.bdat.is_some()) {
            return self.reply(reply::bad_sequence("RCPT not allowed during BDAT"));
        }
        let (notify, orcpt) = match parse_rcpt_params(&params) {
            Ok(p) => p,
            Err(r) => return self.reply(r),
        };
        let raw = match to {
            Path::Address(a) => a,
            // RFC 5321 §4.1.1.3: <Postmaster> is the postmaster of this host.
            Path::Postmaster => format!("postmaster@{}", self.ctx.config.hostname),
            Path::Null => return self.reply(reply::syntax_error("null forward-path")),
        };
        if !raw.is_ascii() && !smtputf8 {
            return self.reply(needs_smtputf8(&raw));
        }
        let address = match Address::parse(&raw) {
            Ok(a) => a,
            Err(e) => {
                return self.reply(Reply::new(
                    553,
                    "5.1.3",
                    format!("Bad recipient address: {e}"),
                ));
            }
        };
        let txn = self.txn.as_ref().expect("checked above");
        if txn.rcpts.iter().any(|r| r.address == address) {
            // RFC 5321 §3.3: duplicates are accepted; one copy is delivered.
            return self.reply(Reply::new(250, "2.1.5", "Recipient OK (duplicate)"));
        }
        if txn.rcpts.len() >= self.ctx.config.max_recipients {
            return self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        let disposition = match self.route(&address).await {
            Ok(d) => d,
            Err(r) => return self.reply(r),
        };
        let spec = RecipientSpec {
            address,
            orcpt,
            notify,
            disposition,
        };
        self.txn.as_mut().expect("checked above").rcpts.push(spec);
        self.reply(Reply::new(250, "2.1.5", "Recipient OK"));
    }

    /// Decides where a recipient goes, or why it is refused.
    async fn route(&self, address: &Address) -> Result<RcptDisposition, Reply> {
        crate::submit::route_recipient(&self.ctx, address, self.auth.is_some()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: Option<&str>) -> Param {
        Param {
            keyword: k.into(),
            value: v.map(Into::into),
        }
    }

    #[test]
    fn mail_params() {
        let ok = parse_mail_params(
            &[
                p("SIZE", Some("10")),
                p("RET", Some("hdrs")),
                p("ENVID", Some("A+2BB")),
                p("SMTPUTF8", None),
            ],
            100,
        )
        .unwrap_or_else(|r| panic!("{r:?}"));
        assert_eq!(
            (ok.ret, ok.envid.as_deref(), ok.smtputf8),
            (Some(Ret::Hdrs), Some("A+B"), true)
        );
        assert_eq!(
            parse_mail_params(&[p("SIZE", Some("101"))], 100)
                .err()
                .unwrap()
                .code,
            552
        );
        assert_eq!(
            parse_mail_params(&[p("BODY", Some("BINARYMIME"))], 100)
                .err()
                .unwrap()
                .code,
            501
        );
        assert_eq!(
            parse_mail_params(&[p("XFOO", None)], 100)
                .err()
                .unwrap()
                .code,
            555
        );
    }

    #[test]
    fn rcpt_params() {
        let (n, o) = parse_rcpt_params(&[
            p("NOTIFY", Some("success,Failure")),
            p("ORCPT", Some("rfc822;a+2Bb@c.fr")),
        ])
        .unwrap();
        assert_eq!(n.map(|n| n.to_string()).as_deref(), Some("SUCCESS,FAILURE"));
        assert_eq!(o.as_deref(), Some("rfc822;a+b@c.fr"));
        assert!(parse_rcpt_params(&[p("NOTIFY", Some("NEVER,SUCCESS"))]).is_err());
        assert!(parse_rcpt_params(&[p("NOTIFY", Some("SOMETIMES"))]).is_err());
        assert!(parse_rcpt_params(&[p("ORCPT", Some("noseparator"))]).is_err());
        let bad_xtext = parse_rcpt_params(&[p("ORCPT", Some("rfc822;a+2b@c.fr"))]).unwrap_err();
        assert_eq!(
            (bad_xtext.code, bad_xtext.status.as_deref()),
            (501, Some("5.5.4"))
        );
        assert!(
            bad_xtext.lines[0].contains("ORCPT is not xtext"),
            "{bad_xtext:?}"
        );
    }
}
