//! The SMTP command loop: reads command lines, hands each to its handler (one file per
//! command family) and closes the session on QUIT, errors, timeouts or shutdown.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::command::{Command, ParseError, parse_command};
use crate::reply::{self, Reply};
use crate::session::{Flow, MAX_COMMAND_LINE, ReadStop, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Runs the session to its end.
    pub async fn run(mut self) {
        let greeting = Reply::bare(
            220,
            format!("{} ESMTP mssante ready", self.ctx.config.hostname),
        );
        self.reply(greeting);
        loop {
            let line = match self.read_line(MAX_COMMAND_LINE, true).await {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.reply(reply::line_too_long());
                    if self.too_many_errors() {
                        break;
                    }
                    continue;
                }
                Err(stop) => {
                    self.say_goodbye(stop).await;
                    return;
                }
            };
            match self.dispatch(&line).await {
                Flow::Continue if self.too_many_errors() => break,
                Flow::Continue => {}
                Flow::Close => break,
            }
        }
        let _ = self.flush().await;
        let _ = self.conn.shutdown().await;
    }

    async fn say_goodbye(&mut self, stop: ReadStop) {
        let farewell = match stop {
            ReadStop::Timeout => Some(reply::timeout()),
            ReadStop::Shutdown => Some(reply::shutting_down()),
            ReadStop::Eof | ReadStop::Io => None,
        };
        if let Some(r) = farewell {
            self.reply(r);
            let _ = self.flush().await;
        }
        let _ = self.conn.shutdown().await;
    }

    fn too_many_errors(&mut self) -> bool {
        if self.errors < self.ctx.config.max_errors {
            return false;
        }
        tracing::info!(peer = %self.peer, "closing session after {} errors", self.errors);
        self.wbuf.clear();
        self.reply(reply::too_many_errors());
        true
    }

    async fn dispatch(&mut self, line: &[u8]) -> Flow {
        let command = match parse_command(line) {
            Ok(c) => c,
            Err(ParseError::UnknownCommand) => {
                self.reply(reply::unknown_command());
                return Flow::Continue;
            }
            Err(ParseError::Syntax(why)) => {
                self.reply(reply::syntax_error(why));
                return Flow::Continue;
            }
        };
        match command {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, params } => self.rcpt(to, params).await,
            Command::Data => return self.data().await,
            Command::Bdat { size, last } => return self.bdat(size, last).await,
            Command::Rset => self.rset(),
            Command::Noop => self.reply(reply::ok("OK")),
            Command::Quit => {
                self.quit();
                return Flow::Close;
            }
            Command::Vrfy => self.vrfy(),
            Command::Expn => self.expn(),
            Command::Help => self.help(),
            Command::StartTls => return self.starttls().await,
            Command::Auth { mechanism, initial } => return self.auth(mechanism, initial).await,
        }
        Flow::Continue
    }
}
