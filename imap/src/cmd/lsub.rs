//! LSUB (RFC 3501 §6.3.9, kept by RFC 9051 for rev1 clients).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::{ListArgs, LsubArgs};
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn lsub(&mut self, tag: &str, LsubArgs { reference, pattern }: &LsubArgs) {
        let args = ListArgs {
            selection: vec!["SUBSCRIBED".into()],
            reference: reference.clone(),
            patterns: vec![pattern.clone()],
            ..ListArgs::default()
        };
        self.list_as(tag, args, true).await;
    }
}
