//! COMPRESS=DEFLATE (RFC 4978): after `COMPRESS DEFLATE` both directions are raw DEFLATE
//! streams (RFC 1951, no zlib header). The session keeps reading and writing plain bytes in
//! its buffers; `Deflate` sits between them and the connection.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Flow, Session};
use crate::state::Deflate;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn compress(&mut self, tag: &str, mechanism: &str) -> Flow {
        if !mechanism.eq_ignore_ascii_case("DEFLATE") {
            self.tagged(tag, "BAD", "Only DEFLATE is offered");
            return Flow::Continue;
        }
        if self.deflate.is_some() {
            // RFC 4978 §3.
            self.tagged(tag, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active");
            return Flow::Continue;
        }
        // The OK goes out uncompressed; everything after it in both directions is not.
        self.tagged(tag, "OK", "DEFLATE active");
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        let mut deflate = Deflate::new();
        // Whatever the client sent after the command is compressed already.
        deflate.input = std::mem::take(&mut self.rbuf);
        if deflate.inflate_into(&mut self.rbuf).is_err() {
            return Flow::Close;
        }
        self.deflate = Some(Box::new(deflate));
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_pieces() {
        let (mut server, mut client) = (Deflate::new(), Deflate::new());
        let first = server.deflate(b"* OK hello\r\n").unwrap();
        let second = server.deflate(&b"x".repeat(100_000)).unwrap();
        // The client gets the first burst in two pieces, then the second.
        let mut plain = Vec::new();
        client.input.extend_from_slice(&first[..3]);
        client.inflate_into(&mut plain).unwrap();
        client.input.extend_from_slice(&first[3..]);
        client.inflate_into(&mut plain).unwrap();
        assert_eq!(plain, b"* OK hello\r\n");
        client.input.extend_from_slice(&second);
        client.inflate_into(&mut plain).unwrap();
        assert_eq!(plain.len(), 12 + 100_000);
        assert!(client.input.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = Deflate::new();
        d.input = vec![0xff; 16];
        assert!(d.inflate_into(&mut Vec::new()).is_err());
    }
}
