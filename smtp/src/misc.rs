//! RSET, QUIT, VRFY, EXPN, HELP (RFC 5321 §4.1.1.5 – §4.1.1.10).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{self, Reply};
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn rset(&mut self) {
        self.txn = None;
        self.reply(reply::ok("Reset state"));
    }

    pub(crate) fn quit(&mut self) {
        self.reply(Reply::new(
            221,
            "2.0.0",
            format!("{} closing connection", self.ctx.config.hostname),
        ));
    }

    /// RFC 5321 §3.5.3: 252 when we will not verify; directory harvesting is not offered.
    pub(crate) fn vrfy(&mut self) {
        self.reply(Reply::new(
            252,
            "2.5.2",
            "Cannot VRFY user, but will accept message and attempt delivery",
        ));
    }

    pub(crate) fn expn(&mut self) {
        self.reply(Reply::new(502, "5.5.1", "EXPN not available"));
    }

    pub(crate) fn help(&mut self) {
        self.reply(Reply::new(
            214,
            "2.0.0",
            "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT STARTTLS AUTH",
        ));
    }
}
