//! The trust space on the SMTP listeners (docs/mssante.md §3): on the MX, a peer operator must come
//! over TLS with a client certificate valid to the configured roots, whose DN the public
//! whitelist lists for the sender domain; on submission, mail goes only to whitelisted
//! domains. The refusals say what the peer operator has to fix.

use mssante_store::Address;
use rustls::pki_types::UnixTime;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::ListenerKind;
use crate::reply::Reply;
use crate::session::Session;

fn refused(text: String) -> Reply {
    // RFC 3463 X.7.1: delivery not authorized, message refused.
    Reply::new(550, "5.7.1", text)
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Validates the chain the peer presented during STARTTLS; the DN or the reason.
    pub(crate) fn check_peer_certificate(&self) -> Result<mssante_trust::Dn, String> {
        let Some(verifier) = &self.ctx.trust.verifier else {
            return Err("this server has no trust anchors configured (trust.ca_file)".into());
        };
        let chain = self.conn.peer_certificates();
        verifier
            .check_client_chain(&chain, UnixTime::now())
            .map_err(|refusal| refusal.to_string())
    }

    /// MAIL FROM on the MX: is this peer an operator of the trust space, allowed to send
    /// for this domain?
    pub(crate) fn check_peer_operator(&self, from: Option<&Address>) -> Option<Reply> {
        if self.kind != ListenerKind::Mx || !self.ctx.trust.enforce {
            return None;
        }
        if !self.tls {
            // RFC 3207 §4: a server may require TLS before accepting mail.
            return Some(Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first: TLS is mandatory between MSSanté operators",
            ));
        }
        let dn = match &self.peer_identity {
            Some(Ok(dn)) => dn,
            Some(Err(why)) => return Some(refused(format!("Client certificate refused: {why}"))),
            None => return Some(refused("No client certificate checked".into())),
        };
        let Some(list) = self.ctx.trust.snapshot() else {
            return Some(Reply::new(
                451,
                "4.7.1",
                "The MSSanté whitelist is not loaded yet on this server; try again later",
            ));
        };
        let Some(from) = from else {
            // The null sender (reports) names no domain: the DN must belong to the trust space.
            return match list.entries().iter().any(|e| &e.dn == dn) {
                true => None,
                false => Some(refused(format!(
                    "Certificate DN \"{dn}\" is not listed in the MSSanté whitelist"
                ))),
            };
        };
        let domain = from.domain();
        if list.dn_allowed(domain, dn) {
            return None;
        }
        if !list.is_listed(domain) {
            return Some(refused(format!(
                "Sender domain {domain} is not in the MSSanté whitelist (generated {})",
                list.generated_at()
            )));
        }
        Some(refused(format!(
            "Certificate DN \"{dn}\" is not listed for sender domain {domain} in the MSSanté whitelist (generated {})",
            list.generated_at()
        )))
    }
}
